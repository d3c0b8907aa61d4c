/*
 * CPython's thread-state functions, looked up once, when the library is
 * loaded (src/FtWeave/Python/CPythonRuntime.cs reads the result).
 *
 * dlsym takes the dynamic loader's lock. Looking CPython up from a waiting
 * path (as the library used to, at most once a second, from inside a
 * contended lock's sleep) deadlocks when another thread is inside dlopen()
 * -- which holds that lock while it runs the new library's constructors --
 * and a constructor waits for a lock the sleeping thread holds. Here the
 * lookup runs in this library's own constructor: the loading thread already
 * holds the loader's lock (it is recursive), and no caller of the library can
 * be holding anything yet. A CPython loaded later (dlopen of libpython with
 * RTLD_GLOBAL after this library, or with RTLD_LOCAL) is handed over
 * explicitly with weave_set_python_api (ft_weave_python.h and the Python
 * package do), never searched for again.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "ftw_native.h"

/* Same layout as weave_python_api_t in ft_weave.h (and PythonApi in C#). */
struct ftw_python_symbols {
  void *thread_state_get;   /* PyThreadState_GetUnchecked, or _PyThreadState_UncheckedGet */
  void *gil_state_check;    /* PyGILState_Check, with the older getter only */
  void *save_thread;        /* PyEval_SaveThread */
  void *restore_thread;     /* PyEval_RestoreThread */
  void *make_pending_calls; /* Py_MakePendingCalls */
};

static struct ftw_python_symbols found; /* all NULL unless every one was found */

/* What raising a Python exception needs (ft_utils-ported code relies on
 * _py_register_wvls_destructor setting one when it fails). The exception
 * types are the addresses of CPython's `PyObject *PyExc_*` variables, read
 * when an exception is raised: the probe may run before libpython's own
 * constructors (an embedding program that links both), and only then is
 * nothing of CPython's initialized yet. */
struct ftw_python_errors {
  void *set_string;    /* PyErr_SetString */
  void **value_error;   /* &PyExc_ValueError */
  void **memory_error;  /* &PyExc_MemoryError */
  void **runtime_error; /* &PyExc_RuntimeError */
};

static struct ftw_python_errors errors; /* all NULL unless every one was found */

/* Handed over with weave_set_python_errors when the probe found nothing:
 * the objects themselves. handed_state: 0 none, 1 being stored, 2 ready. */
static struct {
  void *set_string;
  void *types[3]; /* ValueError, MemoryError, RuntimeError */
} handed;
static int handed_state;

__attribute__((constructor)) static void ftw_python_probe(void) {
  struct ftw_python_symbols s = {0};
  s.thread_state_get = dlsym(RTLD_DEFAULT, "PyThreadState_GetUnchecked");
  if (s.thread_state_get == NULL) {
    /* 3.11/3.12: on 3.11 this returns the thread state holding the GIL
     * (process-wide), so PyGILState_Check must confirm it is the caller's. */
    s.thread_state_get = dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
    s.gil_state_check = dlsym(RTLD_DEFAULT, "PyGILState_Check");
    if (s.gil_state_check == NULL) {
      return;
    }
  }
  s.save_thread = dlsym(RTLD_DEFAULT, "PyEval_SaveThread");
  s.restore_thread = dlsym(RTLD_DEFAULT, "PyEval_RestoreThread");
  s.make_pending_calls = dlsym(RTLD_DEFAULT, "Py_MakePendingCalls");
  if (s.thread_state_get != NULL && s.save_thread != NULL && s.restore_thread != NULL &&
      s.make_pending_calls != NULL) {
    struct ftw_python_errors e;
    e.set_string = dlsym(RTLD_DEFAULT, "PyErr_SetString");
    e.value_error = (void **)dlsym(RTLD_DEFAULT, "PyExc_ValueError");
    e.memory_error = (void **)dlsym(RTLD_DEFAULT, "PyExc_MemoryError");
    e.runtime_error = (void **)dlsym(RTLD_DEFAULT, "PyExc_RuntimeError");
    if (e.set_string != NULL && e.value_error != NULL && e.memory_error != NULL && e.runtime_error != NULL) {
      errors = e;
    }
    found = s;
  }
}

/* What the constructor found (all NULL when CPython was not in the global
 * scope at load time). Never blocks. */
const struct ftw_python_symbols *ftw_python_symbols(void) { return &found; }

