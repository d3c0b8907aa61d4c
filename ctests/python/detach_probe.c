/* detach_probe: a CPython extension module for the detach-while-blocked
 * tests (detach_blocked.py). Its functions block in weave_mutex_lock while
 * the calling thread's thread state is ATTACHED (no Py_BEGIN_ALLOW_THREADS),
 * as an extension's C code does: only the library's own detach lets other
 * threads (the GIL), gc.collect() (stop-the-world in the free-threaded
 * build) and finalization proceed meanwhile.
 *
 * Mutexes are passed as addresses (int), so that the same weave_mutex_t can
 * be a ctypes ft_weave.Mutex's (ctypes.addressof(m._m)).
 *
 *   lock(addr)                    weave_mutex_lock (parks with WEAVE_LOCK_DETACH)
 *   lock_timed(addr, s, detach)   weave_mutex_lock_timed, 1 acquired / 0 timed out
 *   unlock(addr)                  weave_mutex_unlock
 *   parks()                       weave_stats().parks
 *   last_return()                 monotonic seconds at which the last lock or
 *                                 lock_timed call of any thread returned from
 *                                 the library (still attached), 0.0 if none
 *   returns()                     how many lock / lock_timed calls returned
 *   section_lock(a, b, c)         inside a critical section on a, lock b
 *                                 (attached); see probe_section_lock
 *   exit_destructors()            how many section_lock thread-exit
 *                                 destructors ran
 *   unlock_after_finalize(addrs, linger_s, keep_unlocked=None)
 *                                 Py_AtExit: once Py_FinalizeEx has finalized
 *                                 the interpreter, unlock every mutex in
 *                                 addrs (threads blocked on them wake and try
 *                                 to re-attach), then keep the process alive
 *                                 linger_s seconds so that those threads go
 *                                 wherever CPython sends them (thread exit on
 *                                 3.11-3.13) before the process exits; then
 *                                 exit with 3 if keep_unlocked is locked.
 *   now()                         CLOCK_MONOTONIC seconds
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ft_weave.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t g_last_return_bits; /* a double, stored atomically through its bits */
static uint64_t g_returns;

static void note_return(void) {
  double t = mono_now();
  uint64_t bits;
  memcpy(&bits, &t, sizeof bits);
  __atomic_store_n(&g_last_return_bits, bits, __ATOMIC_RELEASE);
  __atomic_fetch_add(&g_returns, 1, __ATOMIC_ACQ_REL);
}

static weave_mutex_t *mutex_arg(PyObject *arg) {
  void *p = PyLong_AsVoidPtr(arg);
  if (p == NULL && !PyErr_Occurred()) {
    PyErr_SetString(PyExc_ValueError, "mutex address is NULL");
  }
  return (weave_mutex_t *)p;
}

static PyObject *probe_lock(PyObject *self, PyObject *arg) {
  weave_mutex_t *m = mutex_arg(arg);
  (void)self;
  if (m == NULL) {
    return NULL;
  }
  weave_mutex_lock(m); /* attached: the library detaches while it sleeps */
  note_return();
  Py_RETURN_NONE;
}

static PyObject *probe_lock_timed(PyObject *self, PyObject *args) {
  PyObject *addr;
  double seconds;
  int detach;
  weave_mutex_t *m;
  int status;
  (void)self;
  if (!PyArg_ParseTuple(args, "Odp", &addr, &seconds, &detach)) {
    return NULL;
  }
  m = mutex_arg(addr);
  if (m == NULL) {
    return NULL;
  }
  status = weave_mutex_lock_timed(m, (int64_t)(seconds * 1e9),
                                  detach ? WEAVE_LOCK_DETACH : WEAVE_LOCK_DONT_DETACH);
  note_return();
  if (status != WEAVE_LOCK_ACQUIRED && status != WEAVE_LOCK_FAILURE) {
    return PyErr_Format(PyExc_RuntimeError, "weave_mutex_lock_timed: %d (%s)", status, weave_last_error());
  }
  return PyLong_FromLong(status == WEAVE_LOCK_ACQUIRED);
}

