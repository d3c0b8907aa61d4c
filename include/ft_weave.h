/*
 * ft_weave.h - thread coordination for C, C++ and Python extension authors.
 *
 * libft_weave.so is written in C# and compiled with .NET NativeAOT; this header
 * is its whole C ABI. It compiles warning-free as C11 and as C++17.
 *
 * Sections
 *   1. Conventions            versions, error codes, weave_strerror,
 *                             weave_last_error, weave_thread_id
 *   2. Thread-exit destructors weave_local, weave_register_destructor, ...,
 *                             and the ft_utils-compatible names
 *   3. Parking lot            weave_park, weave_unpark, weave_unpark_all
 *   4. Locks                  status and flags, then one part per primitive:
 *                             mutex, raw mutex, event, once, recursive mutex,
 *                             RW mutex, seqlock, condition variable, statistics
 *   5. Critical sections      PEP 703 sections over weave_mutex_t
 *   6. Cross-library storage  per-thread and static values keyed by name,
 *                             shared by every binary in the process
 *
 * Uncontended lock operations are static inline here (one atomic instruction
 * on the struct's own word) and fall back to exports whose names end in
 * _slow. Every inline function is also exported under its own name with the
 * same behaviour, for FFIs that cannot use this header (ctypes, Rust, C#);
 * the only exceptions are private helpers named weave__* (not API).
 *
 * This header's comments and the project's docs/ directory are the
 * contract: what they say is what the library does (the tests check it).
 * C++: ft_weave.hpp wraps the locks in RAII types (docs/cpp.md).
 * Link with -lft_weave (pkg-config ft_weave, or CMake target ft_weave::ft_weave).
 */
#ifndef FT_WEAVE_H
#define FT_WEAVE_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WEAVE_API __attribute__((visibility("default")))
#else
#define WEAVE_API
#endif

#if defined(__cplusplus)
#define WEAVE_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define WEAVE_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* The inline fast paths use the GCC/Clang __atomic builtins, which work on the
 * plain struct fields from both C and C++ (C11 <stdatomic.h> is not usable
 * from C++17). */
#if !defined(__GNUC__) && !defined(__clang__)
#error "ft_weave.h needs GCC or Clang (__atomic builtins)"
#endif

/* ======================================================================
 * 1. Conventions
 * ======================================================================
 *
 * - Time is int64_t relative nanoseconds: < 0 waits forever, 0 does not
 *   block (one attempt, no spinning), > 0 waits at most that long on the
 *   monotonic clock.
 * - Errors are negative codes (weave_error_t), distinct from every status
 *   value a function returns. No function aborts the process or writes to
 *   stderr on bad input: it returns a code and records a message that
 *   weave_last_error() returns on the same thread.
 * - No call aborts the process at any point of a thread's life: from C++
 *   thread_local and pthread key destructors (see the ordering in section 2),
 *   in waits that a signal interrupts, after main() called pthread_exit, after
 *   a dlclose. Lock, unlock, condition, event, once and park calls work
 *   there; calls that need the thread's own state work or return
 *   WEAVE_E_STATE. docs/reliability.md lists what was tried.
 */

/* Version of this header; weave_version() and weave_abi_version() report the
 * library's, which a program can compare at run time (as zstd pairs
 * ZSTD_VERSION_* with ZSTD_versionNumber()). */
#define FT_WEAVE_VERSION_MAJOR 0
#define FT_WEAVE_VERSION_MINOR 1
#define FT_WEAVE_VERSION_PATCH 0
#define FT_WEAVE_VERSION_STRING "0.1.0"
#define FT_WEAVE_VERSION_NUMBER \
  (FT_WEAVE_VERSION_MAJOR * 10000 + FT_WEAVE_VERSION_MINOR * 100 + FT_WEAVE_VERSION_PATCH)
/* The soname is libft_weave.so.<FT_WEAVE_ABI_VERSION>. */
#define FT_WEAVE_ABI_VERSION 1

/* Error codes. Every one is negative; 0 is success. */
typedef enum weave_error {
  WEAVE_OK = 0,
  WEAVE_E_INVALID = -101,   /* NULL or bad argument                          */
  WEAVE_E_NOT_OWNER = -102, /* unlock of a lock not held / not held by caller */
  WEAVE_E_NOMEM = -103,     /* out of memory; nothing was half-stored        */
  WEAVE_E_DISABLED = -104,  /* experimental feature not enabled              */
  WEAVE_E_MISMATCH = -105,  /* storage key reused with a different size      */
  WEAVE_E_STATE = -106,     /* call not allowed now (e.g. thread teardown)   */
  WEAVE_E_DEADLOCK = -107   /* the call would wait for itself (a once call  */
                            /* from inside its own fn)                       */
} weave_error_t;

/* A static, NUL-terminated name and description of `code` (one of
 * weave_error_t; "success" for 0, "unknown ft_weave error code" otherwise).
 * Never NULL; the string lives as long as the process. Does not block. */
WEAVE_API const char *weave_strerror(int code);

/* The calling thread's most recent detailed error message, such as
 * "weave_register_destructor: var is NULL". Set by every call that returns an
 * error; not cleared by successful calls (like errno). Never NULL: "" when the
 * thread has had no error. Valid until the thread's next ft_weave call. */
WEAVE_API const char *weave_last_error(void);

/* A non-zero id of the calling thread, never reused in the process: a
 * counter value assigned on the thread's first call, the same at every point
 * of the thread's life, thread-exit destructors included. (Unlike
 * pthread_self(), which glibc hands to the next thread once one exits.) A
 * fork child's thread keeps the id it had in the parent. Does not block. */
WEAVE_API uint64_t weave_thread_id(void);

/* The library's version, "MAJOR.MINOR.PATCH" (FT_WEAVE_VERSION_STRING of the
 * header it was built with). */
WEAVE_API const char *weave_version(void);

/* The library's ABI version (FT_WEAVE_ABI_VERSION of the header it was built
 * with). A program built against another ABI version must not use it. */
WEAVE_API int weave_abi_version(void);

/* ======================================================================
 * 2. Thread-exit destructors (ft_utils `weave` compatible)
 * ======================================================================
 *
 * Register a destructor for a thread-local `void *` variable; when the
 * registering thread dies (return from its start routine or pthread_exit),
 * the destructor is called with the variable's value at that moment:
 *
 *     static weave_local void *cache;        // one per thread
 *     static void free_cache(void *p) { free(p); }   // p may be NULL
 *
 *     void *worker(void *arg) {
 *       cache = malloc(4096);
 *       weave_register_destructor(&cache, free_cache);
 *       ...                                   // cache may change meanwhile
 *       return NULL;                          // free_cache(cache) runs here
 *     }
 *
 * Rules:
 * - Registrations belong to the calling thread and live in native memory;
 *   registering and unregistering take no global lock.
 * - At thread death each registration runs once, in registration order, with
 *   *var read at that moment (NULL is passed through). Registering the same
 *   variable twice runs it twice.
 * - A destructor may register more destructors: they run in the same teardown,
 *   for at most WEAVE_DESTRUCTOR_ROUNDS rounds; a registration beyond that
 *   fails with WEAVE_E_STATE instead of being lost silently. A destructor may
 *   also unregister entries that have not run yet.
 * - The main thread's destructors run in exit() (before atexit handlers), or
 *   when main() calls pthread_exit; call weave_run_thread_destructors() to
 *   run them earlier, or on pooled threads.
 * - Destructors must not call into Python.
 * - A shared object whose code is a registered destructor stays loaded until
 *   the registration has run or been unregistered, even through dlclose (as
 *   glibc does for C++ thread_local destructors); so does the object of a
 *   wvls_key_create destructor until wvls_key_delete. This library itself is
 *   never unloaded once loaded.
 * - Ordering at thread exit (glibc runs C++ thread_local destructors, then
 *   pthread key destructors in passes):
 *     1. C++ thread_local destructors;
 *     2. the first run of every pthread key destructor (wvls_key_* keys and
 *        the program's own), whichever was created first;
 *     3. these thread-exit destructors, then the thread's storage values
 *        (a registration made by a storage destructor runs too); then the
 *        thread's ft_weave state is freed;
 *     4. the .NET runtime detaches the thread;
 *     5. later runs of pthread key destructors that set their key again.
 *   Every call of this library works in steps 1 to 3; calls that need the
 *   thread's state (registering, storage) get WEAVE_E_STATE once it is freed.
 *   Code running in step 5 (a key destructor that set its own key again) must
 *   not call functions of this library that are not static inline in this
 *   header: the runtime ends the process when a detached thread re-enters it.
 * - A process whose main() ends with pthread_exit ends when its last thread
 *   does, as without the library (the runtime's own threads do not count).
 */

/* Thread-local storage class: _Thread_local in C11, thread_local in C++. */
#if defined(__cplusplus)
#define weave_local thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define weave_local _Thread_local
#else
#define weave_local __thread
#endif

/* Called with the variable's value at thread exit. Must not call into Python. */
typedef void (*wvls_destructor_t)(void *);

/* How many rounds of destructors-registering-destructors a teardown runs. */
#define WEAVE_DESTRUCTOR_ROUNDS 4

/* Registers `destructor` to run with *var when the calling thread exits.
 * Returns 0; WEAVE_E_INVALID for a NULL var or destructor (nothing stored);
 * WEAVE_E_NOMEM when memory ran out (nothing stored); WEAVE_E_STATE when the
 * thread is past its teardown or the round limit is reached. Does not block. */
WEAVE_API int weave_register_destructor(void **var, wvls_destructor_t destructor);

