/* ftw_sections_ext: a CPython extension module (built for every test
 * interpreter by ftw_add_python_module) for two things that only show with a
 * real interpreter and real extension code:
 *
 * 1. Code ported from ft_utils: `if (_py_register_wvls_destructor(...))
 *    return NULL;` must leave a Python exception set when it fails
 *    (test_ported_register.py).
 * 2. ft_weave critical sections around calls into Python and around blocking
 *    native code: with and without ft_weave_python.h's suspension helpers
 *    (test_section_suspend.py).
 */
#include <ft_weave_python.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

/* ---- 1. ft_utils-ported registration --------------------------------- */

static weave_local void *t_slot;
static long g_destructed;

static void count_destructor(void *value) {
  (void)value;
  __atomic_fetch_add(&g_destructed, 1, __ATOMIC_RELAXED);
}

/* register(which): the ft_utils pattern verbatim. which = 0 registers a
 * valid destructor for t_slot, 1 passes a NULL variable, 2 a NULL
 * destructor (both rejected by the library). */
static PyObject *ported_register(PyObject *self, PyObject *args) {
  int which;
  (void)self;
  if (!PyArg_ParseTuple(args, "i", &which)) {
    return NULL;
  }
  if (_py_register_wvls_destructor(which == 1 ? NULL : &t_slot, which == 2 ? NULL : count_destructor)) {
    return NULL;
  }
  Py_RETURN_NONE;
}

/* unregister(null_var) -> bool removed, same pattern. */
static PyObject *ported_unregister(PyObject *self, PyObject *args) {
  int null_var;
  int removed = -1;
  (void)self;
  if (!PyArg_ParseTuple(args, "p", &null_var)) {
    return NULL;
  }
  if (_py_unregister_wvls_destructor(null_var ? NULL : &t_slot, &removed)) {
    return NULL;
  }
  return PyBool_FromLong(removed);
}

/* register_ok_status() -> (rc, error_set): a successful registration
 * (undone right away) returns 0 and leaves no exception set. */
static PyObject *register_ok_status(PyObject *self, PyObject *unused) {
  int rc;
  int error_set;
  (void)self;
  (void)unused;
  rc = _py_register_wvls_destructor(&t_slot, count_destructor);
  error_set = PyErr_Occurred() != NULL;
  PyErr_Clear();
  (void)weave_unregister_destructor(&t_slot);
  return Py_BuildValue("(iO)", rc, error_set ? Py_True : Py_False);
}

static PyObject *last_error(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyUnicode_FromString(weave_last_error());
}

struct native_result {
  int attach;          /* in: attach a pinned thread state first (weave_py_enter) */
  int entered;         /* weave_py_enter succeeded */
  int rc;              /* _py_register_wvls_destructor's result */
  char error[256];     /* weave_last_error() right after it */
  int exc_is_value;    /* attached: a ValueError was set */
  char exc_text[256];  /* attached: its message */
};

static void *native_register(void *arg) {
  struct native_result *r = (struct native_result *)arg;
  if (r->attach) {
    r->entered = weave_py_enter() == 0;
    if (!r->entered) {
      return NULL;
    }
  }
  /* No thread state unless attached: nothing here may touch Python. */
  r->rc = _py_register_wvls_destructor(NULL, count_destructor);
  snprintf(r->error, sizeof r->error, "%s", weave_last_error());
  if (r->attach) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    r->exc_is_value = type != NULL && PyErr_GivenExceptionMatches(type, PyExc_ValueError);
    if (value != NULL) {
      PyObject *s = PyObject_Str(value);
      const char *text = s != NULL ? PyUnicode_AsUTF8(s) : NULL;
      snprintf(r->exc_text, sizeof r->exc_text, "%s", text != NULL ? text : "?");
      Py_XDECREF(s);
      PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    weave_py_exit();
  }
  return NULL;
}

/* register_in_native_thread(attach) -> (entered, rc, last_error,
 * exc_is_value_error, exc_text): a failing registration on a pthread that
 * has no thread state (attach False) or a pinned one (attach True). */