/* section_lock(a, b, c): inside a critical section on `a`, block on `b`
 * (the section is suspended, `a` released, while the thread sleeps). The
 * thread also registers a thread-exit destructor that runs a section on `c`:
 * ending it resumes whatever section the thread's chain still has on top.
 * If the thread ever exits from inside the wait (CPython ending it while it
 * re-attaches during finalization), that top is this frame's section, gone
 * with the unwound stack: the destructor would lock `a` (or garbage). */
static weave_local void *g_exit_arg;
static weave_mutex_t *g_exit_mutex;
static int g_exit_destructors;

static void section_exit_destructor(void *arg) {
  weave_critical_section_t cs;
  (void)arg;
  weave_critical_section_begin(&cs, g_exit_mutex);
  weave_critical_section_end(&cs);
  __atomic_fetch_add(&g_exit_destructors, 1, __ATOMIC_ACQ_REL);
}

static PyObject *probe_section_lock(PyObject *self, PyObject *args) {
  PyObject *a_addr, *b_addr, *c_addr;
  weave_mutex_t *a, *b, *c;
  weave_critical_section_t cs;
  int rc;
  (void)self;
  if (!PyArg_ParseTuple(args, "OOO", &a_addr, &b_addr, &c_addr)) {
    return NULL;
  }
  a = mutex_arg(a_addr);
  b = a != NULL ? mutex_arg(b_addr) : NULL;
  c = b != NULL ? mutex_arg(c_addr) : NULL;
  if (c == NULL) {
    return NULL;
  }
  g_exit_mutex = c;
  g_exit_arg = &g_exit_arg;
  rc = weave_register_destructor(&g_exit_arg, section_exit_destructor);
  if (rc != 0) {
    return PyErr_Format(PyExc_RuntimeError, "weave_register_destructor: %d (%s)", rc, weave_last_error());
  }
  weave_critical_section_begin(&cs, a);
  weave_mutex_lock(b); /* attached; suspends the section while parked */
  note_return();
  (void)weave_mutex_unlock(b);
  weave_critical_section_end(&cs);
  Py_RETURN_NONE;
}

static PyObject *probe_exit_destructors(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromLong(__atomic_load_n(&g_exit_destructors, __ATOMIC_ACQUIRE));
}

static PyObject *probe_unlock(PyObject *self, PyObject *arg) {
  weave_mutex_t *m = mutex_arg(arg);
  int rc;
  (void)self;
  if (m == NULL) {
    return NULL;
  }
  rc = weave_mutex_unlock(m);
  if (rc != 0) {
    return PyErr_Format(PyExc_RuntimeError, "weave_mutex_unlock: %d (%s)", rc, weave_last_error());
  }
  Py_RETURN_NONE;
}

static PyObject *probe_parks(PyObject *self, PyObject *unused) {
  weave_stats_t s;
  (void)self;
  (void)unused;
  if (weave_stats(&s) != 0) {
    return PyErr_Format(PyExc_RuntimeError, "weave_stats: %s", weave_last_error());
  }
  return PyLong_FromUnsignedLongLong(s.parks);
}

static PyObject *probe_last_return(PyObject *self, PyObject *unused) {
  uint64_t bits = __atomic_load_n(&g_last_return_bits, __ATOMIC_ACQUIRE);
  double t;
  (void)self;
  (void)unused;
  memcpy(&t, &bits, sizeof t);
  return PyFloat_FromDouble(t);
}

static PyObject *probe_returns(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromUnsignedLongLong(__atomic_load_n(&g_returns, __ATOMIC_ACQUIRE));
}

static PyObject *probe_now(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyFloat_FromDouble(mono_now());
}

#define MAX_LATE 64
static weave_mutex_t *g_late[MAX_LATE];
static int g_late_count;
static double g_linger;
static weave_mutex_t *g_must_stay_unlocked; /* checked after the linger */

static int task_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  if (d == NULL) {
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n;
}

