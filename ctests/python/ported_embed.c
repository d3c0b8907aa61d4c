/* Code ported from ft_utils in a program that embeds CPython: the program
 * links libft_weave and libpython, so the library is loaded (and looks
 * CPython up) before the interpreter is initialized.
 *
 * _py_register_wvls_destructor and _py_unregister_wvls_destructor must
 *   - return 1 and set nothing before Py_Initialize and after Py_FinalizeEx
 *     (no thread state; weave_last_error() says why);
 *   - set a ValueError "<function>: <weave_last_error()>" on a failure while
 *     the calling thread has an attached thread state (the ft_utils pattern
 *     `if (_py_register_wvls_destructor(...)) return NULL;` relies on it);
 *   - return 0 and set nothing on success (an exception already set stays);
 *   - return 1 and set nothing on a native thread without a thread state,
 *     and set the exception on one attached through weave_py_enter.
 * alarm(60) bounds the program. */
#include <ft_weave_python.h>

#include <pthread.h>
#include <string.h>

#include "embed_check.h"

static weave_local void *t_slot;

static void nothing(void *value) { (void)value; }

/* The current exception is a ValueError whose message is
 * "<what>: <weave_last_error()>"; clears it. */
static int value_error_is(const char *what) {
  PyObject *type, *value, *tb;
  char expected[512];
  int ok = 0;
  PyErr_Fetch(&type, &value, &tb);
  snprintf(expected, sizeof expected, "%s: %s", what, weave_last_error());
  if (type != NULL && PyErr_GivenExceptionMatches(type, PyExc_ValueError) && value != NULL) {
    PyObject *s = PyObject_Str(value);
    const char *text = s != NULL ? PyUnicode_AsUTF8(s) : NULL;
    ok = text != NULL && strcmp(text, expected) == 0;
    if (!ok) {
      fprintf(stderr, "message: %s\nexpected: %s\n", text != NULL ? text : "(none)", expected);
    }
    Py_XDECREF(s);
  }
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return ok;
}

static void *bare_thread(void *arg) {
  int removed = -1;
  (void)arg;
  /* No thread state: nothing may touch Python here, and nothing does. */
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(strstr(weave_last_error(), "var is NULL") != NULL);
  /* As ft_utils: unregistering NULL is no failure (nothing was registered). */
  CHECK(_py_unregister_wvls_destructor(NULL, &removed) == 0 && removed == 0);
  CHECK(_py_register_wvls_destructor(&t_slot, nothing) == 0);
  CHECK(_py_unregister_wvls_destructor(&t_slot, &removed) == 0 && removed == 1);
  return NULL;
}

static void *pinned_thread(void *arg) {
  (void)arg;
  REQUIRE(weave_py_enter() == 0, NULL);
  CHECK(_py_register_wvls_destructor(&t_slot, NULL) == 1);
  CHECK(value_error_is("_py_register_wvls_destructor"));
  CHECK(_py_register_wvls_destructor(&t_slot, nothing) == 0);
  CHECK(PyErr_Occurred() == NULL);
  weave_py_exit();
  return NULL;
}

static void run_thread(void *(*fn)(void *)) {
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, fn, NULL) == 0, );
  pthread_join(t, NULL);
}

int main(void) {
  PyThreadState *main_state;
  int removed = -1;
  alarm(60);

  /* Before the interpreter exists. */
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(strstr(weave_last_error(), "var is NULL") != NULL);

  Py_Initialize();
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  CHECK(value_error_is("_py_register_wvls_destructor"));
  removed = -1;
  CHECK(_py_unregister_wvls_destructor(NULL, &removed) == 0 && removed == 0);
  CHECK(PyErr_Occurred() == NULL);
  CHECK(_py_register_wvls_destructor(&t_slot, nothing) == 0);
  CHECK(PyErr_Occurred() == NULL);
  CHECK(_py_unregister_wvls_destructor(&t_slot, &removed) == 0 && removed == 1);
  CHECK(PyErr_Occurred() == NULL);
  /* Success leaves an exception that was already set alone. */
  PyErr_SetString(PyExc_KeyError, "set before");
  CHECK(_py_register_wvls_destructor(&t_slot, nothing) == 0);
  CHECK(PyErr_ExceptionMatches(PyExc_KeyError));
  PyErr_Clear();
  CHECK(_py_unregister_wvls_destructor(&t_slot, &removed) == 0 && removed == 1);

  /* Native threads, with the main thread detached meanwhile. */
  main_state = PyEval_SaveThread();
  run_thread(bare_thread);
  run_thread(pinned_thread);
  PyEval_RestoreThread(main_state);
  CHECK(PyErr_Occurred() == NULL);

  CHECK(Py_FinalizeEx() == 0);
  /* After finalization: no thread state, no exception, no crash. */
  CHECK(_py_register_wvls_destructor(NULL, nothing) == 1);
  return embed_result("ported_embed");
}
