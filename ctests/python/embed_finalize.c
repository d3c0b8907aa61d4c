/* ft_weave_python.h across Py_FinalizeEx: no hang, bounded time.
 *
 * - PINNED threads hold detached pinned states and are blocked on an event
 *   while the main thread finalizes; released afterwards, weave_py_enter
 *   refuses them and their exits abandon the states (no call into Python).
 * - The RACER exits during the atexit phase: with the GIL, it holds the
 *   helper's read lock and waits for the GIL, which the main thread holds,
 *   when the helper's atexit callback starts. The callback must release the
 *   GIL while it waits for the write lock, or this deadlocks; the racer's
 *   state is destroyed. Without the GIL (free-threaded build) attaching
 *   waits for no other thread, so the racer cannot be held inside the read
 *   lock: the hook waits until it has destroyed its state instead, still
 *   during the atexit phase and before the helper's callback.
 * - The SLEEPER is inside a Python call (time.sleep, GIL released) when
 *   finalization starts: CPython ends it (3.11-3.13) when it tries to take
 *   the GIL back, or it returns first; either way its state is abandoned.
 *   (3.14 blocks such threads forever, so it is not started there.) */
#include <ft_weave_python.h> /* Python.h first: its pyconfig.h defines _GNU_SOURCE (pthread_timedjoin_np) */

#include <pthread.h>
#include <string.h>

#include "embed_check.h"

#define PINNED 4
#if PY_VERSION_HEX < 0x030E0000
#define SLEEPERS 1
#else
#define SLEEPERS 0
#endif

static PyObject *g_func;
static PyObject *g_nap;
static weave_event_t g_release;   /* PINNED and SLEEPER may exit */
static weave_event_t g_racer_go;  /* RACER may exit */
static int g_ready;               /* threads that made their first call */
static int g_sleeping;            /* the sleeper is about to call nap() */
static int g_enter_after[PINNED]; /* weave_py_enter results after finalization */
static int g_gil_enabled = 1;     /* sys._is_gil_enabled() (3.13+; free-threaded builds) */

static int call_once(int i) {
  PyObject *r;
  int ok;
  if (weave_py_enter() != 0) {
    return 0;
  }
  r = PyObject_CallFunction(g_func, "i", i);
  ok = r != NULL && PyLong_AsLong(r) == i + 1;
  Py_XDECREF(r);
  weave_py_exit();
  return ok;
}

static void *pinned(void *arg) {
  int index = (int)(intptr_t)arg;
  CHECK(call_once(index));
  __atomic_fetch_add(&g_ready, 1, __ATOMIC_RELEASE);
  weave_event_wait(&g_release);
  g_enter_after[index] = weave_py_enter();
  if (index == 0) {
    weave_py_release(); /* abandons, like the exits of the others */
  }
  return NULL;
}

static void *racer(void *arg) {
  (void)arg;
  CHECK(call_once(100));
  __atomic_fetch_add(&g_ready, 1, __ATOMIC_RELEASE);
  weave_event_wait(&g_racer_go);
  return NULL; /* destroy at exit, during the atexit phase */
}

static void *sleeper(void *arg) {
  PyObject *r;
  (void)arg;
  REQUIRE(weave_py_enter() == 0, NULL);
  __atomic_store_n(&g_sleeping, 1, __ATOMIC_RELEASE);
  r = PyObject_CallNoArgs(g_nap); /* CPython may end the thread in here */
  Py_XDECREF(r);
  weave_py_exit();
  weave_event_wait(&g_release);
  return NULL;
}

/* Registered after the helper's callback, so atexit runs it first: lets the
 * racer exit, and with the GIL holds it (sleeping without releasing it)
 * until the racer holds the helper's read lock and waits for the GIL.
 * Without the GIL, waits until the racer has destroyed its state. */
static PyObject *race_hook(PyObject *self, PyObject *unused) {
  weave_py_process_t *p = weave_py__process();
  double deadline = embed_now() + 10;
  (void)self;
  (void)unused;
  weave_event_notify(&g_racer_go);
  if (!g_gil_enabled) {
    while (__atomic_load_n(&p->destroyed, __ATOMIC_ACQUIRE) == 0 && embed_now() < deadline) {
      usleep(1000);
    }
    CHECK(__atomic_load_n(&p->destroyed, __ATOMIC_ACQUIRE) == 1);
    CHECK(!__atomic_load_n(&p->finalizing, __ATOMIC_ACQUIRE));
    Py_RETURN_NONE;
  }
  while ((__atomic_load_n(&p->lock.bits, __ATOMIC_ACQUIRE) >> WEAVE_RWMUTEX_READER_SHIFT) == 0 &&
         embed_now() < deadline) {
    usleep(1000);
  }
  CHECK((__atomic_load_n(&p->lock.bits, __ATOMIC_ACQUIRE) >> WEAVE_RWMUTEX_READER_SHIFT) >= 1);
  usleep(50 * 1000);
  Py_RETURN_NONE;
}