/* Sets a Python exception for a failed call of the library, with the
 * message "<what>: <detail>" (detail is the thread's weave_last_error()).
 * kind: 0 ValueError, 1 MemoryError, 2 RuntimeError (the caller maps the
 * WEAVE_E_* code as the Python package does). The caller checked that the
 * calling thread has an attached thread state. Returns 1 if an exception was
 * set, 0 when the load-time probe did not find CPython's error functions. */
int ftw_python_raise(int kind, const char *what, const char *detail) {
  union {
    void *object;
    void (*fn)(void *type, const char *message);
  } set_string; /* dlsym's void * to the function it names (C11 union punning) */
  char message[512];
  void *type;
  if (kind < 0 || kind > 2) {
    kind = 2;
  }
  if (errors.set_string != NULL) {
    void **variable = kind == 0 ? errors.value_error : kind == 1 ? errors.memory_error : errors.runtime_error;
    set_string.object = errors.set_string;
    type = *variable;
  } else if (__atomic_load_n(&handed_state, __ATOMIC_ACQUIRE) == 2) {
    /* Acquire: pairs with the release in ftw_python_set_errors. */
    set_string.object = handed.set_string;
    type = handed.types[kind];
  } else {
    return 0;
  }
  if (type == NULL) {
    return 0;
  }
  snprintf(message, sizeof message, "%s: %s", what, detail);
  set_string.fn(type, message);
  return 1;
}

/* weave_set_python_errors (the caller checked for NULL members): the first
 * complete set is kept; the load-time probe's, if it found one, wins. */
void ftw_python_set_errors(void *set_string, void *value_error, void *memory_error, void *runtime_error) {
  int expected = 0;
  if (errors.set_string != NULL) {
    return;
  }
  /* One storer; readers look only once the state is 2. */
  if (!__atomic_compare_exchange_n(&handed_state, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    return;
  }
  handed.set_string = set_string;
  handed.types[0] = value_error;
  handed.types[1] = memory_error;
  handed.types[2] = runtime_error;
  /* Release: the fields above are visible to whoever reads 2. */
  __atomic_store_n(&handed_state, 2, __ATOMIC_RELEASE);
}

/*
 * Re-attaching a thread state after a detached sleep (CPythonRuntime.Restore
 * calls this instead of PyEval_RestoreThread directly).
 *
 * Once Py_FinalizeEx has begun, CPython 3.11-3.13 ends every other thread
 * that tries to attach: PyEval_RestoreThread calls pthread_exit, a forced
 * unwind. From here that unwind would run through the library's NativeAOT
 * frames (the lock call, the parking lot) up to the caller: the .NET runtime
 * does not support that (the thread's transition frame is left pointing into
 * the unwound stack), and the library's per-thread state is left as it was
 * in the middle of the wait -- the thread's critical sections still listed,
 * pointing into frames that no longer exist, which the thread's own exit
 * destructors would then resume (lock a stale mutex, or garbage).
 *
 * So the unwind stops here: a cleanup handler, which glibc runs when the
 * unwind reaches this frame (only CPython's frames lie in between), parks
 * the thread for good instead, as CPython 3.14 itself does with such threads
 * (hang_thread): the thread stays detached, holds no lock of the library's
 * (its sections stay suspended, their mutexes released; a mutex handed to it
 * by unlock stays its own, as with CPython's own locks), and disappears with
 * the process; a main thread that ends with pthread_exit does not wait for
 * it (process_exit.c counts it with the runtime's threads). The finalizing
 * thread itself is never ended by CPython and returns normally.
 *
 * Cancellation is disabled for the call: PyEval_RestoreThread may wait in
 * pthread_cond_wait, a cancellation point, and a cancel must not unwind
 * through the library either; it takes effect at the thread's next
 * cancellation point after the library returned, as for every other wait of
 * the library. Costs a setjmp and two cancel-state switches per re-attach,
 * after a sleep.
 */
static void ftw_python_hang(void *unused) {
  (void)unused;
  /* A main thread that ends with pthread_exit would otherwise wait for this
   * one forever; a thread CPython ended would not have kept it. */
  ftw_process_exit_forget_current_thread();
  for (;;) {
    pause();
  }
}

void ftw_python_restore(void (*restore)(void *), void *tstate) {
  int cancel_state;
  (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_cleanup_push(ftw_python_hang, NULL);
  restore(tstate);
  pthread_cleanup_pop(0);
  (void)pthread_setcancelstate(cancel_state, NULL);
}
