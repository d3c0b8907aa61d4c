/* Detach with a real CPython in the process (plain C, no Catch2).
 *
 * The program embeds CPython (linked against libpython, so its symbols are in
 * the global scope where the library's dlsym(RTLD_DEFAULT) finds them). It
 * runs with GIL builds and with free-threaded ones (3.13t): each check says
 * which interpreter property it relies on.
 *
 *   test_detach_python detach
 *     A native thread attaches with PyGILState_Ensure and blocks in
 *     weave_mutex_lock on a mutex the main thread holds. The main thread
 *     then attaches, runs Python code and gc.collect() before it unlocks.
 *     Without detach this deadlocks: with the GIL the worker sleeps holding
 *     it; in the free-threaded build gc.collect() stops the world, which
 *     waits for every attached thread. With detach the worker released its
 *     thread state while parked and re-attaches after. With the GIL enabled,
 *     the worker's re-attach also waits until the main thread releases it.
 *
 *   test_detach_python control
 *     weave_mutex_lock_timed(.., WEAVE_LOCK_DONT_DETACH) keeps the thread
 *     state attached while it waits: a third thread that attaches and runs
 *     gc.collect() during the wait gets through only after the waiter gave
 *     up and detached. (Deterministic: with the GIL, the third thread cannot
 *     attach while the waiter holds it; without, the collection's
 *     stop-the-world pause cannot begin while the waiter stays attached in
 *     native code.)
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
static int waiter_gave_up;      /* control: set (still attached) after lock_timed returned */
static int third_saw_gave_up = -1;
static int gil_enabled = 1;     /* sys._is_gil_enabled(): 0 in a free-threaded build without the GIL */

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
  static const char msg[] = "test_detach_python: timed out (deadlock: the waiter kept its thread state attached?)\n";
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
  CHECK(__atomic_load_n(&mutex._bytes[0], __ATOMIC_ACQUIRE) == WEAVE_MUTEX_LOCKED);
  CHECK(__atomic_load_n(&mutex._bytes[1], __ATOMIC_ACQUIRE) == WEAVE_MUTEX_HAS_PARKED);

  /* Attach while the worker still waits: with the GIL, possible only if it
   * detached. gc.collect() stops the world in the free-threaded build (it
   * waits until every other attached thread pauses): it returns only if the
   * worker, blocked in native code, detached. */
  PyGILState_STATE g = PyGILState_Ensure();
  CHECK(PyRun_SimpleString("import sys\nmain_ran = sum(range(1000))\n") == 0);
  CHECK(PyRun_SimpleString("import gc\ngc.collect()\n") == 0);
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 1);
  CHECK(weave_mutex_unlock(&mutex) == 0);
  if (gil_enabled) {
    /* The worker wakes and must wait for the GIL to re-attach (its restore
     * happens after the park). Without the GIL it re-attaches at once. */
    sleep_ms(5);
    CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 1);
  }
  PyGILState_Release(g);

  CHECK(pthread_join(t, NULL) == 0);
  CHECK(__atomic_load_n(&worker_state, __ATOMIC_ACQUIRE) == 2);
  CHECK(worker_gil_after == 1);
  PyEval_RestoreThread(main_ts);
  CHECK(PyRun_SimpleString("assert worker_ran and main_ran == 499500\n") == 0);
  CHECK(mutex._bytes[0] == 0 && mutex._bytes[1] == 0);
  return 0;
}

/* ---- control: DONT_DETACH stays attached ------------------------------ */

static void *control_waiter(void *arg) {
  (void)arg;
  PyGILState_STATE g = PyGILState_Ensure();
  __atomic_store_n(&worker_state, 1, __ATOMIC_RELEASE);
  worker_lock_result = weave_mutex_lock_timed(&mutex, 300 * 1000000LL, WEAVE_LOCK_DONT_DETACH);
  __atomic_store_n(&waiter_gave_up, 1, __ATOMIC_RELEASE); /* still attached */
  worker_gil_after = PyGILState_Check();
  PyGILState_Release(g);
  return NULL;
}

static void *control_third(void *arg) {
  (void)arg;
  /* With the GIL, attaching waits for the waiter to give up and release it;
   * without, the collection's stop-the-world pause does. */
  PyGILState_STATE g = PyGILState_Ensure();
  CHECK(PyRun_SimpleString("import gc\ngc.collect()\n") == 0);
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
  CHECK(wait_for_parks(parks_before + 1)); /* parked, attached */
  CHECK(pthread_create(&third, NULL, control_third, NULL) == 0);
  CHECK(pthread_join(waiter, NULL) == 0);
  CHECK(pthread_join(third, NULL) == 0);
  CHECK(worker_lock_result == WEAVE_LOCK_FAILURE);
  CHECK(worker_gil_after == 1);
  /* The third thread got through only after the waiter gave up. */
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
  {
    /* 3.13+: a free-threaded build may still run with the GIL (PYTHON_GIL=1). */
    PyObject *check = PySys_GetObject("_is_gil_enabled"); /* borrowed */
    if (check != NULL) {
      PyObject *r = PyObject_CallNoArgs(check);
      CHECK(r != NULL);
      gil_enabled = PyObject_IsTrue(r);
      Py_DECREF(r);
    }
  }
  printf("test_detach_python %s: GIL %s\n", argv[1], gil_enabled ? "enabled" : "disabled");
  int rc = strcmp(argv[1], "detach") == 0 ? run_detach() : run_control();
  CHECK(Py_FinalizeEx() == 0);
  if (rc == 0) {
    printf("test_detach_python %s: ok\n", argv[1]);
  }
  return rc;
}