static PyObject *register_in_native_thread(PyObject *self, PyObject *args) {
  int attach;
  pthread_t thread;
  struct native_result r;
  int err;
  (void)self;
  if (!PyArg_ParseTuple(args, "p", &attach)) {
    return NULL;
  }
  memset(&r, 0, sizeof r);
  r.attach = attach;
  r.rc = -1;
  err = pthread_create(&thread, NULL, native_register, &r);
  if (err != 0) {
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  Py_BEGIN_ALLOW_THREADS
  pthread_join(thread, NULL);
  Py_END_ALLOW_THREADS
  return Py_BuildValue("(iisOs)", r.entered, r.rc, r.error, r.exc_is_value ? Py_True : Py_False,
                       r.exc_text);
}

/* ---- 2. Critical sections around calls into Python --------------------- */

static weave_mutex_t g_mutex; /* the section every function below enters */
static long g_counter;        /* protected by g_mutex */
static sem_t g_posted;        /* post_in_section -> wait_in_section */
static int g_waiter_inside;   /* wait_in_section is inside its section */

enum call_mode { CALL_PLAIN = 0, CALL_SUSPENDED = 1, CALL_BLOCK = 2 };

/* section_call(callback, mode) -> callback's result, called inside a section
 * on g_mutex: mode 0 plainly (the section stays locked), 1 through
 * weave_py_call_suspended, 2 inside WEAVE_PY_BEGIN/END_SUSPEND_SECTIONS.
 * Raises AssertionError if the section does not hold g_mutex again after
 * the call. */
static PyObject *section_call(PyObject *self, PyObject *args) {
  PyObject *callback;
  PyObject *result = NULL;
  int mode;
  int held_after;
  (void)self;
  if (!PyArg_ParseTuple(args, "Oi", &callback, &mode)) {
    return NULL;
  }
  WEAVE_BEGIN_CRITICAL_SECTION(&g_mutex);
  g_counter++;
  if (mode == CALL_SUSPENDED) {
    result = weave_py_call_suspended(callback, NULL, NULL);
  } else if (mode == CALL_BLOCK) {
    WEAVE_PY_BEGIN_SUSPEND_SECTIONS
    result = PyObject_CallNoArgs(callback);
    WEAVE_PY_END_SUSPEND_SECTIONS
  } else {
    result = PyObject_CallNoArgs(callback);
  }
  held_after = weave_mutex_is_locked(&g_mutex);
  g_counter++;
  WEAVE_END_CRITICAL_SECTION();
  if (result != NULL && !held_after) {
    Py_DECREF(result);
    PyErr_SetString(PyExc_AssertionError, "the section's mutex is not held after the call");
    return NULL;
  }
  return result;
}

/* section_enter(): enters the section (blocking like any section begin,
 * with the thread state released while it waits) and leaves it. */
static PyObject *section_enter(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  WEAVE_BEGIN_CRITICAL_SECTION(&g_mutex);
  g_counter++;
  WEAVE_END_CRITICAL_SECTION();
  Py_RETURN_NONE;
}

static weave_mutex_t g_other; /* a second, unrelated section */

/* other_section_enter(): enters and leaves a section on another mutex. */
static PyObject *other_section_enter(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  WEAVE_BEGIN_CRITICAL_SECTION(&g_other);
  WEAVE_END_CRITICAL_SECTION();
  Py_RETURN_NONE;
}

/* section_is_locked() -> bool: whether g_mutex is locked (by anyone). */
static PyObject *section_is_locked(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyBool_FromLong(weave_mutex_is_locked(&g_mutex));
}

static PyObject *counter(PyObject *self, PyObject *unused) {
  long v;
  (void)self;
  (void)unused;
  WEAVE_BEGIN_CRITICAL_SECTION(&g_mutex);
  v = g_counter;
  WEAVE_END_CRITICAL_SECTION();
  return PyLong_FromLong(v);
}

static struct timespec deadline_after(double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)seconds;
  ts.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static int sem_wait_until(sem_t *s, const struct timespec *deadline) {
  int rc;
  do {
    rc = sem_timedwait(s, deadline);
  } while (rc != 0 && errno == EINTR);
  return rc == 0;
}

/* wait_in_section(timeout, suspend) -> bool: inside a section on g_mutex,
 * blocks in native code (a semaphore) for post_in_section, which enters the
 * same section first. suspend False: Py_BEGIN_ALLOW_THREADS (the section
 * stays locked, so the post cannot come: False after `timeout` seconds);
 * True: WEAVE_PY_BEGIN_ALLOW_THREADS. */
static PyObject *wait_in_section(PyObject *self, PyObject *args) {
  double timeout;
  int suspend;
  int posted;
  struct timespec deadline;
  (void)self;
  if (!PyArg_ParseTuple(args, "dp", &timeout, &suspend)) {
    return NULL;
  }
  while (sem_trywait(&g_posted) == 0) {
    /* drop a post left over by an earlier round */
  }
  deadline = deadline_after(timeout);
  WEAVE_BEGIN_CRITICAL_SECTION(&g_mutex);
  __atomic_store_n(&g_waiter_inside, 1, __ATOMIC_RELEASE);
  if (suspend) {
    WEAVE_PY_BEGIN_ALLOW_THREADS
    posted = sem_wait_until(&g_posted, &deadline);
    WEAVE_PY_END_ALLOW_THREADS
  } else {
    Py_BEGIN_ALLOW_THREADS
    posted = sem_wait_until(&g_posted, &deadline);
    Py_END_ALLOW_THREADS
  }
  __atomic_store_n(&g_waiter_inside, 0, __ATOMIC_RELEASE);
  g_counter++;
  WEAVE_END_CRITICAL_SECTION();
  return PyBool_FromLong(posted);
}

/* post_in_section(timeout) -> bool: waits (detached) until wait_in_section
 * is inside its section, then enters the section, posts and leaves. False
 * if the waiter never showed up within `timeout`. */
static PyObject *post_in_section(PyObject *self, PyObject *args) {
  double timeout;
  int inside = 0;
  struct timespec now, start;
  (void)self;
  if (!PyArg_ParseTuple(args, "d", &timeout)) {
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    struct timespec nap = {0, 200000L};
    inside = __atomic_load_n(&g_waiter_inside, __ATOMIC_ACQUIRE);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (inside || (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 > timeout) {
      break;
    }
    nanosleep(&nap, NULL);
  }
  Py_END_ALLOW_THREADS
  if (!inside) {
    Py_RETURN_FALSE;
  }
  WEAVE_BEGIN_CRITICAL_SECTION(&g_mutex);
  g_counter++;
  sem_post(&g_posted);
  WEAVE_END_CRITICAL_SECTION();
  Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"ported_register", ported_register, METH_VARARGS, "the ft_utils pattern around _py_register_wvls_destructor"},
    {"ported_unregister", ported_unregister, METH_VARARGS, "the same around _py_unregister_wvls_destructor"},
    {"register_ok_status", register_ok_status, METH_NOARGS, "(rc, exception set) of a successful registration"},
    {"register_in_native_thread", register_in_native_thread, METH_VARARGS, "a failing registration on a pthread"},
    {"last_error", last_error, METH_NOARGS, "weave_last_error()"},
    {"section_call", section_call, METH_VARARGS, "call a callback inside a section"},
    {"section_enter", section_enter, METH_NOARGS, "enter and leave the section"},
    {"counter", counter, METH_NOARGS, "the section's counter"},
    {"other_section_enter", other_section_enter, METH_NOARGS, "enter and leave a section on another mutex"},
    {"section_is_locked", section_is_locked, METH_NOARGS, "whether the section's mutex is locked"},
    {"wait_in_section", wait_in_section, METH_VARARGS, "block in native code inside the section"},
    {"post_in_section", post_in_section, METH_VARARGS, "enter the section and wake wait_in_section"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ftw_sections_ext", "ft_weave test extension: ported registration and sections",
    -1, methods, NULL, NULL, NULL, NULL};

/* Single-phase init: no slot table, so no function-to-object pointer cast
 * (which -pedantic rejects). */
PyMODINIT_FUNC PyInit_ftw_sections_ext(void) {
  PyObject *module = PyModule_Create(&module_def);
  if (module == NULL) {
    return NULL;
  }
  if (sem_init(&g_posted, 0, 0) != 0) {
    Py_DECREF(module);
    return PyErr_SetFromErrno(PyExc_OSError);
  }
#ifdef Py_GIL_DISABLED
  /* Safe without the GIL: everything shared is behind g_mutex or atomic. */
  if (PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED) != 0) {
    Py_DECREF(module);
    return NULL;
  }
#endif
  return module;
}
