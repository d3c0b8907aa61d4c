/*
 * ft_weave_python.h - CPython thread state reuse for native threads.
 *
 * Header-only, on top of ft_weave.h (cross-library storage and the RW
 * mutex); include it after <Python.h> or instead of it (it includes both).
 * Not for Py_LIMITED_API builds: it uses PyThreadState_DeleteCurrent and the
 * unchecked current-thread-state getter. Compiles warning-free as C11 and
 * C++17 with -Wall -Wextra -pedantic.
 *
 * The problem (CPython's "Non-Python created threads" docs): a native thread
 * that calls into Python many times should create its PyThreadState once,
 * attach and detach it around each call, and destroy it when the thread
 * ends, before the interpreter is finalized. PyGILState_Ensure/Release with
 * no outer state creates and destroys a thread state on every call instead
 * (see bench/python_thread_state_bench.c), and hand-rolled versions usually
 * get thread exit or finalization wrong. Here:
 *
 *     static void *worker(void *arg) {            // a pthread, not a Python thread
 *       for (int i = 0; i < 1000; i++) {
 *         if (weave_py_enter() != 0) {
 *           break;                                // interpreter gone or finalizing
 *         }
 *         PyObject *r = PyObject_CallFunction(callback, "i", i);   // GIL held
 *         Py_XDECREF(r);
 *         weave_py_exit();                        // GIL released, state kept
 *       }
 *       return arg;                               // state destroyed at thread exit
 *     }
 *
 * Functions
 *   weave_py_enter()   attach this thread's pinned thread state (created on
 *                      first use); nestable. 0, or -1 (nothing attached).
 *   weave_py_exit()    undo one weave_py_enter; the outermost detaches.
 *   weave_py_release() destroy this thread's pinned state now.
 *   weave_py_tell_library()
 *                      hand this CPython to the library (done by the first
 *                      weave_py_enter; for programs that load libpython late).
 *   weave_py_thread_states_created() / _destroyed() / _abandoned()
 *                      process-wide counters, for tests and monitoring.
 *   weave_py_call_suspended(callable, args, kwargs)
 *                      PyObject_Call with the thread's ft_weave critical
 *                      sections suspended during the call.
 *   WEAVE_PY_BEGIN/END_SUSPEND_SECTIONS, WEAVE_PY_BEGIN/END_ALLOW_THREADS
 *                      the same around a block; the second pair also
 *                      releases the thread state. See "Critical sections
 *                      around calls into Python" below: a section is not
 *                      suspended when its thread blocks in Python code.
 *
 * Rules
 * - For native threads only. A thread that already has a thread state of
 *   its own (the main thread of an embedding program, threading.Thread
 *   threads, a thread inside PyGILState_Ensure) gets -1 from weave_py_enter:
 *   use its own state. Code inside weave_py_enter/exit may call
 *   PyGILState_Ensure/Release: they find and reuse the pinned state.
 * - One pinned state per thread per process, even when several binaries
 *   (an embedding program and plugins, several extension modules) include
 *   this header: the state lives in ft_weave's cross-library storage under
 *   the key "ft_weave.python:thread", the process-wide part under
 *   "ft_weave.python:process".
 * - States belong to the main interpreter (PyInterpreterState_Main()).
 * - Thread exit: the pinned state is destroyed by a storage destructor
 *   (weave_tls_set_destructor), which runs after the thread-exit destructors
 *   of ft_weave.h section 2. A thread that exits while attached (depth > 0)
 *   detaches first.
 * - The first weave_py_enter of the process also hands this CPython's
 *   thread-state and error functions to ft_weave (weave_py_tell_library:
 *   weave_set_python_api, weave_set_python_errors), so that its waits with
 *   detach release the thread state, and the ft_utils helpers set
 *   exceptions, even when libpython was loaded after libft_weave.so or with
 *   RTLD_LOCAL.
 * - Finalization: the first weave_py_enter registers, through Python's atexit
 *   module, a C callback that runs at the start of Py_FinalizeEx (after
 *   threading's shutdown, before the runtime starts tearing down). It takes
 *   the process-wide RW mutex for writing (releasing the GIL while it waits)
 *   and sets a "finalizing" flag. Attaching and destroying hold the same
 *   mutex for reading while they check the flag and take the GIL, so once the
 *   flag is set no thread starts a Python call through this helper:
 *     - weave_py_enter returns -1 without touching Python (also from then on,
 *       for the rest of the process: re-initializing Python after
 *       Py_FinalizeEx is not supported by this helper);
 *     - a pinned state whose thread exits later is abandoned (its memory
 *       belongs to the finalized interpreter; nothing calls into Python), so
 *       the thread exit never hangs on a GIL that will not come back;
 *     - weave_py_release does the same.
 *   A thread that is *inside* weave_py_enter/exit when finalization starts
 *   is in the situation of a daemon thread: CPython ends (3.11-3.13) or
 *   blocks (3.14) it when it next tries to take the GIL; its state is then
 *   abandoned as above.
 * - The first weave_py_enter of the process should not race with the atexit
 *   phase of finalization (a callback registered while atexit callbacks are
 *   running is not run). Entering once early, for example from the module
 *   init of the extension that starts the native threads, rules that out.
 * - The binary that registered the callback (the first to call
 *   weave_py_enter) must stay loaded until finalization, as extension
 *   modules always do.
 * - weave_storage_reset() drops this helper's state with everything else:
 *   do not reset while threads use it.
 * - Blocking: weave_py_enter blocks until the GIL is available (as
 *   PyEval_RestoreThread). Nothing here aborts or prints.
 */
