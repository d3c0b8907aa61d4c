/* Per-call cost of calling into Python from a native thread:
 *
 *   weave      weave_py_enter(); call; weave_py_exit();  (ft_weave_python.h:
 *              one thread state for the thread, attached and detached per call)
 *   gilstate   g = PyGILState_Ensure(); call; PyGILState_Release(g);  with no
 *              outer state: every Ensure creates a thread state and every
 *              Release destroys it (the pattern CPython's docs warn about)
 *
 * Each mode runs on its own fresh native thread for the given number of
 * seconds (default 2) and calls a trivial Python function, so the numbers
 * are dominated by the thread-state handling. Exits non-zero if a result is
 * wrong or weave_py_enter created more than one state for its thread.
 *
 *   python_thread_state_bench [seconds]
 */
#include <ft_weave_python.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 256

static PyObject *g_func;
static double g_seconds = 2.0;

struct run {
  int use_weave;
  long calls;
  double elapsed;
  int errors;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int call(long i) {
  PyObject *r = PyObject_CallFunction(g_func, "l", i);
  int ok = r != NULL && PyLong_AsLong(r) == i + 1;
  Py_XDECREF(r);
  return ok;
}

static void *worker(void *arg) {
  struct run *run = (struct run *)arg;
  double start = now();
  double end = start + g_seconds;
  long i = 0;
  int b;
  do {
    for (b = 0; b < BATCH; b++, i++) {
      if (run->use_weave) {
        if (weave_py_enter() != 0) {
          run->errors++;
          continue;
        }
        run->errors += !call(i);
        weave_py_exit();
      } else {
        PyGILState_STATE g = PyGILState_Ensure();
        run->errors += !call(i);
        PyGILState_Release(g);
      }
    }
  } while (now() < end);
  run->elapsed = now() - start;
  run->calls = i;
  return NULL;
}

static int measure(struct run *run) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, run) != 0 || pthread_join(t, NULL) != 0) {
    fprintf(stderr, "python_thread_state_bench: thread failed\n");
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  struct run weave = {1, 0, 0, 0};
  struct run gilstate = {0, 0, 0, 0};
  PyThreadState *main_state;
  double weave_ns, gilstate_ns;
  uint64_t states;

  if (argc > 1) {
    g_seconds = atof(argv[1]);
    if (!(g_seconds > 0 && g_seconds < 3600)) {
      fprintf(stderr, "usage: %s [seconds per mode, > 0]\n", argv[0]);
      return 2;
    }
  }
  Py_InitializeEx(0);
  if (PyRun_SimpleString("def f(i):\n    return i + 1\n") != 0) {
    return 1;
  }
  g_func = PyObject_GetAttrString(PyImport_AddModule("__main__"), "f");
  if (g_func == NULL) {
    return 1;
  }
  main_state = PyEval_SaveThread();
  if (!measure(&weave) || !measure(&gilstate)) {
    return 1;
  }
  states = weave_py_thread_states_created();
  PyEval_RestoreThread(main_state);
  Py_DECREF(g_func);
  if (Py_FinalizeEx() != 0) {
    return 1;
  }

  weave_ns = weave.elapsed * 1e9 / (double)weave.calls;
  gilstate_ns = gilstate.elapsed * 1e9 / (double)gilstate.calls;
  printf("python_thread_state_bench: Python %s, %.2f s per mode, one native thread each\n", PY_VERSION, g_seconds);
  printf("  weave_py_enter/exit + call          %9.1f ns/call  (%ld calls, %llu thread state)\n", weave_ns,
         weave.calls, (unsigned long long)states);
  printf("  PyGILState_Ensure/Release + call    %9.1f ns/call  (%ld calls, one thread state per call)\n",
         gilstate_ns, gilstate.calls);
  printf("  ratio (Ensure/Release : enter/exit) %9.2fx\n", gilstate_ns / weave_ns);
  if (weave.errors != 0 || gilstate.errors != 0 || states != 1) {
    fprintf(stderr, "python_thread_state_bench: %d + %d wrong results, %llu thread states for one thread\n",
            weave.errors, gilstate.errors, (unsigned long long)states);
    return 1;
  }
  return 0;
}