/* Removes every registration of `var` on the calling thread. Returns 1 if any
 * was removed, 0 if none, WEAVE_E_INVALID for NULL. Does not block. */
WEAVE_API int weave_unregister_destructor(void **var);

/* Runs the calling thread's registrations now, in order, and clears them; the
 * thread can register again afterwards. Returns how many ran, or
 * WEAVE_E_STATE when called from inside a destructor. */
WEAVE_API int weave_run_thread_destructors(void);

/* --- ft_utils compatibility names (same behaviour) ------------------- */

/* As weave_register_destructor; failures are visible through weave_last_error(). */
WEAVE_API void register_wvls_destructor(void **wvls_variable_ptr, wvls_destructor_t destructor);

/* As weave_unregister_destructor, but 0 for NULL (ft_utils has no error value). */
WEAVE_API int unregister_wvls_destructor(void **wvls_variable_ptr);

/* ft_utils' helpers, for code ported from ft_utils. Unlike ft_utils they
 * call the library directly: no import of ft_utils.weave, and usable without
 * Python or the GIL. Return 0 on success, 1 on failure (weave_last_error()
 * says why). As in ft_utils, a failure also sets a Python exception when the
 * calling thread has an attached CPython thread state, so that the ported
 * pattern
 *     if (_py_register_wvls_destructor(&var, destructor)) return NULL;
 * returns NULL with an exception set: ValueError for WEAVE_E_INVALID (a NULL
 * var or destructor), MemoryError for WEAVE_E_NOMEM, RuntimeError otherwise,
 * with the message "<function name>: <weave_last_error()>" (the types of the
 * Python package's ft_weave.weave functions). The library sets it through
 * the CPython it found when it was loaded (the python executable, or a
 * libpython the program or an earlier library linked; see
 * weave_python_api_t), never by linking libpython, so this header does not
 * depend on Python; a CPython loaded later is handed over with
 * weave_set_python_errors (section 3). Without an attached thread state (a
 * native thread, before Py_Initialize, after finalization), or with a
 * CPython the library does not know, nothing is set and Python is not
 * touched. Exported functions (earlier headers had static inline copies,
 * which set no exception; code compiled against them keeps that
 * behaviour). */
WEAVE_API int _py_register_wvls_destructor(void **wvls_var, wvls_destructor_t wvls_destructor);

/* Sets *unregistered (if not NULL) to 1 if a registration was removed, else
 * 0. Failure (a NULL var): 1, with the exception as above. */
WEAVE_API int _py_unregister_wvls_destructor(void **wvls_var, int *unregistered);

/* pthread keys under ft_utils' names. Each returns 0 or an errno value
 * (EINVAL for a NULL pointer); unlike ft_utils, key 0 is a valid key. Key
 * destructors run after the thread-exit destructors above. */
typedef pthread_key_t wvls_key_t;
WEAVE_STATIC_ASSERT(sizeof(wvls_key_t) == 4, "wvls_key_t is mirrored as uint32_t in C#");
WEAVE_API int wvls_key_create(wvls_key_t *key, wvls_destructor_t destructor);
WEAVE_API int wvls_key_delete(wvls_key_t key);
WEAVE_API int wvls_set_value(wvls_key_t key, void *value);
WEAVE_API void *wvls_get_value(wvls_key_t key);

/* ======================================================================
 * 3. Parking lot
 * ======================================================================
 *
 * An address-keyed wait queue, as in WebKit, Rust parking_lot and CPython's
 * Python/parking_lot.c: a thread parks on any address while the value there
 * still equals what it expects, and another thread unparks the address. The
 * lot keeps nothing in the parked-on memory, so any byte can become a lock.
 * Waiters on one address wake in FIFO order. The check of the value and the
 * enqueue happen under the same internal bucket lock as unpark, so a wake
 * that follows a change of the value is never lost:
 *
 *     // waiter                               // waker
 *     uint8_t expected = 1;                   __atomic_store_n(&flag, 0, __ATOMIC_RELEASE);
 *     while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) == 1)
 *       weave_park(&flag, &expected, 1, -1, NULL, 0);
 *                                             weave_unpark_all(&flag);
 *
 * A thread whose recent waits ended within microseconds polls its wait for
 * up to 50 us before it sleeps in the kernel (the budget adapts per thread
 * and falls to 0 for threads whose waits are long; one CPU: never): a wake
 * then costs no system call and no wake-up of a halted CPU. This applies to
 * weave_park and the waits for an event (conditions, events, once, static
 * values); the waits of locks never poll. A signal whose handler runs during
 * the poll does not interrupt the wait (WEAVE_PARK_INTR reports a signal that
 * interrupted the sleep itself).
 *
 * Waits are not cancellation points (here and in every blocking function of
 * sections 4 to 6): a thread cancelled with pthread_cancel while it waits
 * keeps waiting until it is woken or its timeout expires, leaves the queue,
 * and acts on the cancel at its next cancellation point. Asynchronous
 * cancellation (PTHREAD_CANCEL_ASYNCHRONOUS) of a thread inside the library
 * is not supported.
 *
 * Returns of weave_park: */
#define WEAVE_PARK_OK 0       /* woken by weave_unpark / weave_unpark_all            */
#define WEAVE_PARK_AGAIN (-1) /* *address != *expected: did not sleep              */
#define WEAVE_PARK_TIMEOUT (-2) /* timeout_ns elapsed                              */
#define WEAVE_PARK_INTR (-3)  /* a signal interrupted the sleep (EINTR)            */

/* Sleeps while *address equals *expected (compared as address_size bytes:
 * 1, 2, 4 or 8, and address must be aligned to it), for at most timeout_ns
 * (< 0 forever, 0 = check only: AGAIN or TIMEOUT without sleeping).
 * park_arg is handed to the unpark callback of the waker. A timeout that
 * races with a wake returns WEAVE_PARK_OK: a thread that was chosen by an
 * unpark always consumes that wake. detach != 0: while asleep the thread
 * releases its CPython thread state if CPython is loaded and the thread has
 * one attached (restored before returning). Returns WEAVE_PARK_* or
 * WEAVE_E_INVALID (NULL pointer, bad size, misaligned address). Blocks. */
WEAVE_API int weave_park(const void *address, const void *expected, size_t address_size,
                         int64_t timeout_ns, void *park_arg, int detach);

/* Called by weave_unpark while it holds the address's bucket lock, after the
 * waiter (if any) left the queue and before it wakes: `park_arg` is that
 * waiter's (NULL if there was none) and has_more_waiters says whether other
 * threads remain parked on the same address. Typical use: update the lock
 * word (clear a has-parked bit, or hand the lock over) atomically with the
 * dequeue. Obligations: it must not block, park, or call weave_unpark*. */
typedef void weave_unpark_fn(void *arg, void *park_arg, int has_more_waiters);

/* Wakes the first thread parked on `address`, calling fn(arg, park_arg,
 * has_more_waiters) first if fn is not NULL (also when nobody waits).
 * Returns 1 if a thread was woken, 0 if none, WEAVE_E_INVALID for a NULL
 * address. Does not block (beyond the short bucket lock). */
WEAVE_API int weave_unpark(const void *address, weave_unpark_fn *fn, void *arg);

/* Wakes every thread parked on `address`; returns how many (or
 * WEAVE_E_INVALID for NULL). */
WEAVE_API int weave_unpark_all(const void *address);

/* Resets the parking lot in a fork child (bucket locks held by threads that do
 * not exist in the child, queues of their waiters). Fork does this by itself,
 * without running any code of the library: the kernel gives the child a
 * zeroed copy of the lot (MADV_WIPEONFORK; on kernels before 4.14 a plain C
 * pthread_atfork child handler clears it). Calling it again is harmless.
 * Only for the child, before it starts threads. */
WEAVE_API void weave_parking_lot_after_fork(void);

/* CPython's functions that waits with detach (weave_park's detach argument,
 * WEAVE_LOCK_DETACH) and WEAVE_LOCK_HANDLE_SIGNALS use. The library never
 * links against libpython: it looks these up once, when it is loaded, in the
 * process's global symbol scope (the python executable, or a libpython
 * loaded with RTLD_GLOBAL earlier), and never again from a waiting path
 * (the lookup takes the dynamic loader's lock, which a thread inside
 * dlopen() holds while constructors run). A program that loads CPython after
 * the library, or privately (RTLD_LOCAL), hands the functions over here;
 * ft_weave_python.h's weave_py_enter and the ctypes package (python/ft_weave)
 * do it for their users. Types are written without Python.h: cast. */
typedef struct weave_python_api {
  void *(*thread_state_get)(void); /* PyThreadState_GetUnchecked (3.13+), or
                                      _PyThreadState_UncheckedGet (3.11, 3.12) */
  int (*gil_state_check)(void);    /* PyGILState_Check with the older getter, else NULL */
  void *(*save_thread)(void);      /* PyEval_SaveThread */
  void (*restore_thread)(void *);  /* PyEval_RestoreThread */
  int (*make_pending_calls)(void); /* Py_MakePendingCalls */
} weave_python_api_t;

/* Tells the library where CPython is (see weave_python_api_t). The first
 * complete set found at load time or handed over is kept for the life of
 * the process (one process has one CPython); later calls change nothing.
 * Returns 0, or WEAVE_E_INVALID when api or one of its functions other than
 * gil_state_check is NULL (nothing stored). Does not block. */
WEAVE_API int weave_set_python_api(const weave_python_api_t *api);