#ifndef FT_WEAVE_PYTHON_H
#define FT_WEAVE_PYTHON_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include "ft_weave.h"

#if defined(Py_LIMITED_API)
#error "ft_weave_python.h needs the full CPython API (it is not usable with Py_LIMITED_API)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define WEAVE_PY_PROCESS_KEY "ft_weave.python:process"
#define WEAVE_PY_THREAD_KEY "ft_weave.python:thread"

/* Process-wide state, shared through weave_static_get. Fixed at 64 bytes
 * (reserved tail) so that later versions of this header can add fields
 * without a storage size mismatch. Private: read it through the functions
 * below. */
typedef struct weave_py_process {
  weave_rwmutex_t lock;  /* read: attach/destroy; write: the atexit callback */
  uint64_t created;      /* thread states created by weave_py_enter          */
  uint64_t destroyed;    /* ... destroyed (thread exit or weave_py_release)  */
  uint64_t abandoned;    /* ... left alone because finalization had begun    */
  weave_once_t hook;     /* the atexit callback is registered                */
  uint8_t finalizing;    /* set once, under the write lock                   */
  uint8_t _reserved[30];
} weave_py_process_t;
WEAVE_STATIC_ASSERT(sizeof(weave_py_process_t) == 64, "weave_py_process_t is 64 bytes");

/* One per thread, through weave_tls_get. Private. */
typedef struct weave_py_thread {
  PyThreadState *tstate;       /* the pinned state, or NULL            */
  weave_py_process_t *process; /* cached weave_static_get result       */
  uint64_t depth;              /* weave_py_enter nesting; 0 = detached */
  uint64_t _reserved;
} weave_py_thread_t;
WEAVE_STATIC_ASSERT(sizeof(weave_py_thread_t) == 32, "weave_py_thread_t is 32 bytes");

/* ---- internals --------------------------------------------------------- */

/* The thread state attached to the calling thread, without failing when
 * there is none. On 3.11 this is the GIL holder of the process, so comparing
 * it with our own state tells whether this thread holds the GIL. */
