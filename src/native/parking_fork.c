/*
 * Static storage of the parking lot (src/FtWeave/Parking/ParkingLot.cs) and
 * the fallback stripes of its statistics (Statistics.cs), and the parking
 * lot's fork handling.
 *
 * They live in the library's .bss: nothing is allocated, so nothing can fail
 * (the C# side used to allocate them on first use, and an allocation
 * failure there ended the process).
 *
 * Fork. In a fork child only the forking thread exists, so bucket locks held
 * and waiters queued by the parent's other threads are garbage. The lot used
 * to reset itself from a pthread_atfork child handler written in C#: a
 * forking thread that had never called the library then attached to the
 * .NET runtime inside fork() (a reverse P/Invoke), with the runtime's own
 * locks possibly held by threads that do not exist in the child. Now no code
 * runs at fork at all: the table is marked MADV_WIPEONFORK (Linux 4.14+), so
 * the child's copy of these pages is zero-filled by the kernel, which is
 * exactly the empty lot: every bucket lock free, every queue empty. This is
 * race-free by construction: the child sees the zeroed table before it runs
 * any instruction, whichever of its threads touches the lot first.
 * The table is page aligned and a whole number of pages (64 KiB, the largest
 * page size Linux uses), so the advice covers it and nothing else; .bss past
 * the library's file-backed pages is private anonymous memory, which is what
 * MADV_WIPEONFORK accepts. On a kernel that refuses the advice, a pthread_atfork
 * child handler in plain C clears the same words instead (no managed code).
 * The flag is inherited by children of children and dropped by execve.
 */
#include <pthread.h>

#include "ftw_native.h"
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* ParkingLot.BucketCount buckets of 64 bytes (ParkingLot.Bucket). */
#define FTW_LOT_BYTES (1024 * 64)
/* Statistics.Stripes cells of 64 bytes (Statistics.Cell). */
#define FTW_STATS_BYTES (32 * 64)

static unsigned char lot_table[FTW_LOT_BYTES] __attribute__((aligned(65536)));
static unsigned char stats_cells[FTW_STATS_BYTES] __attribute__((aligned(64)));

/* Words that describe the current process, wiped at fork the same way (a
 * region of its own, page aligned, so that the advice covers nothing else;
 * only its first page is ever touched). Holds the cached getpid(): 0 in a
 * fresh child, filled again by the first caller there. */
static union {
  struct {
    int pid;
  } w;
  unsigned char whole[65536];
} per_process __attribute__((aligned(65536)));

/* 1 when the kernel wipes the table at fork, 2 when the atfork handler
 * clears it, 0 when neither could be set up (for tests and diagnostics). */
static int lot_fork_mode;

static void clear_lot_in_child(void) {
  /* Only the forking thread runs here: plain stores are enough. */
  memset(lot_table, 0, sizeof lot_table);
  memset(&per_process.w, 0, sizeof per_process.w);
}

/* At load time, before any export can be called (so before any thread can
 * have queued on the table). */
__attribute__((constructor)) static void ftw_parking_init(void) {
  if (madvise(lot_table, sizeof lot_table, MADV_WIPEONFORK) == 0 &&
      madvise(&per_process, sizeof per_process, MADV_WIPEONFORK) == 0) {
    lot_fork_mode = 1;
  } else if (pthread_atfork(NULL, NULL, clear_lot_in_child) == 0) {
    lot_fork_mode = 2;
  }
}

void *ftw_parking_table(void) { return lot_table; }

void *ftw_statistics_cells(void) { return stats_cells; }

int ftw_parking_fork_mode(void) { return lot_fork_mode; }

/* getpid(), without a system call after the first in each process: the
 * cache is wiped at fork with the table (or cleared by the child handler). */
int ftw_process_id(void) {
  int pid = __atomic_load_n(&per_process.w.pid, __ATOMIC_RELAXED);
  if (pid == 0) {
    pid = (int)getpid();
    /* Racing first callers store the same value. */
    __atomic_store_n(&per_process.w.pid, pid, __ATOMIC_RELAXED);
  }
  return pid;
}