/* CPython's error functions, with which _py_register_wvls_destructor and
 * _py_unregister_wvls_destructor (section 2) set their exceptions. Found at
 * load time with the functions above; a program that loads CPython after
 * the library or privately hands them over here, as it hands over
 * weave_python_api_t (ft_weave_python.h's weave_py_enter and
 * weave_py_tell_library, and the ctypes package, do both). Types are written
 * without Python.h: cast. The exception types are the objects themselves
 * (the values of CPython's PyExc_* variables). */
typedef struct weave_python_errors {
  void (*set_string)(void *type, const char *message); /* PyErr_SetString    */
  void *value_error;                                   /* PyExc_ValueError   */
  void *memory_error;                                  /* PyExc_MemoryError  */
  void *runtime_error;                                 /* PyExc_RuntimeError */
} weave_python_errors_t;

/* Tells the library CPython's error functions. As for weave_set_python_api,
 * the first complete set found at load time or handed over is kept for the
 * life of the process; later calls change nothing. Returns 0, or
 * WEAVE_E_INVALID when errors or one of its members is NULL (nothing
 * stored). Does not block. */
WEAVE_API int weave_set_python_errors(const weave_python_errors_t *errors);

/* ======================================================================
 * 4. Locks
 * ======================================================================
 *
 * Semantics follow CPython 3.13/3.14 Python/lock.c. Every struct is zero-
 * initialisable (= {0} or static storage means unlocked / unset), has a fixed
 * layout (asserted here and in the C# library) and must not be moved or
 * copied while in use. Misuse (NULL, unlocking what is not locked) returns
 * an error code; nothing aborts.
 */

/* Status of timed lock operations. */
#define WEAVE_LOCK_FAILURE 0  /* not acquired (timeout, or timeout 0 and busy)   */
#define WEAVE_LOCK_ACQUIRED 1
#define WEAVE_LOCK_INTR 2     /* interrupted by a signal (see flags)             */

/* Flags of timed lock operations (bit set). */
#define WEAVE_LOCK_DONT_DETACH 0
/* While parked, release the CPython thread state (and, once critical sections
 * exist on this thread, suspend them); both are restored after. In a
 * free-threaded build this is what lets a stop-the-world pause (gc.collect())
 * run while the thread waits. A thread woken once the interpreter is
 * finalizing, which CPython 3.11-3.13 would end inside the re-attach
 * (pthread_exit), is parked for good instead, as CPython 3.14 does with such
 * threads: the call does not return, its sections stay suspended. */
#define WEAVE_LOCK_DETACH 1
/* On EINTR, run CPython's pending calls (signal handlers) if CPython is loaded
 * and this thread holds a thread state; return WEAVE_LOCK_INTR if they fail,
 * else keep waiting. Without CPython there is nothing to run: keep waiting. */
#define WEAVE_LOCK_HANDLE_SIGNALS 2
/* On EINTR, return WEAVE_LOCK_INTR. */
#define WEAVE_LOCK_FAIL_IF_INTERRUPTED 4
#define WEAVE_LOCK_ALL_FLAGS 7

/* ---- Mutex ------------------------------------------------------------
 *
 * Two bytes: CPython's PyMutex with its two bits split, so that the
 * uncontended unlock is a plain store instead of a read-modify-write:
 *
 *   _locked | _parked | meaning
 *   --------+---------+-----------------------------------------------
 *      0    |    0    | unlocked, nobody parked
 *      1    |    0    | locked, nobody parked: unlock is one store
 *      0    |    1    | unlocked, waiters may be parked (one was just
 *           |         | woken and will retry)
 *      1    |    1    | locked, waiters may be parked: unlock unparks one
 *
 * (_parked bit 0 is the has-parked bit above; bits 1-7 count the threads
 * inside weave_cond_wait on the mutex. Any non-zero _parked sends unlock to
 * its slow path.) Lock is one CAS of _locked. Unlock stores _locked = 0 and
 * then re-reads _parked; a waiter raises _parked and runs a process-wide
 * memory barrier (membarrier) before its last check of _locked, so one of
 * the two always sees the other (docs/locks.md has the argument). Users
 * rely only on zero-initialisation and the size asserted below.
 *
 * Lock spins with yields while nobody is parked, then parks. A waiter that
 * has waited more than 1 ms is handed the lock directly by unlock (_locked
 * stays 1): no barging past a starving thread. A plain weave_mutex_lock
 * that must park does so with WEAVE_LOCK_DETACH. */
typedef struct weave_mutex {
  /* _bytes[0] is _locked, _bytes[1] is _parked. One array rather than two
   * fields so that `weave_mutex_t m = {0};` stays warning-free in C++ with
   * -Wextra (missing-field-initializers), as it was with one byte. */
  uint8_t _bytes[2];
} weave_mutex_t;
WEAVE_STATIC_ASSERT(sizeof(weave_mutex_t) == 2, "weave_mutex_t is two bytes");

/* The value of _locked when held, and of _parked when waiters may be parked. */
#define WEAVE_MUTEX_LOCKED 1
#define WEAVE_MUTEX_HAS_PARKED 1

/* Slow paths of the inline functions below. Not for direct use. */
WEAVE_API void weave_mutex_lock_slow(weave_mutex_t *m);
WEAVE_API int weave_mutex_unlock_slow(weave_mutex_t *m);
WEAVE_API void weave_mutex_unlock_wake(weave_mutex_t *m);

#ifndef FT_WEAVE_DEBUG /* -DFT_WEAVE_DEBUG: routed through checks, see "Diagnostics: debug mode" */
/* Acquires `m`, blocking as long as needed (with WEAVE_LOCK_DETACH). NULL
 * records WEAVE_E_INVALID in weave_last_error() and returns. Blocks. */
