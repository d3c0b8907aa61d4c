/* Detach with a real CPython in the process (plain C, no Catch2).
 *
 * The program embeds CPython (linked against libpython, so its symbols are in
 * the global scope where the library's dlsym(RTLD_DEFAULT) finds them).
 *
 *   test_detach_python detach
 *     A native thread attaches with PyGILState_Ensure and blocks in
 *     weave_mutex_lock on a mutex the main thread holds. The main thread
 *     then takes the GIL and runs Python code before it unlocks. Without
 *     detach this deadlocks (the worker sleeps holding the GIL); with detach
 *     the worker released its thread state while parked and re-attaches after.
 *
 *   test_detach_python control
 *     weave_mutex_lock_timed(.., WEAVE_LOCK_DONT_DETACH) keeps the GIL while
 *     it waits: a third thread that asks for the GIL during the wait gets it
 *     only after the waiter has given up and released it. (Deterministic: the
 *     GIL cannot move while its holder blocks in native code, whatever the
 *     scheduling.)
 *
 * alarm(20) turns a deadlock into a failure. Exit code 0 is success; each
 * failed check prints its line and exits non-zero.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ft_weave.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static weave_mutex_t mutex;
static int worker_state;        /* 1 attached, 2 has the mutex */
static int worker_lock_result = -1000;
static int worker_gil_after;
static int waiter_gave_up;      /* control: set (with the GIL held) after lock_timed returned */
static int third_saw_gave_up = -1;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static uint64_t parks(void) {
  weave_stats_t s;
  CHECK(weave_stats(&s) == 0);
  return s.parks;
}

static int wait_for_parks(uint64_t target) {
  for (int i = 0; i < 10000; i++) { /* up to 10 s */
    if (parks() >= target) {
      return 1;
    }
    sleep_ms(1);
  }
  return 0;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "test_detach_python: timed out (deadlock: the waiter kept the GIL?)\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(2);
}

/* ---- detach ----------------------------------------------------------- */

static void *detach_worker(void *arg) {
  (void)arg;
  PyGILState_STATE g = PyGILState_Ensure();
  __atomic_store_n(&worker_state, 1, __ATOMIC_RELEASE);
  weave_mutex_lock(&mutex); /* parks with WEAVE_LOCK_DETACH */
  /* Attached again: the thread state is ours and Python runs. */
  worker_gil_after = PyGILState_Check();
  PyRun_SimpleString("worker_ran = True\n");
  __atomic_store_n(&worker_state, 2, __ATOMIC_RELEASE);
  CHECK(weave_mutex_unlock(&mutex) == 0);
  PyGILState_Release(g);
  return NULL;
}

static int run_detach(void) {
  weave_mutex_lock(&mutex);
  uint64_t parks_before = parks();
  PyThreadState *main_ts = PyEval_SaveThread(); /* let the worker attach */
  pthread_t t;
  CHECK(pthread_create(&t, NULL, detach_worker, NULL) == 0);

  /* The worker attached and is parked in weave_mutex_lock. */
  CHECK(wait_for_parks(parks_before + 1));
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 1);
  CHECK(__atomic_load_n(&mutex._bits, __ATOMIC_ACQUIRE) == 3);

  /* Take the GIL while the worker still waits: possible only if it detached. */
  PyGILState_STATE g = PyGILState_Ensure();
  CHECK(PyRun_SimpleString("import sys\nmain_ran = sum(range(1000))\n") == 0);
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 1);
  /* Unlock with the GIL held: the worker wakes and must wait for the GIL to
   * re-attach (its restore happens after the park). */
  CHECK(weave_mutex_unlock(&mutex) == 0);
  sleep_ms(5);
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 1);
  PyGILState_Release(g);

  CHECK(pthread_join(t, NULL) == 0);
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 2);
  CHECK(worker_gil_after == 1);
  PyEval_RestoreThread(main_ts);
  CHECK(PyRun_SimpleString("assert worker_ran and main_ran == 499500\n") == 0);
  CHECK(mutex._bits == 0);
  return 0;
}

/* ---- control: DONT_DETACH keeps the GIL -------------------------------- */

static void *control_waiter(void *arg) {
  (void)arg;
  PyGILState_STATE g = PyGILState_Ensure();
  __atomic_store_n(&worker_state, 1, __ATOMIC_RELEASE);
  worker_lock_result = weave_mutex_lock_timed(&mutex, 300 * 1000000LL, WEAVE_LOCK_DONT_DETACH);
  __atomic_store_n(&waiter_gave_up, 1, __ATOMIC_RELEASE); /* still holding the GIL */
  worker_gil_after = PyGILState_Check();
  PyGILState_Release(g);
  return NULL;
}

static void *control_third(void *arg) {
  (void)arg;
  PyGILState_STATE g = PyGILState_Ensure();
  third_saw_gave_up = __atomic_load_n(&waiter_gave_up, __ATOMIC_ACQUIRE);
  PyGILState_Release(g);
  return NULL;
}

static int run_control(void) {
  weave_mutex_lock(&mutex);
  uint64_t parks_before = parks();
  PyThreadState *main_ts = PyEval_SaveThread();
  pthread_t waiter, third;
  CHECK(pthread_create(&waiter, NULL, control_waiter, NULL) == 0);
  CHECK(wait_for_parks(parks_before + 1)); /* parked, holding the GIL */
  CHECK(pthread_create(&third, NULL, control_third, NULL) == 0);
  CHECK(pthread_join(waiter, NULL) == 0);
  CHECK(pthread_join(third, NULL) == 0);
  CHECK(worker_lock_result == WEAVE_LOCK_FAILURE);
  CHECK(worker_gil_after == 1);
  /* The third thread got the GIL only after the waiter gave up. */
  CHECK(third_saw_gave_up == 1);
  PyEval_RestoreThread(main_ts);
  CHECK(weave_mutex_unlock(&mutex) == 0);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  alarm(20);
  if (argc != 2 || (strcmp(argv[1], "detach") != 0 && strcmp(argv[1], "control") != 0)) {
    fprintf(stderr, "usage: %s detach|control\n", argv[0]);
    return 64;
  }
  Py_InitializeEx(0);
  int rc = strcmp(argv[1], "detach") == 0 ? run_detach() : run_control();
  CHECK(Py_FinalizeEx() == 0);
  if (rc == 0) {
    printf("test_detach_python %s: ok\n", argv[1]);
  }
  return rc;
}