/* sys._is_gil_enabled() where it exists (3.13+), else 1. Attached. */
static int gil_enabled(void) {
  PyObject *check = PySys_GetObject("_is_gil_enabled"); /* borrowed */
  PyObject *r;
  int enabled;
  if (check == NULL) {
    return 1;
  }
  r = PyObject_CallNoArgs(check);
  if (r == NULL) {
    PyErr_Clear();
    CHECK(r != NULL);
    return 1;
  }
  enabled = PyObject_IsTrue(r);
  Py_DECREF(r);
  return enabled;
}

static int register_race_hook(void) {
  static PyMethodDef def = {"race_hook", race_hook, METH_NOARGS, NULL};
  PyObject *atexit_module = PyImport_ImportModule("atexit");
  PyObject *fn = PyCFunction_New(&def, NULL);
  PyObject *r = NULL;
  if (atexit_module != NULL && fn != NULL) {
    r = PyObject_CallMethod(atexit_module, "register", "O", fn);
  }
  Py_XDECREF(r);
  Py_XDECREF(fn);
  Py_XDECREF(atexit_module);
  return r != NULL;
}

int main(void) {
  pthread_t pinned_threads[PINNED];
  pthread_t racer_thread;
  pthread_t sleeper_thread;
  PyThreadState *main_state;
  PyObject *main_module;
  double start, finalized, deadline;
  int i;

  alarm(60);
  Py_InitializeEx(0);
  g_gil_enabled = gil_enabled();
  REQUIRE(PyRun_SimpleString("import time\n"
                             "def f(i):\n    return i + 1\n"
                             "def nap():\n    time.sleep(1.0)\n    return 1\n") == 0,
          1);
  main_module = PyImport_AddModule("__main__");
  g_func = PyObject_GetAttrString(main_module, "f");
  g_nap = PyObject_GetAttrString(main_module, "nap");
  REQUIRE(g_func != NULL && g_nap != NULL, 1);
  main_state = PyEval_SaveThread();

  for (i = 0; i < PINNED; i++) {
    REQUIRE(pthread_create(&pinned_threads[i], NULL, pinned, (void *)(intptr_t)i) == 0, 1);
  }
  REQUIRE(pthread_create(&racer_thread, NULL, racer, NULL) == 0, 1);
  deadline = embed_now() + 20;
  while (__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) < PINNED + 1 && embed_now() < deadline) {
    usleep(1000);
  }
  REQUIRE(__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) == PINNED + 1, 1);
  if (SLEEPERS) {
    REQUIRE(pthread_create(&sleeper_thread, NULL, sleeper, NULL) == 0, 1);
    while (!__atomic_load_n(&g_sleeping, __ATOMIC_ACQUIRE) && embed_now() < deadline) {
      usleep(1000);
    }
    REQUIRE(__atomic_load_n(&g_sleeping, __ATOMIC_ACQUIRE), 1);
  }

  PyEval_RestoreThread(main_state); /* after the sleeper released the GIL in time.sleep */
  REQUIRE(register_race_hook(), 1);
  Py_DECREF(g_func);
  Py_DECREF(g_nap);
  start = embed_now();
  CHECK(Py_FinalizeEx() == 0);
  finalized = embed_now();

  /* The racer was destroyed during the atexit phase (it had the read lock
   * before the helper's callback set the flag). */
  REQUIRE(pthread_join(racer_thread, NULL) == 0, 1);
  CHECK(weave_py_thread_states_destroyed() == 1);

  weave_event_notify(&g_release);
  for (i = 0; i < PINNED; i++) {
    REQUIRE(pthread_join(pinned_threads[i], NULL) == 0, 1);
    CHECK(g_enter_after[i] == -1);
  }
  if (SLEEPERS) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    CHECK(pthread_timedjoin_np(sleeper_thread, NULL, &until) == 0);
  }
  CHECK(weave_py_thread_states_created() == PINNED + 1 + SLEEPERS);
  CHECK(weave_py_thread_states_destroyed() == 1);
  CHECK(weave_py_thread_states_abandoned() == PINNED + SLEEPERS);
  CHECK(weave_py_enter() == -1);
  CHECK(finalized - start < 10.0);
  printf("GIL %s: Py_FinalizeEx took %.3f s; %d abandoned, 1 destroyed; all threads ended %.3f s later\n",
         g_gil_enabled ? "enabled" : "disabled", finalized - start, PINNED + SLEEPERS, embed_now() - finalized);
  return embed_result("embed_finalize");
}
