/*
 * weave_once_call: the main thread calls pthread_exit inside fn while other
 * threads wait on the flag (issue 11, finding 16). The kernel keeps a
 * process's main thread as a zombie until the whole process ends, so "does
 * the runner's thread still exist" needs more than a signal-0 probe there.
 * Expected: one waiter takes the run over, fn runs twice in all, and every
 * waiter gets 0; the last waiter then ends the process with _exit(0).
 *
 * A plain C program, not a Catch2 case: pthread_exit on the main thread
 * unwinds through every frame of main, and Catch2's catch (...) around a
 * test would swallow the forced unwind ("FATAL: exception not rethrown").
 * Not in a fork child either: there, the .NET runtime's list of threads
 * still holds the parent's threads, whose stacks glibc hands to the child's
 * new threads, and the forking thread's own detach at its exit can loop
 * forever in that list (a runtime limit, reported with issue 11). The last
 * waiter exits explicitly because a process whose main thread called
 * pthread_exit after using the library is otherwise kept alive by the
 * runtime's own threads (issue 11, finding 7, handled elsewhere).
 * Bounded by alarm(): killed by SIGALRM = hung.
 */
#include <ft_weave.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static weave_once_t once;
static int runs;
static int finished;

static int succeed(void *arg) {
  (void)arg;
  __atomic_fetch_add(&runs, 1, __ATOMIC_RELAXED);
  return 0;
}

static int exit_inside(void *arg) {
  (void)arg;
  __atomic_fetch_add(&runs, 1, __ATOMIC_RELAXED);
  /* Let the waiters park first. */
  for (int i = 0; i < 1000 && __atomic_load_n(&once.v, __ATOMIC_ACQUIRE) != (WEAVE_ONCE_RUNNING | WEAVE_ONCE_HAS_PARKED); i++) {
    usleep(1000);
  }
  usleep(20 * 1000);
  pthread_exit(NULL);
}

static void *waiter(void *arg) {
  (void)arg;
  /* Start waiting only once the main thread's run has begun: a waiter that
   * got there first would run the flag itself (a loaded machine can delay
   * the main thread by more than any fixed head start). */
  for (int i = 0; i < 10000 && (__atomic_load_n(&once.v, __ATOMIC_ACQUIRE) & WEAVE_ONCE_RUNNING) == 0; i++) {
    usleep(1000);
  }
  if (weave_once_call(&once, succeed, NULL) != 0) {
    fprintf(stderr, "a waiter got an error\n");
    _exit(3);
  }
  if (__atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL) == 3) {
    int n = __atomic_load_n(&runs, __ATOMIC_RELAXED);
    if (n != 2) {
      fprintf(stderr, "fn ran %d times (expected 2: the abandoned run and one retry)\n", n);
      _exit(5);
    }
    printf("ok: a waiter took the run over; every waiter got 0\n");
    fflush(stdout);
    _exit(0);
  }
  return NULL;
}

int main(void) {
  alarm(20);
  for (int i = 0; i < 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, waiter, NULL) != 0) {
      return 6;
    }
    pthread_detach(t);
  }
  (void)weave_once_call(&once, exit_inside, NULL);
  return 4; /* not reached */
}