/* Py_AtExit: the interpreter is finalized; no Python API from here. */
static void unlock_late(void) {
  double until;
  int before = task_count();
  for (int i = 0; i < g_late_count; i++) {
    (void)weave_mutex_unlock(g_late[i]);
  }
  until = mono_now() + g_linger;
  while (mono_now() < until) {
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "detach_probe: unlocked %d mutexes after finalization; threads: %d before, %d %.1f s later; "
          "%d section_lock thread-exit destructor(s) ran\n",
          g_late_count, before, task_count(), g_linger, __atomic_load_n(&g_exit_destructors, __ATOMIC_ACQUIRE));
  if (g_must_stay_unlocked != NULL && weave_mutex_is_locked(g_must_stay_unlocked)) {
    /* A thread that exited from inside its wait resumed a section of its
     * unwound stack: the library's per-thread state outlived the frames. */
    fprintf(stderr, "detach_probe: FAILED: the suspended section's mutex was locked again by an exiting thread\n");
    fflush(stderr);
    _exit(3);
  }
}

static PyObject *probe_unlock_after_finalize(PyObject *self, PyObject *args) {
  PyObject *seq;
  PyObject *fast;
  double linger;
  Py_ssize_t n;
  (void)self;
  PyObject *keep_unlocked = Py_None;
  if (!PyArg_ParseTuple(args, "Od|O", &seq, &linger, &keep_unlocked)) {
    return NULL;
  }
  if (keep_unlocked != Py_None) {
    g_must_stay_unlocked = mutex_arg(keep_unlocked);
    if (g_must_stay_unlocked == NULL) {
      return NULL;
    }
  }
  if (g_late_count != 0) {
    PyErr_SetString(PyExc_RuntimeError, "unlock_after_finalize: already registered");
    return NULL;
  }
  fast = PySequence_Fast(seq, "addrs must be a sequence");
  if (fast == NULL) {
    return NULL;
  }
  n = PySequence_Fast_GET_SIZE(fast);
  if (n > MAX_LATE) {
    Py_DECREF(fast);
    PyErr_SetString(PyExc_ValueError, "too many mutexes");
    return NULL;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    weave_mutex_t *m = mutex_arg(PySequence_Fast_GET_ITEM(fast, i));
    if (m == NULL) {
      Py_DECREF(fast);
      return NULL;
    }
    g_late[i] = m;
  }
  Py_DECREF(fast);
  g_linger = linger;
  g_late_count = (int)n;
  if (Py_AtExit(unlock_late) != 0) {
    g_late_count = 0;
    PyErr_SetString(PyExc_RuntimeError, "Py_AtExit failed");
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyMethodDef probe_methods[] = {
    {"lock", probe_lock, METH_O, "weave_mutex_lock(addr) while attached"},
    {"lock_timed", probe_lock_timed, METH_VARARGS, "weave_mutex_lock_timed(addr, seconds, detach)"},
    {"unlock", probe_unlock, METH_O, "weave_mutex_unlock(addr)"},
    {"section_lock", probe_section_lock, METH_VARARGS, "inside a section on a, lock b"},
    {"exit_destructors", probe_exit_destructors, METH_NOARGS, "section_lock destructors run"},
    {"parks", probe_parks, METH_NOARGS, "weave_stats().parks"},
    {"last_return", probe_last_return, METH_NOARGS, "when the last lock call returned"},
    {"returns", probe_returns, METH_NOARGS, "how many lock calls returned"},
    {"now", probe_now, METH_NOARGS, "CLOCK_MONOTONIC seconds"},
    {"unlock_after_finalize", probe_unlock_after_finalize, METH_VARARGS,
     "unlock_after_finalize(addrs, linger_s, keep_unlocked=None): unlock from a Py_AtExit function"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot probe_slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* free-threaded: keep the GIL disabled */
#endif
    {0, NULL},
};

static struct PyModuleDef probe_module = {
    PyModuleDef_HEAD_INIT, "detach_probe", "ft_weave detach tests", 0, probe_methods,
    probe_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_detach_probe(void) { return PyModuleDef_Init(&probe_module); }
