/* ft_weave_python.h while the interpreter lives: 8 native threads x 10,000
 * calls into a Python function through weave_py_enter/exit, one thread state
 * per thread (counted), nesting, PyGILState_Ensure inside a pinned thread,
 * explicit release, destruction at thread exit without release (nothing left
 * in the interpreter's thread list), and refusal on threads that have a
 * state of their own and after finalization. */
#include <ft_weave_python.h>

#include <pthread.h>
#include <string.h>

#include "embed_check.h"

#define THREADS 8
#define CALLS 10000

static PyObject *g_func; /* __main__.f: returns 3 * i + the thread's number */

struct worker {
  int index;
  PyThreadState *first; /* the pinned state seen on the first call */
  int same_state;       /* every call ran on `first` */
  long sum;             /* sum of the results */
};

static void *calls_worker(void *arg) {
  struct worker *w = (struct worker *)arg;
  int i;
  w->same_state = 1;
  for (i = 0; i < CALLS; i++) {
    PyObject *r;
    REQUIRE(weave_py_enter() == 0, NULL);
    if (w->first == NULL) {
      w->first = PyThreadState_Get();
    } else if (PyThreadState_Get() != w->first) {
      w->same_state = 0;
    }
    r = PyObject_CallFunction(g_func, "ii", i, w->index);
    if (r == NULL) {
      PyErr_Print();
      CHECK(r != NULL);
    } else {
      long v = PyLong_AsLong(r);
      CHECK(v == 3L * i + w->index);
      w->sum += v;
      Py_DECREF(r);
    }
    if (i % 1000 == 0) {
      /* Nesting: the inner pair neither re-attaches nor detaches. */
      PyThreadState *outer = PyThreadState_Get();
      CHECK(weave_py_enter() == 0);
      CHECK(PyThreadState_Get() == outer);
      weave_py_exit();
      CHECK(PyGILState_Check());
      CHECK(PyThreadState_Get() == outer);
    }
    weave_py_exit();
  }
  /* The state stays pinned while detached ... */
  CHECK(PyGILState_GetThisThreadState() == w->first);
  /* ... and PyGILState_Ensure/Release reuse it instead of creating one. */
  {
    PyGILState_STATE g = PyGILState_Ensure();
    CHECK(PyThreadState_Get() == w->first);
    PyGILState_Release(g);
    CHECK(PyGILState_GetThisThreadState() == w->first);
  }
  /* The thread ends without weave_py_release: destroyed at exit. */
  return NULL;
}

static void *release_worker(void *arg) {
  (void)arg;
  REQUIRE(weave_py_enter() == 0, NULL);
  weave_py_exit();
  weave_py_release();
  CHECK(PyGILState_GetThisThreadState() == NULL);
  weave_py_release(); /* nothing to release: ignored */
  REQUIRE(weave_py_enter() == 0, NULL);
  CHECK(PyThreadState_Get() != NULL);
  weave_py_release(); /* inside enter/exit: ignored */
  CHECK(PyGILState_Check());
  weave_py_exit();
  weave_py_exit(); /* unbalanced: ignored */
  CHECK(!PyGILState_Check());
  return NULL;
}

static void *enter_after_finalize(void *arg) {
  *(int *)arg = weave_py_enter();
  return NULL;
}

static int count_thread_states(void) {
  int n = 0;
  PyThreadState *ts;
  for (ts = PyInterpreterState_ThreadHead(PyInterpreterState_Main()); ts != NULL; ts = PyThreadState_Next(ts)) {
    n++;
  }
  return n;
}

int main(void) {
  pthread_t threads[THREADS];
  struct worker workers[THREADS];
  PyThreadState *main_state;
  PyObject *main_module;
  int i;
  int rc = -2;
  uint64_t created0;
  long expected_sum = 0;

  alarm(120);
  Py_InitializeEx(0);
  REQUIRE(PyRun_SimpleString("def f(i, k):\n    return 3 * i + k\n") == 0, 1);
  main_module = PyImport_AddModule("__main__");
  g_func = PyObject_GetAttrString(main_module, "f");
  REQUIRE(g_func != NULL, 1);
  REQUIRE(count_thread_states() == 1, 1);
  main_state = PyEval_SaveThread();

  /* The main thread has its own state: the helper refuses it. */
  CHECK(weave_py_enter() == -1);
  created0 = weave_py_thread_states_created();
  CHECK(created0 == 0);

  memset(workers, 0, sizeof workers);
  for (i = 0; i < THREADS; i++) {
    workers[i].index = i;
    REQUIRE(pthread_create(&threads[i], NULL, calls_worker, &workers[i]) == 0, 1);
  }
  for (i = 0; i < THREADS; i++) {
    REQUIRE(pthread_join(threads[i], NULL) == 0, 1);
  }
  for (i = 0; i < THREADS; i++) {
    CHECK(workers[i].first != NULL);
    CHECK(workers[i].same_state);
    CHECK(workers[i].sum == 3L * ((long)CALLS * (CALLS - 1) / 2) + (long)CALLS * i);
    expected_sum += workers[i].sum;
  }
  /* Exactly one state per thread for 80,000 calls, all destroyed at exit. */
  CHECK(weave_py_thread_states_created() == THREADS);
  CHECK(weave_py_thread_states_destroyed() == THREADS);
  CHECK(weave_py_thread_states_abandoned() == 0);

  /* Release, re-create, release again at exit. */
  REQUIRE(pthread_create(&threads[0], NULL, release_worker, NULL) == 0, 1);
  REQUIRE(pthread_join(threads[0], NULL) == 0, 1);
  CHECK(weave_py_thread_states_created() == THREADS + 2);
  CHECK(weave_py_thread_states_destroyed() == THREADS + 2);

  PyEval_RestoreThread(main_state);
  /* No leak: only the main thread's state is left in the interpreter. */
  CHECK(count_thread_states() == 1);
  Py_DECREF(g_func);
  CHECK(Py_FinalizeEx() == 0);

  /* After finalization the helper refuses without touching Python. */
  REQUIRE(pthread_create(&threads[0], NULL, enter_after_finalize, &rc) == 0, 1);
  REQUIRE(pthread_join(threads[0], NULL) == 0, 1);
  CHECK(rc == -1);
  CHECK(weave_py_thread_states_created() == THREADS + 2);
  printf("%d threads x %d calls, sum %ld, %llu thread states\n", THREADS, CALLS, expected_sum,
         (unsigned long long)weave_py_thread_states_created());
  return embed_result("embed_reuse");
}
