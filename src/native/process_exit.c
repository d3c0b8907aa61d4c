/*
 * A process whose main() calls pthread_exit ends when its last thread ends
 * (glibc counts threads and calls exit(0) after the last one). The .NET
 * runtime inside libft_weave.so starts threads of its own that never end
 * (the finalizer), so with the library loaded that count never reached zero
 * and such a process lived forever.
 *
 * The library is linked with -Wl,--wrap=pthread_create, so every thread the
 * runtime starts passes through __wrap_pthread_create below and its kernel
 * thread id is recorded while it runs. When the main thread exits through
 * pthread_exit (seen from its pthread key destructors, which glibc runs for
 * pthread_exit but not for exit()), a watcher thread starts; it calls
 * exit(0), as glibc would have, once every thread of the process other than
 * itself, the dead main thread and the runtime's own threads is gone. It
 * polls /proc/self/task every few milliseconds: nothing else tells one
 * thread that another has ended without joining it.
 *
 * Plain C on purpose: none of this may need the runtime (the watcher is
 * never attached to it, and the main thread may never have called the
 * library at all).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ftw_native.h"

int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg);

/* Kernel ids of the runtime's live threads; 0 = free slot. The runtime
 * starts a handful (finalizer, background GC); more than this many would
 * only make a pthread_exit-ing main wait for them as for program threads. */
#define RUNTIME_THREAD_SLOTS 64
static atomic_int runtime_threads[RUNTIME_THREAD_SLOTS];
static atomic_int runtime_thread_count;

static atomic_int main_exited;
static atomic_int watcher_started;
static void start_watcher_if_needed(void);
static pthread_key_t main_exit_key;
static atomic_int main_exit_key_ready;

struct start_args {
  void *(*start)(void *);
  void *arg;
};

static atomic_int no_slot;

static void forget_runtime_thread(void *slot) {
  atomic_store((atomic_int *)slot, 0);
}

static atomic_int *claim_slot(int tid) {
  for (int i = 0; i < RUNTIME_THREAD_SLOTS; i++) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&runtime_threads[i], &expected, tid)) {
      return &runtime_threads[i];
    }
  }
  return &no_slot;
}

/* pthread_cleanup_push is setjmp-based in C; GCC warns about its own
 * macro's locals, which nothing modifies after the setjmp. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
static void *runtime_thread_main(void *raw) {
  struct start_args args = *(struct start_args *)raw;
  free(raw);
  atomic_int *slot = claim_slot((int)gettid());
  void *result;
  /* Cleanup handler: the slot is freed however the thread ends. */
  pthread_cleanup_push(forget_runtime_thread, (void *)slot);
  result = args.start(args.arg);
  pthread_cleanup_pop(1);
  return result;
}
#pragma GCC diagnostic pop

/* Every pthread_create linked statically into the library is the runtime's. */
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg) {
  struct start_args *args = malloc(sizeof *args);
  if (args == NULL) {
    return EAGAIN;
  }
  args->start = start;
  args->arg = arg;
  int rc = __real_pthread_create(thread, attr, runtime_thread_main, args);
  if (rc != 0) {
    free(args);
  } else {
    atomic_fetch_add(&runtime_thread_count, 1);
    /* The runtime may start its first thread after main() is gone, when a
     * program thread makes the process's first ft_weave call. */
    start_watcher_if_needed();
  }
  return rc;
}

/* The calling thread is parked for good (python_probe.c: CPython would have
 * ended it): like a thread that CPython ended, it must not keep a process
 * whose main thread called pthread_exit alive. Counted with the runtime's
 * threads from now on. */
void ftw_process_exit_forget_current_thread(void) {
  (void)claim_slot((int)gettid());
  atomic_fetch_add(&runtime_thread_count, 1);
  start_watcher_if_needed();
}

static int is_runtime_thread(int tid) {
  for (int i = 0; i < RUNTIME_THREAD_SLOTS; i++) {
    if (atomic_load(&runtime_threads[i]) == tid) {
      return 1;
    }
  }
  return 0;
}

/* 1 when nothing but the watcher, the dead main thread and the runtime's
 * threads is left; -1 when /proc cannot be read. */
static int only_runtime_threads_left(int self, int main_tid) {
  DIR *dir = opendir("/proc/self/task");
  if (dir == NULL) {
    return -1;
  }
  int left = 1;
  struct dirent *entry;
  while (left && (entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') {
      continue;
    }
    int tid = atoi(entry->d_name);
    if (tid == self || is_runtime_thread(tid)) {
      continue;
    }
    if (tid == main_tid) {
      /* The main thread's /proc entry stays while the process lives; it is
       * gone once it is a zombie (once_runner.c). */
      left = !ftw_thread_alive(tid);
      continue;
    }
    left = 0;
  }
  closedir(dir);
  return left;
}

static void *exit_watcher(void *unused) {
  (void)unused;
  int self = (int)gettid();
  int main_tid = (int)getpid();
  struct timespec pause = {0, 5 * 1000 * 1000};
  for (;;) {
    int done = only_runtime_threads_left(self, main_tid);
    if (done < 0) {
      /* No /proc: nothing can tell; keep today's behaviour (the process
       * stays until someone calls exit). docs/reliability.md. */
      return NULL;
    }
    if (done) {
      exit(0);
    }
    /* EINTR only shortens one pause. */
    nanosleep(&pause, NULL);
  }
}

void ftw_main_thread_exiting(void) {
  atomic_store(&main_exited, 1);
  start_watcher_if_needed();
}

static void start_watcher_if_needed(void) {
  /* Without a runtime thread, glibc's own count ends the process as usual. */
  if (!atomic_load(&main_exited) || atomic_load(&runtime_thread_count) == 0 ||
      atomic_exchange(&watcher_started, 1) != 0) {
    return;
  }
  /* Signals go to the program's threads, never to the watcher. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t watcher;
  if (__real_pthread_create(&watcher, &attr, exit_watcher, NULL) != 0) {
    atomic_store(&watcher_started, 0);
  }
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_main_exit_key(void *value) {
  (void)value;
  ftw_main_thread_exiting();
}

static void after_fork_in_child(void) {
  /* Only the forking thread exists in the child. */
  for (int i = 0; i < RUNTIME_THREAD_SLOTS; i++) {
    atomic_store(&runtime_threads[i], 0);
  }
  atomic_store(&runtime_thread_count, 0);
  atomic_store(&watcher_started, 0);
  /* The child's main thread is the forking thread, alive. */
  atomic_store(&main_exited, 0);
}

/*
 * At load. When the library is loaded on the main thread (linked by the
 * program, or dlopen'ed from main), a key with a value on the main thread
 * notices main's pthread_exit even if main never calls the library: glibc
 * runs key destructors for pthread_exit, never for exit().
 */
void ftw_process_exit_init(void) {
  pthread_atfork(NULL, NULL, after_fork_in_child);
  if (ftw_is_main_thread() && __real_pthread_key_create(&main_exit_key, on_main_exit_key) == 0) {
    atomic_store(&main_exit_key_ready, 1);
    pthread_setspecific(main_exit_key, (void *)1);
  }
}
