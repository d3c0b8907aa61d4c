/* Preloaded (LD_PRELOAD) by the CTest "test_storage_fork: without
 * MADV_WIPEONFORK": refuses madvise(MADV_WIPEONFORK) with EINVAL, as a kernel
 * older than 4.14 or a sandbox would, so that the storage registry runs on
 * its fallback (the holder's pid in the lock word; docs/storage.md, fork).
 * Every other advice goes to the kernel unchanged. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

int madvise(void *addr, size_t length, int advice);

int madvise(void *addr, size_t length, int advice) {
  if (advice == MADV_WIPEONFORK) {
    errno = EINVAL;
    return -1;
  }
  return (int)syscall(SYS_madvise, addr, length, advice);
}
