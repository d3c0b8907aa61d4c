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
#include <stddef.h>

/* Same layout as weave_python_api_t in ft_weave.h (and PythonApi in C#). */
struct ftw_python_symbols {
  void *thread_state_get;   /* PyThreadState_GetUnchecked, or _PyThreadState_UncheckedGet */
  void *gil_state_check;    /* PyGILState_Check, with the older getter only */
  void *save_thread;        /* PyEval_SaveThread */
  void *restore_thread;     /* PyEval_RestoreThread */
  void *make_pending_calls; /* Py_MakePendingCalls */
};

static struct ftw_python_symbols found; /* all NULL unless every one was found */

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
    found = s;
  }
}

/* What the constructor found (all NULL when CPython was not in the global
 * scope at load time). Never blocks. */
const struct ftw_python_symbols *ftw_python_symbols(void) { return &found; }