static inline PyThreadState *weave_py__current(void) {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

/* With the read lock held and finalization not begun: attach `ts`, clear
 * it and delete it (which detaches). */
static inline void weave_py__delete(weave_py_process_t *p, PyThreadState *ts) {
  PyEval_RestoreThread(ts);
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
  __atomic_fetch_add(&p->destroyed, 1, __ATOMIC_RELAXED);
}

/* Destroys (or, once finalization has begun, abandons) the pinned state of
 * `t`, which belongs to the calling thread. */
static inline void weave_py__destroy(weave_py_thread_t *t) {
  PyThreadState *ts = t->tstate;
  weave_py_process_t *p = t->process;
  if (ts == NULL || p == NULL) {
    return;
  }
  if (t->depth > 0) {
    /* The thread ends while attached. Release the GIL first if this thread
     * holds it: taking the read lock below while holding the GIL could wait
     * behind the atexit callback, which waits for readers that wait for the
     * GIL. If CPython itself ended the thread while it waited for the GIL
     * (finalization), it holds nothing: leave the GIL alone. */
    if (weave_py__current() == ts) {
      (void)PyEval_SaveThread();
    }
    t->depth = 0;
  }
  t->tstate = NULL;
  weave_rwmutex_rlock(&p->lock);
  /* Acquire: pairs with the release store of the atexit callback (the lock
   * orders them too; the atomic keeps the flag's accesses data-race free). */
  if (!__atomic_load_n(&p->finalizing, __ATOMIC_ACQUIRE)) {
    weave_py__delete(p, ts);
  } else {
    __atomic_fetch_add(&p->abandoned, 1, __ATOMIC_RELAXED);
  }
  (void)weave_rwmutex_runlock(&p->lock);
}

/* Storage destructor of WEAVE_PY_THREAD_KEY: runs at thread exit with the
 * thread's value, while the thread can still run code. */
static inline void weave_py__thread_exit(void *value) {
  weave_py__destroy((weave_py_thread_t *)value);
}

/* Hands this CPython's thread-state functions (weave_set_python_api) and
 * error functions (weave_set_python_errors) to the library, so that its
 * waits detach from this interpreter and the ft_utils helpers
 * (_py_register_wvls_destructor) set exceptions, even when the library could
 * not find CPython by itself at load time (libpython loaded after it, or
 * with RTLD_LOCAL). The library never searches for CPython after its load.
 * The first weave_py_enter of the process does it; an embedding program
 * that loads libpython with dlopen and calls Python only on threads of its
 * own calls it once after Py_Initialize. Harmless to repeat (the first set
 * is kept); does not block and needs no thread state. The casts go through
 * void (*)(void), which -Wcast-function-type accepts. */
static inline void weave_py_tell_library(void) {
  weave_python_api_t api;
  weave_python_errors_t errors;
#if PY_VERSION_HEX >= 0x030D0000
  api.thread_state_get = (void *(*)(void))(void (*)(void))PyThreadState_GetUnchecked;
  api.gil_state_check = NULL;
#else
  api.thread_state_get = (void *(*)(void))(void (*)(void))_PyThreadState_UncheckedGet;
  api.gil_state_check = PyGILState_Check;
#endif
  api.save_thread = (void *(*)(void))(void (*)(void))PyEval_SaveThread;
  api.restore_thread = (void (*)(void *))(void (*)(void))PyEval_RestoreThread;
  api.make_pending_calls = Py_MakePendingCalls;
  (void)weave_set_python_api(&api);
  errors.set_string = (void (*)(void *, const char *))(void (*)(void))PyErr_SetString;
  errors.value_error = PyExc_ValueError;
  errors.memory_error = PyExc_MemoryError;
  errors.runtime_error = PyExc_RuntimeError;
  (void)weave_set_python_errors(&errors);
}

static inline int weave_py__process_init(void *storage, void *arg) {
  (void)storage;
  (void)arg;
  weave_py_tell_library();
  return weave_tls_set_destructor(WEAVE_PY_THREAD_KEY, weave_py__thread_exit) == 0 ? 0 : -1;
}

static inline weave_py_process_t *weave_py__process(void) {
  return (weave_py_process_t *)weave_static_get(WEAVE_PY_PROCESS_KEY, sizeof(weave_py_process_t),
                                                weave_py__process_init, NULL);
}

/* The atexit callback: runs at the start of Py_FinalizeEx, on the finalizing
 * thread, with the GIL held. The GIL is released while waiting for the
 * write lock: a reader may be waiting for the GIL to finish its attach or
 * destroy. (weave_rwmutex_lock would also detach on its own when the library
 * can see CPython's symbols; releasing explicitly does not depend on that.) */
static inline PyObject *weave_py__atexit(PyObject *self, PyObject *unused) {
  weave_py_process_t *p = weave_py__process();
  PyThreadState *save;
  (void)self;
  (void)unused;
  if (p != NULL) {
    save = PyEval_SaveThread();
    weave_rwmutex_lock(&p->lock);
    /* Release: pairs with the acquire loads in weave_py_enter/__destroy. */
    __atomic_store_n(&p->finalizing, (uint8_t)1, __ATOMIC_RELEASE);
    (void)weave_rwmutex_unlock(&p->lock);
    PyEval_RestoreThread(save);
  }
  Py_RETURN_NONE;
}

/* weave_once_fn: registers weave_py__atexit with Python's atexit module,
 * attaching `arg` (the caller's new, detached state) meanwhile. Called
 * detached, so threads waiting on the once flag never hold the GIL. */
static inline int weave_py__register_atexit(void *arg) {
  static PyMethodDef def = {"ft_weave_python_finalizing", weave_py__atexit, METH_NOARGS,
                            "ft_weave_python.h: mark the start of finalization"};
  PyObject *module;
  PyObject *fn = NULL;
  PyObject *result = NULL;
  PyEval_RestoreThread((PyThreadState *)arg);
  module = PyImport_ImportModule("atexit");
  if (module != NULL) {
    fn = PyCFunction_New(&def, NULL);
  }
  if (fn != NULL) {
    result = PyObject_CallMethod(module, "register", "O", fn);
  }
  Py_XDECREF(result);
  Py_XDECREF(fn);
  Py_XDECREF(module);
  if (result == NULL) {
    PyErr_Clear(); /* reported as weave_py_enter() == -1 */
  }
  (void)PyEval_SaveThread();
  return result != NULL ? 0 : -1;
}

/* ---- API --------------------------------------------------------------- */

/* Attaches the calling thread's pinned PyThreadState, creating it on first
 * use (PyThreadState_New(PyInterpreterState_Main())), and makes it current
 * with the GIL held (as PyEval_RestoreThread; blocks until the GIL is free).
 * Nestable: an inner call only counts. Returns 0, or -1 with nothing
 * attached when Python is not initialized, finalization has begun, the
 * thread already has a thread state of its own, the thread is past its
 * storage teardown, or memory or the atexit registration failed. Never call
 * weave_py_exit after a -1. */
static inline int weave_py_enter(void) {
  weave_py_thread_t *t;
  weave_py_process_t *p;
  PyThreadState *ts;
  int created = 0;
  t = (weave_py_thread_t *)weave_tls_get(WEAVE_PY_THREAD_KEY, sizeof(weave_py_thread_t), NULL, NULL);
  if (t == NULL) {
    return -1;
  }
  if (t->depth > 0) {
    t->depth++;
    return 0;
  }
  p = t->process;
  if (p == NULL) {
    p = weave_py__process();
    if (p == NULL) {
      return -1;
    }
    t->process = p;
  }
  /* The read lock keeps the atexit callback (the writer) from setting the
   * flag between this check and the attach below. */
  weave_rwmutex_rlock(&p->lock);
  if (__atomic_load_n(&p->finalizing, __ATOMIC_ACQUIRE) || !Py_IsInitialized()) {
    (void)weave_rwmutex_runlock(&p->lock);
    return -1;
  }
  ts = t->tstate;
  if (ts == NULL) {
    if (PyGILState_GetThisThreadState() != NULL) {
      /* Not a native thread: it has a state of its own (which would also
       * deadlock on the GIL if it is attached). */
      (void)weave_rwmutex_runlock(&p->lock);
      return -1;
    }
    ts = PyThreadState_New(PyInterpreterState_Main());
    if (ts == NULL) {
      (void)weave_rwmutex_runlock(&p->lock);
      return -1;
    }
    t->tstate = ts;
    created = 1;
    __atomic_fetch_add(&p->created, 1, __ATOMIC_RELAXED);
  }
  if (created && weave_once_call(&p->hook, weave_py__register_atexit, ts) != 0) {
    t->tstate = NULL;
    weave_py__delete(p, ts);
    (void)weave_rwmutex_runlock(&p->lock);
    return -1;
  }
  PyEval_RestoreThread(ts);
  (void)weave_rwmutex_runlock(&p->lock);
  t->depth = 1;
  return 0;
}

/* Undoes one weave_py_enter; the outermost one detaches the state (as
 * PyEval_SaveThread: the GIL is released) and keeps it for the next enter.
 * Ignored on a thread that is not inside weave_py_enter. */
static inline void weave_py_exit(void) {
  weave_py_thread_t *t =
      (weave_py_thread_t *)weave_tls_get(WEAVE_PY_THREAD_KEY, sizeof(weave_py_thread_t), NULL, NULL);
  if (t == NULL || t->depth == 0) {
    return;
  }
  if (--t->depth == 0) {
    (void)PyEval_SaveThread();
  }
}

/* Destroys the calling thread's pinned state now (PyThreadState_Clear and
 * delete, which may run Python code such as finalizers of thread-local
 * objects); the next weave_py_enter creates a new one. Once finalization has
 * begun the state is abandoned instead. Ignored inside weave_py_enter/exit
 * and on threads without a pinned state. Blocks until the GIL is free. */
static inline void weave_py_release(void) {
  weave_py_thread_t *t =
      (weave_py_thread_t *)weave_tls_get(WEAVE_PY_THREAD_KEY, sizeof(weave_py_thread_t), NULL, NULL);
  if (t != NULL && t->depth == 0) {
    weave_py__destroy(t);
  }
}

/* How many thread states weave_py_enter has created in this process. */
static inline uint64_t weave_py_thread_states_created(void) {
  weave_py_process_t *p = weave_py__process();
  return p == NULL ? 0 : __atomic_load_n(&p->created, __ATOMIC_RELAXED);
}

/* How many were destroyed (at thread exit or by weave_py_release). */
static inline uint64_t weave_py_thread_states_destroyed(void) {
  weave_py_process_t *p = weave_py__process();
  return p == NULL ? 0 : __atomic_load_n(&p->destroyed, __ATOMIC_RELAXED);
}

/* How many were abandoned because finalization had begun when their
 * thread exited or released them. */
static inline uint64_t weave_py_thread_states_abandoned(void) {
  weave_py_process_t *p = weave_py__process();
  return p == NULL ? 0 : __atomic_load_n(&p->abandoned, __ATOMIC_RELAXED);
}

/* ---- Critical sections around calls into Python ------------------------
 *
 * An ft_weave critical section (ft_weave.h section 5) is suspended only
 * while its thread blocks *inside ft_weave* with detach (a contended
 * weave_mutex_lock or section begin, weave_cond_wait, weave_event_wait,
 * RW mutex and once waits, weave_park with detach). CPython's own sections
 * are suspended whenever the thread state detaches; ft_weave cannot see
 * that. So blocking in Python code (threading.Lock.acquire, queue.get,
 * Thread.join, I/O, time.sleep), in PyMutex_Lock, or between
 * Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS keeps the ft_weave
 * sections locked, and a thread that waits there for a thread that is
 * entering the same section deadlocks:
 *
 *     thread A                                thread B
 *     WEAVE_BEGIN_CRITICAL_SECTION(&o->m)     with lock:   # threading.Lock
 *     PyObject_CallNoArgs(callback)             ext.method(o)  # begins a
 *       callback: lock.acquire()  # waits       # section on o->m: waits
 *
 * Treat every call into Python from inside a section as a blocking call
 * (any Python code may block, and so may a Py_DECREF that runs a
 * finalizer): suspend the thread's sections around it with one of the
 * helpers below, as CPython does on detach, and re-check what the section
 * protects afterwards (another thread may have changed it meanwhile):
 *
 *     WEAVE_BEGIN_CRITICAL_SECTION(&o->m);
 *     ... read and update o under o->m ...
 *     r = weave_py_call_suspended(callback, NULL, NULL);  // o->m free meanwhile
 *     ... o->m held again: re-read o before relying on it ...
 *     WEAVE_END_CRITICAL_SECTION();
 *
 * Resuming re-takes the innermost section's mutexes (blocking like a
 * section begin: it releases the thread state while it waits); outer
 * sections are re-taken as the inner ones end. Outside any section these
 * helpers cost three calls into the library and an uncontended lock.
 */

/* How the helpers suspend (private; a local of the caller). Suspending
 * alone is not enough: a section that Python code begins and ends during
 * the call would, as it ends, resume the suspended section around it (the
 * rule for nested sections), and the next blocking wait of that code would
 * hold it again. So after suspending, the helpers begin a section on a mutex
 * of their own (a barrier no other thread ever sees): sections begun during
 * the call nest inside the barrier and resume it, not the caller's. Ending
 * the barrier resumes the caller's innermost section. */
typedef struct weave_py_suspension {
  weave_critical_section_t _barrier;
  weave_mutex_t _mutex;
} weave_py_suspension_t;

static inline void weave_py__suspend(weave_py_suspension_t *s) {
  memset(&s->_mutex, 0, sizeof s->_mutex);
  weave_critical_section_suspend_all();
  weave_critical_section_begin(&s->_barrier, &s->_mutex); /* uncontended: never blocks */
}

static inline void weave_py__resume(weave_py_suspension_t *s) {
  weave_critical_section_end(&s->_barrier); /* re-takes the caller's innermost section */
}

/* PyObject_Call(callable, args, kwargs) with every ft_weave critical section
 * of the calling thread suspended during the call (sections the call itself
 * begins work as usual). args may be NULL (no positional arguments); kwargs
 * may be NULL. Returns the call's result, or NULL with the call's exception
 * set. The caller holds an attached thread state (as for PyObject_Call);
 * the sections are resumed before it returns, with the thread state
 * released while it waits for them. */
static inline PyObject *weave_py_call_suspended(PyObject *callable, PyObject *args, PyObject *kwargs) {
  weave_py_suspension_t s;
  PyObject *result;
  weave_py__suspend(&s);
  if (args == NULL) {
    result = PyObject_VectorcallDict(callable, NULL, 0, kwargs);
  } else {
    result = PyObject_Call(callable, args, kwargs);
  }
  weave_py__resume(&s);
  return result;
}

/* The same for any block of code that calls into Python (several calls,
 * PyObject_CallMethod, attribute access that may run Python code):
 *
 *     WEAVE_PY_BEGIN_SUSPEND_SECTIONS
 *     r = PyObject_CallMethod(obj, "update", "O", arg);
 *     WEAVE_PY_END_SUSPEND_SECTIONS
 *
 * The pair opens and closes a block: use it in one scope, and do not leave
 * the block with return, break or goto. */
#define WEAVE_PY_BEGIN_SUSPEND_SECTIONS      \
  {                                          \
    weave_py_suspension_t _weave_py_susp;    \
    weave_py__suspend(&_weave_py_susp);
#define WEAVE_PY_END_SUSPEND_SECTIONS        \
    weave_py__resume(&_weave_py_susp);       \
  }

/* Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS that also suspend the
 * calling thread's ft_weave sections, in CPython's order (a detach suspends
 * sections, then releases the thread state; an attach takes the thread state
 * back, then resumes): for blocking native code inside a section (a read(),
 * a pthread or semaphore wait, a wait in another library):
 *
 *     WEAVE_PY_BEGIN_ALLOW_THREADS
 *     n = read(fd, buf, size);          // no Python calls in here
 *     WEAVE_PY_END_ALLOW_THREADS
 *
 * Same block rules as Py_BEGIN_ALLOW_THREADS. */
#define WEAVE_PY_BEGIN_ALLOW_THREADS          \
  {                                           \
    weave_py_suspension_t _weave_py_susp;     \
    PyThreadState *_weave_py_save;            \
    weave_py__suspend(&_weave_py_susp);       \
    _weave_py_save = PyEval_SaveThread();
#define WEAVE_PY_END_ALLOW_THREADS            \
    PyEval_RestoreThread(_weave_py_save);     \
    weave_py__resume(&_weave_py_susp);        \
  }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FT_WEAVE_PYTHON_H */
