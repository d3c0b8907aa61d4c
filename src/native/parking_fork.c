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
 * fresh child, filled again by the first caller there; and the parking
 * lot's growth words. */
static union {
  struct {
    int pid;
    /* The parking lot's growth words (ParkingLot.GrowthWords): [0] threads
     * queued, [1] 1 while a thread grows the table. A fresh child has no
     * queued thread and no grower. */
    int lot_growth[2];
  } w;
  unsigned char whole[65536];
} per_process __attribute__((aligned(65536)));

/* 1 when the kernel wipes the table at fork, 2 when the atfork handler
 * clears it, 0 when neither could be set up (for tests and diagnostics). */
static int lot_fork_mode;

static void clear_lot_in_child(void);

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

/* Grown tables (ParkingLot.Grow). Each is a private anonymous mapping with
 * the same MADV_WIPEONFORK advice, so a fork child finds every table, the
 * current one included, empty: its size is kept (the descriptor that records
 * it is managed memory, which fork copies) and its buckets are free. Tables
 * are never unmapped: a thread may have read the old table's address just
 * before a growth and still lock one of its buckets (it then sees that the
 * table was replaced and retries), as Rust's parking_lot leaks old tables.
 * Each growth at least doubles the table, so all tables together take less
 * than twice the last one; at most FTW_LOT_MAX_TABLES growths are done.
 * When the advice is refused (lot_fork_mode 2), the child handler clears the
 * recorded tables as it clears the static one. */
#define FTW_LOT_MAX_TABLES 24
static struct {
  void *base;
  size_t bytes;
} grown_tables[FTW_LOT_MAX_TABLES];
static int grown_count; /* under the C# side's growth lock (one grower at a time) */

void *ftw_parking_table_alloc(size_t bytes) {
  if (grown_count >= FTW_LOT_MAX_TABLES || lot_fork_mode == 0) {
    return NULL;
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return NULL;
  }
  if (lot_fork_mode == 1 && madvise(p, bytes, MADV_WIPEONFORK) != 0) {
    /* The advice worked for the static table but not here: not a table a
     * fork child could trust; stay with the current one. */
    munmap(p, bytes);
    return NULL;
  }
  grown_tables[grown_count].bytes = bytes;
  /* Release: the child handler (lot_fork_mode 2) reads the entry after the count. */
  __atomic_store_n(&grown_tables[grown_count].base, p, __ATOMIC_RELAXED);
  __atomic_store_n(&grown_count, grown_count + 1, __ATOMIC_RELEASE);
  return p;
}

static void clear_lot_in_child(void) {
  /* Only the forking thread runs here: plain stores are enough. */
  memset(lot_table, 0, sizeof lot_table);
  int n = __atomic_load_n(&grown_count, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    memset(grown_tables[i].base, 0, grown_tables[i].bytes);
  }
  memset(&per_process.w, 0, sizeof per_process.w);
}

void *ftw_statistics_cells(void) { return stats_cells; }

int ftw_parking_fork_mode(void) { return lot_fork_mode; }

int *ftw_parking_growth_words(void) { return per_process.w.lot_growth; }

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