static inline void weave_mutex_lock(weave_mutex_t *m) {
  uint8_t expected = 0;
  if (m == NULL || !__atomic_compare_exchange_n(&m->_bytes[0], &expected, (uint8_t)WEAVE_MUTEX_LOCKED, 0,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    weave_mutex_lock_slow(m);
  }
}

#endif /* FT_WEAVE_DEBUG */
/* The release half of weave_mutex_unlock once it has checked that `m` is
 * locked with nobody parked. The compiler-only fence keeps the load of
 * _parked after the store (the processor may still let the load pass the
 * store: the waiter's process-wide barrier covers that). */
static inline void weave__mutex_release(weave_mutex_t *m) {
  __atomic_store_n(&m->_bytes[0], (uint8_t)0, __ATOMIC_RELEASE);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (__builtin_expect(__atomic_load_n(&m->_bytes[1], __ATOMIC_RELAXED) != 0, 0)) {
    weave_mutex_unlock_wake(m);
  }
}

#ifndef FT_WEAVE_DEBUG /* -DFT_WEAVE_DEBUG: routed through checks, see "Diagnostics: debug mode" */
/* Releases `m`, waking (or handing the lock to) one parked thread if any.
 * Returns 0, WEAVE_E_NOT_OWNER when `m` is not locked (the mutex is left as
 * it was), WEAVE_E_INVALID for NULL. Does not block. Like CPython's, this
 * mutex does not record its owner: unlocking one that another thread locked
 * is allowed (and returns 0). _parked is read before the release too: with
 * waiters announced, the slow path releases under the parking lot's lock
 * so that it can hand the lock to a waiter owed it. */
static inline int weave_mutex_unlock(weave_mutex_t *m) {
  if (m != NULL && __atomic_load_n(&m->_bytes[0], __ATOMIC_RELAXED) == WEAVE_MUTEX_LOCKED &&
      __atomic_load_n(&m->_bytes[1], __ATOMIC_RELAXED) == 0) {
    weave__mutex_release(m);
    return 0;
  }
  return weave_mutex_unlock_slow(m);
}

/* One attempt, no spinning: 1 if acquired, 0 if not (or m is NULL). */
static inline int weave_mutex_trylock(weave_mutex_t *m) {
  uint8_t v;
  if (m == NULL) {
    return 0;
  }
  v = __atomic_load_n(&m->_bytes[0], __ATOMIC_RELAXED);
  return v == 0 && __atomic_compare_exchange_n(&m->_bytes[0], &v, (uint8_t)WEAVE_MUTEX_LOCKED, 0,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

#endif /* FT_WEAVE_DEBUG */
/* 1 if `m` is locked (by any thread) at the moment of the call, else 0. */
static inline int weave_mutex_is_locked(const weave_mutex_t *m) {
  return m != NULL && __atomic_load_n(&m->_bytes[0], __ATOMIC_RELAXED) == WEAVE_MUTEX_LOCKED;
}

/* Acquires `m` within timeout_ns (< 0 forever; 0 one attempt, no spinning).
 * flags: WEAVE_LOCK_* (detaches only with WEAVE_LOCK_DETACH). Returns
 * WEAVE_LOCK_ACQUIRED, WEAVE_LOCK_FAILURE on timeout, WEAVE_LOCK_INTR (see
 * flags), or WEAVE_E_INVALID (NULL, unknown flags). Blocks. */
WEAVE_API int weave_mutex_lock_timed(weave_mutex_t *m, int64_t timeout_ns, int flags);

/* ---- Raw mutex ----------------------------------------------------------
 *
 * A word lock that never uses the parking lot (it is what the parking lot's
 * own bucket locks are made of): waiters append themselves to a FIFO queue
 * whose head lives in the word, as WebKit's WordLock. A signal does not end
 * the wait: a waiter sleeps until it is popped.
 *
 *   v                         | meaning
 *   --------------------------+---------------------------------------------
 *   0                         | unlocked
 *   1                         | locked, no waiters
 *   (head pointer) | 1        | locked, waiters on a FIFO of stack-allocated
 *                             | entries (woken oldest first; each wakes and
 *                             | retries, no hand-off)
 *   (head pointer) | 3        | as above, a thread is editing the queue
 *                             | (bit 2: the queue lock)
 */
typedef struct weave_raw_mutex {
  uintptr_t v;
} weave_raw_mutex_t;
WEAVE_STATIC_ASSERT(sizeof(weave_raw_mutex_t) == sizeof(uintptr_t), "weave_raw_mutex_t is one word");

#define WEAVE_RAW_MUTEX_LOCKED 1

WEAVE_API void weave_raw_mutex_lock_slow(weave_raw_mutex_t *m);
WEAVE_API int weave_raw_mutex_unlock_slow(weave_raw_mutex_t *m);

/* Acquires `m`; blocks (never detaches). NULL records WEAVE_E_INVALID. */
static inline void weave_raw_mutex_lock(weave_raw_mutex_t *m) {
  uintptr_t expected = 0;
  if (m == NULL || !__atomic_compare_exchange_n(&m->v, &expected, (uintptr_t)WEAVE_RAW_MUTEX_LOCKED, 0,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    weave_raw_mutex_lock_slow(m);
  }
}

/* Releases `m`, waking one waiter. Returns 0, WEAVE_E_NOT_OWNER when not
 * locked, WEAVE_E_INVALID for NULL. Does not block. */
static inline int weave_raw_mutex_unlock(weave_raw_mutex_t *m) {
  uintptr_t expected = WEAVE_RAW_MUTEX_LOCKED;
  if (m != NULL && __atomic_compare_exchange_n(&m->v, &expected, (uintptr_t)0, 0, __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED)) {
    return 0;
  }
  return weave_raw_mutex_unlock_slow(m);
}

/* ---- Event --------------------------------------------------------------
 *
 * One-shot: once notified it stays set (CPython's PyEvent).
 *
 *   v  | meaning
 *   ---+------------------------------
 *   0  | not set, nobody waiting
 *   1  | set (final)
 *   2  | not set, waiters parked
 */
typedef struct weave_event {
  uint8_t v;
} weave_event_t;
WEAVE_STATIC_ASSERT(sizeof(weave_event_t) == 1, "weave_event_t is one byte");

#define WEAVE_EVENT_SET 1
#define WEAVE_EVENT_HAS_PARKED 2

/* Sets the event and wakes every waiter. Idempotent. NULL records
 * WEAVE_E_INVALID. Does not block. */
WEAVE_API void weave_event_notify(weave_event_t *evt);

/* Slow path of the waits: 1 if set, 0 on timeout, WEAVE_E_INVALID for NULL. */
WEAVE_API int weave_event_wait_slow(weave_event_t *evt, int64_t timeout_ns, int detach);

/* 1 if the event is set, else 0 (0 for NULL). Acquire: what the notifier
 * wrote before notifying is visible after a 1. */
static inline int weave_event_is_set(const weave_event_t *evt) {
  return evt != NULL && __atomic_load_n(&evt->v, __ATOMIC_ACQUIRE) == WEAVE_EVENT_SET;
}

/* Waits until the event is set, detaching while parked. Blocks. */
static inline void weave_event_wait(weave_event_t *evt) {
  if (!weave_event_is_set(evt)) {
    (void)weave_event_wait_slow(evt, -1, 1);
  }
}

/* Waits at most timeout_ns; returns 1 if set, 0 if not (timeout), or
 * WEAVE_E_INVALID for NULL. detach as for weave_park. Blocks. */
static inline int weave_event_wait_timed(weave_event_t *evt, int64_t timeout_ns, int detach) {
  if (weave_event_is_set(evt)) {
    return 1;
  }
  return weave_event_wait_slow(evt, timeout_ns, detach);
}

/* ---- Once ---------------------------------------------------------------
 *
 * Runs an initialiser exactly once, with retry after failure (CPython's
 * _PyOnceFlag):
 *
 *   v  | meaning
 *   ---+------------------------------------------------------
 *   0  | not run (or the last run failed)
 *   1  | running
 *   3  | running, other callers parked waiting for the result
 *   4  | done (final)
 */
typedef struct weave_once {
  uint8_t v;
} weave_once_t;
WEAVE_STATIC_ASSERT(sizeof(weave_once_t) == 1, "weave_once_t is one byte");

#define WEAVE_ONCE_RUNNING 1
#define WEAVE_ONCE_HAS_PARKED 2
#define WEAVE_ONCE_DONE 4

/* Returns 0 when done, -1 when it failed (the flag resets: a later or
 * waiting caller runs fn again). Any other value is a bug in fn: the flag
 * resets and the caller gets WEAVE_E_INVALID. fn must return (no longjmp
 * out of it). If its thread ends inside it (pthread_exit, or pthread_cancel
 * acting at a cancellation point in fn), the run counts as failed: a waiting
 * or later caller notices that the runner's thread is gone (waiters check
 * every 50 ms) and runs fn itself. */
typedef int weave_once_fn(void *arg);

WEAVE_API int weave_once_call_slow(weave_once_t *once, weave_once_fn *fn, void *arg);

/* Runs fn(arg) if no call has succeeded yet; one runs at a time, the others
 * wait (detached) for its result and retry if it failed. Returns fn's result
 * (0 or -1), 0 when already done, WEAVE_E_INVALID for NULL once/fn or a bad
 * fn result, WEAVE_E_DEADLOCK for a call from inside fn on the same flag
 * (it would wait for itself), WEAVE_E_NOMEM when the run could not be
 * recorded (fn did not run). Blocks while another caller runs fn. */
static inline int weave_once_call(weave_once_t *once, weave_once_fn *fn, void *arg) {
  if (once != NULL && __atomic_load_n(&once->v, __ATOMIC_ACQUIRE) == WEAVE_ONCE_DONE) {
    return 0;
  }
  return weave_once_call_slow(once, fn, arg);
}

/* ---- Recursive mutex ----------------------------------------------------
 *
 * A weave_mutex_t plus its owner (weave_thread_id()) and the number of
 * extra acquisitions (0 when held once), as CPython's _PyRecursiveMutex.
 * The owner re-enters without an atomic read-modify-write. */
typedef struct weave_recursive_mutex {
  weave_mutex_t mutex; /* offset 0 */
  uint64_t thread;     /* offset 8: owner's weave_thread_id(), 0 when unlocked */
  size_t level;        /* offset 16: extra acquisitions by the owner */
} weave_recursive_mutex_t;
WEAVE_STATIC_ASSERT(offsetof(weave_recursive_mutex_t, thread) == 8, "recursive mutex layout");
WEAVE_STATIC_ASSERT(offsetof(weave_recursive_mutex_t, level) == 16, "recursive mutex layout");
WEAVE_STATIC_ASSERT(sizeof(weave_recursive_mutex_t) == 24, "recursive mutex layout");

/* Private helper (not API, not exported): weave_thread_id(), asked once per
 * thread (in each translation unit) and then read from a thread-local copy,
 * so that re-entry by the owner stays in the caller's code. Valid because a
 * thread's id never changes. */
static inline uint64_t weave__inline_thread_id(void) {
  static weave_local uint64_t id;
  if (__builtin_expect(id == 0, 0)) {
    id = weave_thread_id();
  }
  return id;
}

WEAVE_API void weave_recursive_mutex_lock_slow(weave_recursive_mutex_t *m);
WEAVE_API int weave_recursive_mutex_unlock_slow(weave_recursive_mutex_t *m);

#ifndef FT_WEAVE_DEBUG /* -DFT_WEAVE_DEBUG: routed through checks, see "Diagnostics: debug mode" */
/* Acquires `m`, or adds a level if the caller owns it. Blocks. */
static inline void weave_recursive_mutex_lock(weave_recursive_mutex_t *m) {
  uint64_t me;
  uint8_t expected = 0;
  if (m == NULL) {
    weave_recursive_mutex_lock_slow(m);
    return;
  }
  me = weave__inline_thread_id();
  /* Only the owner can find its own id here: the owner stored it, and it is
   * cleared (by the owner) before the mutex is released. */
  if (__atomic_load_n(&m->thread, __ATOMIC_RELAXED) == me) {
    m->level++;
    return;
  }
  if (__atomic_compare_exchange_n(&m->mutex._bytes[0], &expected, (uint8_t)WEAVE_MUTEX_LOCKED, 0,
                                  __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    __atomic_store_n(&m->thread, me, __ATOMIC_RELAXED);
    return;
  }
  weave_recursive_mutex_lock_slow(m);
}

/* Releases one level; the last one unlocks the mutex. Returns 0,
 * WEAVE_E_NOT_OWNER if the caller does not own `m`, WEAVE_E_INVALID for
 * NULL. Does not block. */
static inline int weave_recursive_mutex_unlock(weave_recursive_mutex_t *m) {
  if (m == NULL || __atomic_load_n(&m->thread, __ATOMIC_RELAXED) != weave__inline_thread_id()) {
    return weave_recursive_mutex_unlock_slow(m);
  }
  if (m->level > 0) {
    m->level--;
    return 0;
  }
  __atomic_store_n(&m->thread, (uint64_t)0, __ATOMIC_RELAXED);
  return weave_mutex_unlock(&m->mutex);
}

#endif /* FT_WEAVE_DEBUG */
/* 1 if the calling thread owns `m`, else 0. */
static inline int weave_recursive_mutex_is_locked_by_current_thread(const weave_recursive_mutex_t *m) {
  return m != NULL && __atomic_load_n(&m->thread, __ATOMIC_RELAXED) == weave__inline_thread_id();
}

/* As weave_mutex_lock_timed; the owner re-enters at once. */
WEAVE_API int weave_recursive_mutex_lock_timed(weave_recursive_mutex_t *m, int64_t timeout_ns, int flags);

/* ---- RW mutex -----------------------------------------------------------
 *
 * Writer-preferring reader-writer lock in one word (CPython's _PyRWMutex),
 * with reader bias (BRAVO, Dice and Kogan, USENIX ATC 2019):
 *
 *   bits         | meaning
 *   -------------+---------------------------------------------------------
 *   bit 0        | write-locked
 *   bit 1        | has parked: a writer (or readers behind one) waits; new
 *                | readers park instead of joining the current readers
 *   bits 2..     | number of readers holding the lock through the word
 *   top bit      | reader bias (WEAVE_RWMUTEX_READER_BIAS): readers may
 *                | announce themselves in a slot of the library's visible-
 *                | readers table instead of counting themselves in the word
 *
 * For example 1 = one writer; 8 = two readers; 10 = two readers and a
 * waiting writer; 3 = a writer with readers parked behind it; the same with
 * the top bit set = bias on. Read the reader count with
 * WEAVE_RWMUTEX_READERS(bits): it excludes the readers in the table.
 *
 * Bias. While the bias bit is set, rlock puts the lock's address into the
 * caller's slot (a slot of a table indexed by a hash of the thread and the
 * lock, so usually private to the thread) instead of writing the shared
 * word. A writer clears the bit in the CAS that takes the write lock, then
 * waits until no slot names the lock. A reader re-reads the word after its
 * slot CAS, and backs out if the bit is gone. The bias is turned on by a
 * reader (in the slow paths) whose CAS on the word lost to another reader,
 * so a lock whose readers do not contend keeps the plain word above; and
 * after a revocation only once an inhibit time has passed (nine times what
 * the revocation cost), so that writer-heavy phases do not pay a revocation
 * each time. docs/locks.md has the argument. */
typedef struct weave_rwmutex {
  uintptr_t bits;
} weave_rwmutex_t;
WEAVE_STATIC_ASSERT(sizeof(weave_rwmutex_t) == sizeof(uintptr_t), "weave_rwmutex_t is one word");

#define WEAVE_RWMUTEX_WRITE_LOCKED 1
#define WEAVE_RWMUTEX_HAS_PARKED 2
#define WEAVE_RWMUTEX_READER_SHIFT 2
#define WEAVE_RWMUTEX_ONE_READER ((uintptr_t)1 << WEAVE_RWMUTEX_READER_SHIFT)
#define WEAVE_RWMUTEX_READER_BIAS ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 1))
#define WEAVE_RWMUTEX_READERS(bits) (((bits) & ~WEAVE_RWMUTEX_READER_BIAS) >> WEAVE_RWMUTEX_READER_SHIFT)

WEAVE_API void weave_rwmutex_rlock_slow(weave_rwmutex_t *rw);
WEAVE_API int weave_rwmutex_runlock_slow(weave_rwmutex_t *rw);
WEAVE_API void weave_rwmutex_lock_slow(weave_rwmutex_t *rw);
WEAVE_API int weave_rwmutex_unlock_slow(weave_rwmutex_t *rw);

/* Internal (names and layout may change with the ABI version): one slot of
 * the visible-readers table. `lock` is the address of the rwmutex a reader
 * holds through this slot (0 = free), `owner` that reader's
 * weave_thread_id. A lock uses the stripe its address hashes to, a thread
 * the slot of its id within the stripe. */
typedef struct weave__rwmutex_slot {
  uintptr_t lock;
  uint64_t owner;
} weave__rwmutex_slot_t;
#define WEAVE__RWMUTEX_STRIPES 64
#define WEAVE__RWMUTEX_STRIPE_SLOTS 64
WEAVE_API weave__rwmutex_slot_t *weave__rwmutex_readers(void);

static inline size_t weave__rwmutex_stripe(const weave_rwmutex_t *rw) {
  return (size_t)(((uint64_t)(uintptr_t)rw * UINT64_C(0x9E3779B97F4A7C15)) >> 58);
}

/* Consecutive thread ids get slots on different cache lines. */
static inline size_t weave__rwmutex_slot_index(const weave_rwmutex_t *rw, uint64_t id) {
  size_t lane = (size_t)(id % WEAVE__RWMUTEX_STRIPE_SLOTS);
  return weave__rwmutex_stripe(rw) * WEAVE__RWMUTEX_STRIPE_SLOTS + (lane % 16) * 4 + lane / 16;
}

static inline weave__rwmutex_slot_t *weave__rwmutex_slot(const weave_rwmutex_t *rw, uint64_t id) {
  static weave__rwmutex_slot_t *table; /* the one table; racing first calls agree */
  weave__rwmutex_slot_t *t = __atomic_load_n(&table, __ATOMIC_RELAXED);
  if (__builtin_expect(t == NULL, 0)) {
    t = weave__rwmutex_readers();
    __atomic_store_n(&table, t, __ATOMIC_RELAXED);
  }
  return &t[weave__rwmutex_slot_index(rw, id)];
}

/* 1 if the caller now holds a biased read lock through `slot`. */
static inline int weave__rwmutex_try_rlock_biased_at(weave_rwmutex_t *rw, weave__rwmutex_slot_t *slot,
                                                     uint64_t id) {
  uintptr_t empty = 0;
  if (__atomic_load_n(&slot->lock, __ATOMIC_RELAXED) != 0 ||
      !__atomic_compare_exchange_n(&slot->lock, &empty, (uintptr_t)rw, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
    return 0;
  }
  /* Store-then-load against the writer's CAS setting write-locked (or
   * clearing the bias) then its loads of the slots (all seq_cst): either
   * this load sees the writer's bit, or the writer's scan sees the slot and
   * waits for us. The load is also the acquire that pairs with the last
   * writer's release. A waiting writer (has-parked) also sends us to the
   * slow path, to park behind it: writers stay preferred with the bias on. */
  if ((__atomic_load_n(&rw->bits, __ATOMIC_SEQ_CST) &
       (WEAVE_RWMUTEX_READER_BIAS | WEAVE_RWMUTEX_HAS_PARKED | WEAVE_RWMUTEX_WRITE_LOCKED)) ==
      WEAVE_RWMUTEX_READER_BIAS) {
    __atomic_store_n(&slot->owner, id, __ATOMIC_RELAXED); /* read back only by this thread */
    return 1;
  }
  __atomic_store_n(&slot->lock, (uintptr_t)0, __ATOMIC_RELEASE);
  return 0;
}

/* 1 if the caller held a biased read lock on rw through `slot` and released it. */
static inline int weave__rwmutex_try_runlock_biased_at(weave_rwmutex_t *rw, weave__rwmutex_slot_t *slot,
                                                       uint64_t id) {
  /* Only the thread that took the slot stores its id there, and clears it
   * before it frees the slot, so another thread never finds its own id. */
  if (__atomic_load_n(&slot->lock, __ATOMIC_RELAXED) != (uintptr_t)rw ||
      __atomic_load_n(&slot->owner, __ATOMIC_RELAXED) != id) {
    return 0;
  }
  __atomic_store_n(&slot->owner, (uint64_t)0, __ATOMIC_RELAXED);
  /* Release: the critical section's loads happen before the revoking
   * writer's acquire load that sees the slot free. */
  __atomic_store_n(&slot->lock, (uintptr_t)0, __ATOMIC_RELEASE);
  return 1;
}

#ifndef FT_WEAVE_DEBUG /* -DFT_WEAVE_DEBUG: routed through checks, see "Diagnostics: debug mode" */
/* Acquires a read lock; parks (detached) while a writer holds or waits. A
 * thread may hold several read locks on one rwmutex, but a read lock held
 * while a writer waits blocks the next rlock (writers are preferred). */
static inline void weave_rwmutex_rlock(weave_rwmutex_t *rw) {
  uintptr_t bits;
  if (rw != NULL) {
    bits = __atomic_load_n(&rw->bits, __ATOMIC_RELAXED);
    if ((bits & WEAVE_RWMUTEX_READER_BIAS) != 0) {
      if ((bits & (WEAVE_RWMUTEX_HAS_PARKED | WEAVE_RWMUTEX_WRITE_LOCKED)) == 0) {
        uint64_t id = weave__inline_thread_id();
        if (weave__rwmutex_try_rlock_biased_at(rw, weave__rwmutex_slot(rw, id), id)) {
          return;
        }
      }
    } else if ((bits & (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED)) == 0 &&
               __atomic_compare_exchange_n(&rw->bits, &bits, bits + WEAVE_RWMUTEX_ONE_READER, 0, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)) {
      return;
    }
  }
  weave_rwmutex_rlock_slow(rw);
}

/* Releases a read lock. Returns 0, WEAVE_E_NOT_OWNER when the caller holds
 * no biased read lock on it and no reader is counted in the word,
 * WEAVE_E_INVALID for NULL. Does not block. */
static inline int weave_rwmutex_runlock(weave_rwmutex_t *rw) {
  uintptr_t bits, readers;
  if (rw != NULL) {
    bits = __atomic_load_n(&rw->bits, __ATOMIC_RELAXED);
    /* A biased read lock keeps the bias or the write bit set until its slot
     * is free (only a writer holding the write bit clears the bias, and it
     * waits for the slots before it unlocks), and this load comes after our
     * own rlock in the word's order: with neither bit, ours is counted. */
    if ((bits & (WEAVE_RWMUTEX_READER_BIAS | WEAVE_RWMUTEX_WRITE_LOCKED)) != 0) {
      uint64_t id = weave__inline_thread_id();
      if (weave__rwmutex_try_runlock_biased_at(rw, weave__rwmutex_slot(rw, id), id)) {
        return 0;
      }
      bits = __atomic_load_n(&rw->bits, __ATOMIC_RELAXED);
    }
    readers = WEAVE_RWMUTEX_READERS(bits);
    /* Fast only when this is not the last reader in front of parked waiters. */
    if (readers > 1 || (readers == 1 && (bits & WEAVE_RWMUTEX_HAS_PARKED) == 0)) {
      if (__atomic_compare_exchange_n(&rw->bits, &bits, bits - WEAVE_RWMUTEX_ONE_READER, 0, __ATOMIC_RELEASE,
                                      __ATOMIC_RELAXED)) {
        return 0;
      }
    }
  }
  return weave_rwmutex_runlock_slow(rw);
}

/* Acquires the write lock; parks (detached) while readers or a writer hold
 * it. Revokes the reader bias if it is on (waits, yielding and then
 * sleeping detached, for the readers in the table to leave). */
static inline void weave_rwmutex_lock(weave_rwmutex_t *rw) {
  uintptr_t expected = 0;
  if (rw == NULL || !__atomic_compare_exchange_n(&rw->bits, &expected, (uintptr_t)WEAVE_RWMUTEX_WRITE_LOCKED, 0,
                                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    weave_rwmutex_lock_slow(rw);
  }
}

/* Releases the write lock (keeping the reader bias as it is), waking the
 * parked threads. Returns 0, WEAVE_E_NOT_OWNER when not write-locked,
 * WEAVE_E_INVALID for NULL. */
static inline int weave_rwmutex_unlock(weave_rwmutex_t *rw) {
  uintptr_t expected;
  if (rw != NULL) {
    expected = __atomic_load_n(&rw->bits, __ATOMIC_RELAXED);
    if ((expected & ~WEAVE_RWMUTEX_READER_BIAS) == WEAVE_RWMUTEX_WRITE_LOCKED &&
        __atomic_compare_exchange_n(&rw->bits, &expected, expected & WEAVE_RWMUTEX_READER_BIAS, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED)) {
      return 0;
    }
  }
  return weave_rwmutex_unlock_slow(rw);
}

#endif /* FT_WEAVE_DEBUG */

/* Timed acquires, with weave_mutex_lock_timed's timeout (< 0 forever; 0 one
 * attempt, no waiting) and WEAVE_LOCK_* flags (detach only with
 * WEAVE_LOCK_DETACH). Return WEAVE_LOCK_ACQUIRED, WEAVE_LOCK_FAILURE on
 * timeout, WEAVE_LOCK_INTR (see the flags), or WEAVE_E_INVALID (NULL, unknown
 * flags). A waiter that gives up wakes the other parked threads, which wait
 * again if they must (a writer that gives up does not strand the readers
 * queued behind it). Block. */
WEAVE_API int weave_rwmutex_rlock_timed(weave_rwmutex_t *rw, int64_t timeout_ns, int flags);
WEAVE_API int weave_rwmutex_lock_timed(weave_rwmutex_t *rw, int64_t timeout_ns, int flags);

/* ---- Diagnostics: debug mode --------------------------------------------
 *
 * Deadlock detection for the mutex, recursive mutex and RW mutex
 * (docs/diagnostics.md). Off by default, and free when off: the inline
 * functions above carry no extra instruction, and the exported paths test
 * one flag. It is turned on at run time, by weave_debug_set() or by the
 * environment variable FT_WEAVE_DEBUG, read at the library's first use:
 * "all" (lock_order + owner + live_deadlock) or a comma list of lock_order,
 * owner, live_deadlock, fail_on_cycle, watchdog, watchdog=<ms> ("0", "off"
 * or empty: none). An unknown item is reported (see below) and ignored.
 *
 * What is checked is every acquisition and release made through an
 * exported function (the FFI copies, the _slow and _timed functions) and,
 * in a translation unit compiled with -DFT_WEAVE_DEBUG, every inline
 * lock and unlock of the three locks, which that macro routes through the
 * weave_debug_* exports below (they record the caller's return address as
 * the call site). The inline fast paths of code compiled without it are not
 * seen: their acquisitions neither add lock-order edges nor count as held
 * (an acquisition of theirs that has to wait still adds edges from the
 * locks the thread holds through checked paths). Critical sections count
 * as held while active, not while suspended (every begin goes through the
 * library while the lock-order or live-deadlock checks are on). The raw
 * mutex and the seqlock are not tracked. */

/* Lock-order detection: an acquisition made while the thread holds other
 * ft_weave locks adds edges (held -> acquired) to a bounded process-wide
 * graph; an edge that closes a cycle is reported once, even if this run
 * never deadlocked. */
#define WEAVE_DEBUG_LOCK_ORDER 1
/* Owner checks: unlocking a lock that another thread holds (as recorded by
 * the checked paths) returns WEAVE_E_NOT_OWNER, leaves the lock as it was,
 * and is reported. */
#define WEAVE_DEBUG_OWNER 2
/* Each thread records the lock it waits for, which weave_debug_check_deadlocks
 * (and the watchdog) uses. */
#define WEAVE_DEBUG_LIVE_DEADLOCK 4
/* With WEAVE_DEBUG_LOCK_ORDER: a weave_*_lock_timed that would close a
 * lock-order cycle returns WEAVE_E_DEADLOCK (without acquiring, reported)
 * instead of blocking. */
#define WEAVE_DEBUG_FAIL_ON_CYCLE 8
/* With WEAVE_DEBUG_LIVE_DEADLOCK: a background thread runs
 * weave_debug_check_deadlocks every second (FT_WEAVE_DEBUG=watchdog=<ms>
 * sets another period), reporting each deadlock once. */
#define WEAVE_DEBUG_WATCHDOG 16
/* What FT_WEAVE_DEBUG=all turns on. */
#define WEAVE_DEBUG_ALL (WEAVE_DEBUG_LOCK_ORDER | WEAVE_DEBUG_OWNER | WEAVE_DEBUG_LIVE_DEADLOCK)

/* Receives each finding as one line of text (no newline), valid during the
 * call only. Called on the thread that found it (the watchdog's for its
 * reports), holding none of the library's internal locks; ft_weave locks it
 * takes are not checked. Never called for the same finding twice, except
 * by weave_debug_check_deadlocks, which reports what it finds each time. */
typedef void weave_debug_report_fn(const char *report, void *arg);

/* Sets the debug flags (0 turns the checks off) and the report callback
 * (NULL: each report is one line on stderr; nothing ever aborts). Each call
 * starts a new lock-order graph and forgets the findings reported so far.
 * Returns 0, or WEAVE_E_INVALID for unknown flags, FAIL_ON_CYCLE without
 * LOCK_ORDER or WATCHDOG without LIVE_DEADLOCK (nothing changed), or
 * WEAVE_E_NOMEM when the tables could not be allocated (checks stay off). */
WEAVE_API int weave_debug_set(int flags, weave_debug_report_fn *fn, void *arg);

/* The flags in force (read from FT_WEAVE_DEBUG on first use). */
WEAVE_API int weave_debug_flags(void);

/* Reports each set of threads that wait right now, through checked paths,
 * for locks held by each other (a thread waiting for a lock it holds itself
 * counts), and returns how many sets it found; 0 when debug mode is off.
 * The report contains the word "deadlock" and each thread's
 * weave_thread_id(). */
WEAVE_API int weave_debug_check_deadlocks(void);

/* 0 if the calling thread holds `m`; WEAVE_E_NOT_OWNER if it does not (also
 * reported when debug mode is on); WEAVE_E_INVALID for NULL. With debug mode
 * off, or for a mutex locked through an unchecked inline path, the mutex
 * records no owner and "holds" can only mean "is locked". Does not block. */
WEAVE_API int weave_mutex_assert_held(const weave_mutex_t *m);

/* The checked operations that -DFT_WEAVE_DEBUG routes the inline functions
 * to; same results as those. Not for direct use. */
WEAVE_API void weave_debug_mutex_lock(weave_mutex_t *m);
WEAVE_API int weave_debug_mutex_unlock(weave_mutex_t *m);
WEAVE_API int weave_debug_mutex_trylock(weave_mutex_t *m);
WEAVE_API void weave_debug_recursive_mutex_lock(weave_recursive_mutex_t *m);
WEAVE_API int weave_debug_recursive_mutex_unlock(weave_recursive_mutex_t *m);
WEAVE_API void weave_debug_rwmutex_rlock(weave_rwmutex_t *rw);
WEAVE_API int weave_debug_rwmutex_runlock(weave_rwmutex_t *rw);
WEAVE_API void weave_debug_rwmutex_lock(weave_rwmutex_t *rw);
WEAVE_API int weave_debug_rwmutex_unlock(weave_rwmutex_t *rw);

#ifdef FT_WEAVE_DEBUG
static inline void weave_mutex_lock(weave_mutex_t *m) {
  weave_debug_mutex_lock(m);
}
static inline int weave_mutex_unlock(weave_mutex_t *m) {
  return weave_debug_mutex_unlock(m);
}
static inline int weave_mutex_trylock(weave_mutex_t *m) {
  return weave_debug_mutex_trylock(m);
}
static inline void weave_recursive_mutex_lock(weave_recursive_mutex_t *m) {
  weave_debug_recursive_mutex_lock(m);
}
static inline int weave_recursive_mutex_unlock(weave_recursive_mutex_t *m) {
  return weave_debug_recursive_mutex_unlock(m);
}
static inline void weave_rwmutex_rlock(weave_rwmutex_t *rw) {
  weave_debug_rwmutex_rlock(rw);
}
static inline int weave_rwmutex_runlock(weave_rwmutex_t *rw) {
  return weave_debug_rwmutex_runlock(rw);
}
static inline void weave_rwmutex_lock(weave_rwmutex_t *rw) {
  weave_debug_rwmutex_lock(rw);
}
static inline int weave_rwmutex_unlock(weave_rwmutex_t *rw) {
  return weave_debug_rwmutex_unlock(rw);
}
#endif /* FT_WEAVE_DEBUG */

/* ---- Seqlock ------------------------------------------------------------
 *
 * A sequence counter for data read far more often than written (CPython's
 * _PySeqLock): odd while a writer is updating. Readers never block writers:
 *
 *     uint32_t seq;
 *     do {
 *       seq = weave_seqlock_begin_read(&lock);
 *       copy = shared;                     // may be torn; then end_read is 0
 *     } while (!weave_seqlock_end_read(&lock, seq));
 *
 * Read the shared data with relaxed atomic loads (or memcpy of trivially
 * copyable data) so that a torn read is not undefined behaviour. */
typedef struct weave_seqlock {
  uint32_t sequence;
} weave_seqlock_t;
WEAVE_STATIC_ASSERT(sizeof(weave_seqlock_t) == 4, "weave_seqlock_t is 32 bits");

/* Writers: lock (spins with yields against other writers; never parks),
 * then unlock to publish, or abandon to leave the sequence as it was (no
 * reader retries). Writers are not detached: keep write sections short.
 * Abandon only a write that stored nothing to the protected data: it puts
 * back the sequence a reader that started before the write saw, so that
 * reader's end_read succeeds even if it copied data the writer had changed
 * (a torn copy). After any store, unlock instead (readers retry). */
WEAVE_API void weave_seqlock_lock_write(weave_seqlock_t *seqlock);
WEAVE_API void weave_seqlock_unlock_write(weave_seqlock_t *seqlock);
WEAVE_API void weave_seqlock_abandon_write(weave_seqlock_t *seqlock);
WEAVE_API uint32_t weave_seqlock_begin_read_slow(weave_seqlock_t *seqlock);

/* Starts a read: waits (yielding) while a write is in progress; returns the
 * sequence to pass to weave_seqlock_end_read. */
static inline uint32_t weave_seqlock_begin_read(weave_seqlock_t *seqlock) {
  uint32_t sequence;
  if (seqlock != NULL) {
    sequence = __atomic_load_n(&seqlock->sequence, __ATOMIC_ACQUIRE);
    if ((sequence & 1) == 0) {
      return sequence;
    }
  }
  return weave_seqlock_begin_read_slow(seqlock);
}

/* 1 if nothing was written since begin_read returned `previous` (the copy is
 * consistent), 0 if the reader must retry (also for NULL). */
static inline int weave_seqlock_end_read(weave_seqlock_t *seqlock, uint32_t previous) {
  if (seqlock == NULL) {
    return 0;
  }
  /* The fence keeps the reader's data loads before the second sequence load
   * (CPython gh-121368). */
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return __atomic_load_n(&seqlock->sequence, __ATOMIC_RELAXED) == previous;
}

/* In a fork child: a write in progress by a thread that does not exist in
 * the child is reset. Returns 1 if it was reset, 0 otherwise. */
WEAVE_API int weave_seqlock_after_fork(weave_seqlock_t *seqlock);

/* ---- Condition variable (beyond CPython) --------------------------------
 *
 * Used with a weave_mutex_t, as pthread_cond_t with a pthread_mutex_t. A
 * signal does not wake a waiter just to have it block on the mutex its
 * signaller still holds: it moves ("requeues") the waiter from the
 * condition's queue to the mutex's, where the mutex's unlock wakes it (as
 * WebKit's Condition and Rust parking_lot's Condvar do). A waiter counts
 * itself in the mutex's _parked byte while it waits, so that every unlock
 * of that mutex takes the slow path until it holds the mutex again.
 * Signal and broadcast may be called without holding the mutex.
 *
 *   v  | meaning
 *   ---+------------------------------
 *   0  | no waiters
 *   1  | waiters may be parked
 *
 * All waiters of one condition must use the same mutex at a time (as with
 * pthreads); a waiter with a different mutex is woken instead of requeued. */
typedef struct weave_cond {
  uint8_t v;
} weave_cond_t;
WEAVE_STATIC_ASSERT(sizeof(weave_cond_t) == 1, "weave_cond_t is one byte");

/* Atomically unlocks `mutex` (which the caller must hold) and waits for a
 * signal, at most timeout_ns (< 0 forever). The mutex is held again, once,
 * on return either way. Returns 1 when woken (possibly spuriously: re-check
 * the condition in a loop), 0 on timeout, WEAVE_E_NOT_OWNER if `mutex` was
 * not locked, WEAVE_E_INVALID for NULL. Detaches while parked. Blocks.
 * Inside critical sections (section 5): every section of the thread is
 * suspended while it sleeps (`mutex` is released once, by the wait); on
 * return the innermost section is active, and if `mutex` is an outer active
 * section's, that section and all inside it are active. If `mutex` is the
 * mutex of a *suspended* section (not held), the wait re-takes it, resuming
 * that section and those inside it, and returns 1 without sleeping (a
 * spurious wake-up), or WEAVE_E_NOT_OWNER if two of those sections hold the
 * same mutex. Re-taking never waits for one mutex while holding another. */
WEAVE_API int weave_cond_wait(weave_cond_t *cond, weave_mutex_t *mutex, int64_t timeout_ns);

/* Wakes (or requeues onto the mutex) one waiter; returns how many: 0 or 1
 * (WEAVE_E_INVALID for NULL). Does not block. The caller need not hold the
 * mutex (here and for broadcast), as with pthreads: a waiter joins the
 * condition's queue before it releases the mutex, so a signal sent after a
 * waiter released it, from any thread, holding the mutex or not, reaches
 * that waiter. What must happen under the mutex is the change of the
 * waiters' condition (else a waiter can check it just before the change
 * and sleep through the signal); the signal itself may follow the unlock. */
WEAVE_API int weave_cond_signal(weave_cond_t *cond);

/* Wakes (or requeues) every waiter; returns how many. Does not block. */
WEAVE_API int weave_cond_broadcast(weave_cond_t *cond);

/* ---- Statistics ---------------------------------------------------------
 *
 * Process-wide counters that never decrease. */
typedef struct weave_stats {
  uint64_t parks;         /* threads that went to sleep in the parking lot     */
  uint64_t unparks;       /* threads woken by weave_unpark* or a lock's unlock */
  uint64_t handoffs;      /* mutex unlocks that handed the lock to a waiter    */
  uint64_t spins;         /* spin iterations before parking                    */
  uint64_t managed_bytes; /* managed (GC) memory the library has allocated     */
} weave_stats_t;
WEAVE_STATIC_ASSERT(sizeof(weave_stats_t) == 40, "weave_stats_t layout");

/* Fills *out; returns 0, or WEAVE_E_INVALID for NULL. */
WEAVE_API int weave_stats(weave_stats_t *out);

/* ---- Diagnostics: contention profile -----------------------------------
 *
 * Records, for lock acquisitions that had to wait for another thread's
 * release (weave_mutex_t, weave_recursive_mutex_t, weave_raw_mutex_t,
 * weave_rwmutex_t, critical sections), the lock's address, the waiting call
 * stack and the releasing call stack (return addresses outside this
 * library), with the number of waits and their total and longest time. Only
 * the slow paths look at it (one flag), so it costs nothing when off; waits
 * are sampled (1 in weave_profile_set_rate(n), default 1) and counts and
 * totals are scaled back up by the rate. docs/diagnostics.md has the details.
 *
 * FT_WEAVE_PROFILE=contention:PATH in the environment, read at the library's
 * first use, starts the profile and writes it to PATH when the process exits
 * (exit() or a return from main; not in fork children); another value is
 * reported on stderr and ignored. FT_WEAVE_PROFILE_RATE=N sets the rate. */

/* Starts recording into an empty profile. Returns 0, WEAVE_E_STATE when it
 * is already running, WEAVE_E_NOMEM when its table could not be allocated. */
WEAVE_API int weave_profile_start(void);

/* Stops recording (what was recorded is kept for weave_profile_write and
 * weave_profile_rows). Returns 0, or WEAVE_E_STATE when it is not running. */
WEAVE_API int weave_profile_stop(void);

/* Writes the profile recorded so far (running or stopped) to `path` in
 * pprof's format (gzipped profile.proto, as Go's mutex profile: sample types
 * contentions/count and delay/nanoseconds; stacks are the releasing call
 * sites, labels "lock" and "wait_site" name the lock and the waiting call
 * site), readable with `go tool pprof`. Returns 0; WEAVE_E_INVALID for a NULL
 * or empty path or a file that cannot be written; WEAVE_E_STATE when no
 * profile was ever started. */
WEAVE_API int weave_profile_write(const char *path);

/* One row of weave_profile_rows: waits for one lock from one call site,
 * ended by one releasing call site (return addresses; 0 when unknown). */
typedef struct weave_profile_row {
  uintptr_t lock_address; /* the lock (weave_mutex_t *, ...)            */
  uintptr_t wait_site;    /* return address of the waiting call         */
  uintptr_t release_site; /* return address of the unlock that released */
  uint64_t count;         /* waits (scaled by the sampling rate)        */
  uint64_t total_ns;      /* their total time (scaled likewise)         */
  uint64_t max_ns;        /* the longest single wait sampled            */
} weave_profile_row_t;
WEAVE_STATIC_ASSERT(sizeof(weave_profile_row_t) == 3 * sizeof(uintptr_t) + 24, "weave_profile_row_t layout");

/* Fills up to `capacity` rows (in no particular order) and returns how many
 * rows the profile has in all (call with NULL, 0 to size a buffer); 0 when no
 * profile was started. WEAVE_E_INVALID for NULL rows with capacity > 0. */
WEAVE_API int weave_profile_rows(weave_profile_row_t *rows, size_t capacity);

/* Records 1 in `n` waits from now on (1: every wait). Returns the previous
 * rate, or WEAVE_E_INVALID for n < 1. */
WEAVE_API int weave_profile_set_rate(int n);

/* ======================================================================
 * 5. Critical sections (PEP 703 semantics, over weave_mutex_t)
 * ======================================================================
 *
 * A critical section locks a mutex for a block of code, like
 * weave_mutex_lock/unlock, with one difference that makes lock ordering
 * problems go away: while the thread blocks (on a contended mutex with
 * WEAVE_LOCK_DETACH, which plain locks and section begins use, or in
 * weave_park with detach), every section it is inside is *suspended*: their
 * mutexes are released, and the innermost one is re-acquired when the thread
 * continues; outer ones are re-acquired as the inner ones end. Two threads
 * that take sections in opposite orders therefore cannot deadlock. The price
 * (as in free-threaded CPython): an outer section does not protect its data
 * across a blocking call made inside it.
 *
 *     WEAVE_BEGIN_CRITICAL_SECTION(&obj->mutex);
 *     ... obj's fields are protected here ...
 *     WEAVE_END_CRITICAL_SECTION();
 *
 * Sections live on the caller's stack, nest strictly (end the innermost
 * first, on the same thread), and are per thread. Beginning a section on the
 * mutex the innermost active section already holds locks nothing and pushes
 * nothing (re-entry); the same for a two-mutex section on the innermost's
 * mutexes. A two-mutex section locks in address order (on every path); the
 * same mutex twice locks it once. weave_cond_wait works inside sections
 * (see it in section 4). An end unlocks only mutexes the thread holds, and
 * afterwards the library no longer refers to the section. Misuse is recorded
 * in weave_last_error() (WEAVE_E_INVALID for NULL, WEAVE_E_STATE otherwise):
 * ending a suspended section unlocks nothing (another thread may hold its
 * mutexes) and removes it; ending a section that is not the innermost ends
 * it anyway (unlocking its mutexes if it is active) and leaves the sections
 * inside it as they are; ending a section twice changes nothing.
 *
 * Layouts (for static asserts only; fields are private):
 *   _cs_prev:  previous innermost section, tagged: bit 0 = that section is
 *              suspended, bit 1 = it is a two-mutex section.
 *   _cs_mutex: the mutex held (NULL while locking, and for a re-entry). */
typedef struct weave_critical_section {
  uintptr_t _cs_prev;
  weave_mutex_t *_cs_mutex;
} weave_critical_section_t;

typedef struct weave_critical_section2 {
  weave_critical_section_t _cs_base;
  weave_mutex_t *_cs_mutex2;
} weave_critical_section2_t;
WEAVE_STATIC_ASSERT(sizeof(weave_critical_section_t) == 2 * sizeof(void *), "critical section layout");
WEAVE_STATIC_ASSERT(sizeof(weave_critical_section2_t) == 3 * sizeof(void *), "critical section layout");

/* Locks `m` (blocking like weave_mutex_lock) and makes `c` the innermost
 * section of the calling thread. */
WEAVE_API void weave_critical_section_begin(weave_critical_section_t *c, weave_mutex_t *m);
/* Unlocks the mutex of `c`, which must be the innermost, active section, and
 * resumes the enclosing section if it was suspended (which may block). For
 * other sections see the misuse rules above. */
WEAVE_API void weave_critical_section_end(weave_critical_section_t *c);
/* Locks m1 and m2 in address order (once if they are the same). */
WEAVE_API void weave_critical_section2_begin(weave_critical_section2_t *c, weave_mutex_t *m1, weave_mutex_t *m2);
WEAVE_API void weave_critical_section2_end(weave_critical_section2_t *c);
/* Releases the mutexes of every section of the calling thread and marks them
 * suspended (what a detach does). */
WEAVE_API void weave_critical_section_suspend_all(void);
/* Re-acquires the mutexes of the innermost section if it is suspended (what
 * an attach does); outer sections resume as inner ones end. May block. */
WEAVE_API void weave_critical_section_resume(void);

#define WEAVE_BEGIN_CRITICAL_SECTION(m)      \
  {                                          \
    weave_critical_section_t _weave_cs;      \
    weave_critical_section_begin(&_weave_cs, (m));
#define WEAVE_END_CRITICAL_SECTION()         \
    weave_critical_section_end(&_weave_cs);  \
  }
#define WEAVE_BEGIN_CRITICAL_SECTION2(m1, m2) \
  {                                           \
    weave_critical_section2_t _weave_cs2;     \
    weave_critical_section2_begin(&_weave_cs2, (m1), (m2));
#define WEAVE_END_CRITICAL_SECTION2()          \
    weave_critical_section2_end(&_weave_cs2);  \
  }

/* ======================================================================
 * 6. Cross-library storage (Rust plugin_tls semantics, for C)
 * ======================================================================
 *
 * `thread_local` and `static` variables belong to one binary: a host program
 * and each plugin it dlopen()s get their own copies, even when they are built
 * from the same source. These values instead live in one registry inside
 * libft_weave.so, keyed by name, so every binary in the process that links
 * the library sees the same per-thread and the same process-wide value:
 *
 *     long *count = weave_tls_get("myproject.stats:count", sizeof(long), NULL, NULL);
 *     if (count != NULL) ++*count;      // the same long in the host and every plugin
 *
 * Keys are NUL-terminated strings of 1 to WEAVE_STORAGE_KEY_MAX bytes
 * (convention "module.path:name"); the registry keeps its own copy, so nothing
 * points into a plugin after it is unloaded. A key has one size and one kind
 * (thread-local or static) for the life of the process; using it with another
 * size or kind is WEAVE_E_MISMATCH. No initialisation call is needed.
 *
 * Values are zeroed, then initialised by `init(storage, arg)` if init is not
 * NULL; init returns 0 (success) or -1 (failure: the value is discarded and
 * the next get tries again). init runs outside every registry lock: it may
 * get other keys; getting its own key (same thread) returns NULL with
 * WEAVE_E_STATE. Failures return NULL and set weave_last_error(). After the
 * first get of a key on a thread, gets take no lock (a per-thread cache).
 * The registry installs no fork handler (fork() runs none of its code); a
 * fork child may use these values, and a static whose init was running on
 * another thread is initialised again by the child's next get.
 */
#define WEAVE_STORAGE_KEY_MAX 1024

typedef int weave_storage_init_fn(void *storage, void *arg);

/* The calling thread's value for `key` (created on first use on this thread).
 * NULL on a bad key or size (WEAVE_E_INVALID), a size or kind mismatch
 * (WEAVE_E_MISMATCH), a failed init, during this thread's storage teardown or
 * its own init (WEAVE_E_STATE), when weave_storage_reset() ran while init ran
 * (WEAVE_E_STATE: a reset init itself made, or one on another thread; the
 * value is freed), or out of memory (WEAVE_E_NOMEM). The value stays valid
 * until the thread exits or weave_storage_reset(). */
WEAVE_API void *weave_tls_get(const char *key, size_t size, weave_storage_init_fn *init, void *arg);

/* Sets the destructor run with each thread's value pointer at that thread's
 * exit (after the thread-exit destructors of section 2), before the memory is
 * freed; values are destroyed in reverse order of their creation on the
 * thread. May be called before the key's first get. Returns 0,
 * WEAVE_E_INVALID for a bad key or NULL destructor, WEAVE_E_MISMATCH for a
 * static key. */
WEAVE_API int weave_tls_set_destructor(const char *key, wvls_destructor_t destructor);

/* The process-wide value for `key`, initialised exactly once even when many
 * threads ask at the same time (the others wait, detached, for the first
 * init). A failed init, or one a reset overlapped, returns NULL and leaves
 * the value uninitialised for a retry. Errors as weave_tls_get. Statics have
 * no destructor. */
WEAVE_API void *weave_static_get(const char *key, size_t size, weave_storage_init_fn *init, void *arg);

/* Drops every value, for plugin unload: runs the destructors of the calling
 * thread's values on this thread, frees every static, and forgets every
 * key's destructor. Afterwards the next get of any key on any thread returns
 * a freshly zeroed and initialised value. Other live threads' old values are
 * freed without their destructor (which may live in the plugin being
 * unloaded) at their next storage call or exit; pointers obtained before the
 * reset must not be used after it. An init running meanwhile (on any thread,
 * including the init that calls this) makes its get return NULL with
 * WEAVE_E_STATE. Returns how many values were dropped (the calling thread's
 * plus the statics). */
WEAVE_API int weave_storage_reset(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FT_WEAVE_H */
