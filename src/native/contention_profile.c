/*
 * The C half of the contention profile (Diagnostics/ContentionProfile.cs):
 * call stacks outside the library, and the write at process exit.
 *
 * Stacks: glibc's backtrace() unwinds through the library's managed frames
 * (NativeAOT emits DWARF call-frame information for them) into the caller's
 * code; the frames inside libft_weave.so itself are dropped, so the first
 * frame kept is the program's call of weave_mutex_lock (or of the inline
 * function that called the slow path). backtrace() loads libgcc_s on its
 * first call (malloc, the loader lock): ftw_profile_warm_up runs it once when
 * profiling starts, never from a lock's slow path.
 *
 * Exit: FT_WEAVE_PROFILE=contention:PATH registers one atexit handler. The
 * library is linked -z nodelete, so the handler's code stays mapped after a
 * dlclose; a fork child inherits the registration but not the profile (the
 * handler writes only in the process that registered it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "ftw_native.h"

/* Frames walked at most: the library's own frames (export thunk, slow path,
 * profile hook, P/Invoke stub) are about ten; the rest are the caller's. */
#define MAX_WALK 64

static uintptr_t library_start;
static uintptr_t library_end;

static void find_library_range(void) {
  struct dl_find_object found;
  if (_dl_find_object(&library_start, &found) == 0) {
    library_start = (uintptr_t)found.dlfo_map_start;
    library_end = (uintptr_t)found.dlfo_map_end;
  }
}

__attribute__((constructor)) static void ftw_contention_profile_init(void) {
  find_library_range();
}

int ftw_profile_in_library(uintptr_t pc) {
  return pc >= library_start && pc < library_end;
}

int ftw_profile_stack(uintptr_t *pcs, int max) {
  void *frames[MAX_WALK];
  int n = backtrace(frames, MAX_WALK);
  int kept = 0;
  int outside = 0;
  for (int i = 0; i < n && kept < max; i++) {
    uintptr_t pc = (uintptr_t)frames[i];
    if (!outside && ftw_profile_in_library(pc)) {
      /* Skip the library's frames up to the first caller outside it; frames
       * of the library further out (a callback called by the library) are
       * kept, they are the caller's code path. */
      continue;
    }
    outside = 1;
    pcs[kept++] = pc;
  }
  return kept;
}

void ftw_profile_warm_up(void) {
  void *frames[4];
  (void)backtrace(frames, 4);
}

static void (*exit_writer)(void);
static pid_t exit_pid;
static atomic_int exit_registered;

static void run_exit_writer(void) {
  if (exit_writer != NULL && getpid() == exit_pid) {
    exit_writer();
  }
}

int ftw_profile_at_exit(void (*writer)(void)) {
  exit_writer = writer;
  exit_pid = getpid();
  if (atomic_exchange(&exit_registered, 1) != 0) {
    return 0;
  }
  return atexit(run_exit_writer) == 0 ? 0 : -1;
}
