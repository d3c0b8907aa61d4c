/*
 * Support for weave_once_call's run records (src/FtWeave/Locks/Once.cs): the
 * first block of records, in static storage so that a once can always run,
 * and the check that a runner thread still exists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#include "ftw_native.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Zeroed storage for Once.cs's first chunk of run records; it checks the size. */
static unsigned char first_chunk[2048] __attribute__((aligned(64)));

void *ftw_once_first_chunk(size_t *bytes) {
  *bytes = sizeof first_chunk;
  return first_chunk;
}

int ftw_process_id(void); /* parking_fork.c: getpid(), cached per process */

/* The calling thread's kernel id, cached in a pthread key of its own with
 * the pid it was read in: a fork child's thread has a new tid, and the pid
 * tells the stale cache apart (the pid cache itself is wiped at fork). Saves
 * two system calls per once run. */
static pthread_key_t tid_key;
static int tid_key_ready;

__attribute__((constructor)) static void ftw_once_runner_init(void) {
  if (__real_pthread_key_create(&tid_key, NULL) == 0) {
    tid_key_ready = 1;
  }
}

int ftw_gettid(void) {
  int pid = ftw_process_id();
  if (tid_key_ready) {
    uint64_t cached = (uint64_t)(uintptr_t)pthread_getspecific(tid_key);
    if (cached != 0 && (int)(cached >> 32) == pid) {
      return (int)(uint32_t)cached;
    }
  }
  int tid = (int)syscall(SYS_gettid);
  if (tid_key_ready) {
    /* Both are positive ints, so the value is never 0 (NULL: no value). */
    (void)pthread_setspecific(tid_key, (void *)(uintptr_t)(((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid));
  }
  return tid;
}

int ftw_getpid(void) { return ftw_process_id(); }

/* 1 if thread `tid` of the calling process is still running code, 0 if it
 * has exited, or is the main thread and called pthread_exit (the kernel keeps
 * a thread group's leader as a zombie until the whole process ends, and a
 * zombie still accepts signal 0). Anything unclear counts as running: the
 * caller then keeps waiting, which is the safe side. */
int ftw_thread_alive(int tid) {
  pid_t pid = ftw_process_id();
  if (syscall(SYS_tgkill, (long)pid, (long)tid, 0L) != 0) {
    return errno == ESRCH ? 0 : 1;
  }
  if (tid == pid) {
    char path[64];
    char buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
      return 1;
    }
    buf[n] = '\0';
    /* "tid (comm) S ...": the state follows the last ')' (comm may hold any character). */
    const char *paren = strrchr(buf, ')');
    if (paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X')) {
      return 0;
    }
  }
  return 1;
}
