/* The ft_utils helpers' exceptions when CPython is loaded after the library:
 * this program links libft_weave only and loads libpython (argv[1]) with
 * dlopen(RTLD_LOCAL), so the library's load-time probe found nothing and
 * never will. Python is reached through dlsym here (the program is not
 * linked with it, so it cannot use Python.h's functions directly).
 *
 *   - before any handover: _py_register_wvls_destructor fails with 1 and
 *     sets nothing (the library does not know this CPython);
 *   - after weave_set_python_api alone: still nothing (no error functions);
 *   - after weave_set_python_errors: a ValueError "<helper>:
 *     <weave_last_error()>" on the attached main thread; nothing on success;
 *     nothing (and no crash) on a native thread without a thread state;
 *   - after Py_FinalizeEx: 1, nothing touched.
 * alarm(60) bounds the program. */
#define _GNU_SOURCE
#include <ft_weave.h>

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "embed_check.h"

static void *py;

static void *sym(const char *name) {
  void *p = dlsym(py, name);
  if (p == NULL) {
    fprintf(stderr, "libpython has no %s\n", name);
    exit(1);
  }
  return p;
}

/* Function pointers from dlsym's void *: through a union to void (*)(void)
 * (C11 punning), then a cast between function pointer types, which
 * -Wcast-function-type accepts from void (*)(void). */
typedef void (*any_fn)(void);
static any_fn fsym(const char *name) {
  union {
    void *object;
    any_fn fn;
  } u;
  u.object = sym(name);
  return u.fn;
}
#define FN(type, name) ((type)fsym(name))

static weave_local void *t_slot;
static void nothing(void *value) { (void)value; }

static void *(*py_err_occurred)(void);
static void (*py_err_fetch)(void **, void **, void **);
static int (*py_err_given_matches)(void *, void *);
static void *(*py_object_str)(void *);
static const char *(*py_unicode_as_utf8)(void *);
static void (*py_decref)(void *);
static void **py_exc_value_error;

/* The current exception is a ValueError "<what>: <weave_last_error()>";
 * fetches (clears) it. */
static int value_error_is(const char *what) {
  void *type = NULL, *value = NULL, *tb = NULL;
  char expected[512];
  int ok = 0;
  py_err_fetch(&type, &value, &tb);
  snprintf(expected, sizeof expected, "%s: %s", what, weave_last_error());
  if (type != NULL && py_err_given_matches(type, *py_exc_value_error) && value != NULL) {
    void *s = py_object_str(value);
    const char *text = s != NULL ? py_unicode_as_utf8(s) : NULL;
    ok = text != NULL && strcmp(text, expected) == 0;
    if (!ok) {
      fprintf(stderr, "message: %s\nexpected: %s\n", text != NULL ? text : "(none)", expected);
    }
    if (s != NULL) {
      py_decref(s);
    }
  }
  if (type != NULL) {
    py_decref(type);
  }
  if (value != NULL) {
    py_decref(value);
  }
  if (tb != NULL) {
    py_decref(tb);
  }
  return ok;
}

static void *bare_thread(void *arg) {
  (void)arg;
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(strstr(weave_last_error(), "var is NULL") != NULL);
  return NULL;
}

int main(int argc, char **argv) {
  weave_python_api_t api;
  weave_python_errors_t errors;
  void *main_state;
  pthread_t t;
  int removed = -1;
  alarm(60);
  REQUIRE(argc == 2, 1);
  /* Nothing of CPython is in the process yet. */
  CHECK(dlsym(RTLD_DEFAULT, "PyErr_SetString") == NULL);
  py = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (py == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
    return 1;
  }
  CHECK(dlsym(RTLD_DEFAULT, "PyErr_SetString") == NULL); /* private to `py` */
  py_err_occurred = FN(void *(*)(void), "PyErr_Occurred");
  py_err_fetch = FN(void (*)(void **, void **, void **), "PyErr_Fetch");
  py_err_given_matches = FN(int (*)(void *, void *), "PyErr_GivenExceptionMatches");
  py_object_str = FN(void *(*)(void *), "PyObject_Str");
  py_unicode_as_utf8 = FN(const char *(*)(void *), "PyUnicode_AsUTF8");
  py_decref = FN(void (*)(void *), "Py_DecRef");
  py_exc_value_error = (void **)sym("PyExc_ValueError");

  FN(void (*)(int), "Py_InitializeEx")(0);

  /* The library does not know this CPython: 1, nothing set. */
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(py_err_occurred() == NULL);

  /* Thread-state functions alone: the library can tell the thread is
   * attached, but has nothing to raise with. */
  memset(&api, 0, sizeof api);
  if (dlsym(py, "PyThreadState_GetUnchecked") != NULL) {
    api.thread_state_get = FN(void *(*)(void), "PyThreadState_GetUnchecked");
  } else {
    api.thread_state_get = FN(void *(*)(void), "_PyThreadState_UncheckedGet");
    api.gil_state_check = FN(int (*)(void), "PyGILState_Check");
  }
  api.save_thread = FN(void *(*)(void), "PyEval_SaveThread");
  api.restore_thread = FN(void (*)(void *), "PyEval_RestoreThread");
  api.make_pending_calls = FN(int (*)(void), "Py_MakePendingCalls");
  CHECK(weave_set_python_api(&api) == 0);
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(py_err_occurred() == NULL);

  /* The error functions, as ft_weave_python.h's weave_py_tell_library hands them over. */
  errors.set_string = FN(void (*)(void *, const char *), "PyErr_SetString");
  errors.value_error = *py_exc_value_error;
  errors.memory_error = *(void **)sym("PyExc_MemoryError");
  errors.runtime_error = *(void **)sym("PyExc_RuntimeError");
  CHECK(weave_set_python_errors(&errors) == 0);
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(value_error_is("_py_register_wvls_destructor"));
  removed = -1;
  CHECK(_py_unregister_wvls_destructor(NULL, &removed) == 0 && removed == 0);
  CHECK(py_err_occurred() == NULL);
  CHECK(_py_register_wvls_destructor(&t_slot, nothing) == 0);
  CHECK(py_err_occurred() == NULL);
  CHECK(_py_unregister_wvls_destructor(&t_slot, &removed) == 0 && removed == 1);
  CHECK(py_err_occurred() == NULL);

  /* A native thread without a thread state (the main thread detached). */
  main_state = api.save_thread();
  REQUIRE(pthread_create(&t, NULL, bare_thread, NULL) == 0, 1);
  pthread_join(t, NULL);
  api.restore_thread(main_state);
  CHECK(py_err_occurred() == NULL);

  CHECK(FN(int (*)(void), "Py_FinalizeEx")() == 0);
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  return embed_result("ported_dlopen");
}
