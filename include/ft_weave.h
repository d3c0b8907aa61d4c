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
 *
 * The contract behind every name here is docs/ and the project's API.md.
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
  WEAVE_E_DEADLOCK = -107   /* deadlock detected (debug mode)                */
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

/* A non-zero id of the calling thread, unique among live threads (an id may
 * be reused after its thread has exited). On glibc it equals
 * (uint64_t)(uintptr_t)pthread_self(). Does not block. */
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
 * - The main thread's destructors run in exit(); call
 *   weave_run_thread_destructors() to run them earlier, or on pooled threads.
 * - Destructors must not call into Python.
 * - Ordering at thread exit (glibc runs thread_local destructors last-in
 *   first-out, then pthread key destructors):
 *     1. C++ thread_local destructors of objects created after the thread's
 *        first ft_weave call;
 *     2. these thread-exit destructors (then the thread's ft_weave state is
 *        freed; an ft_weave call from here to step 3 gets WEAVE_E_STATE where
 *        it would need that state);
 *     3. the .NET runtime detaches the thread;
 *     4. thread_local destructors of objects created before the thread's
 *        first ft_weave call, then pthread key (wvls_key_*) destructors.
 *   Code running in step 4 must not call functions of this library that
 *   are not static inline in this header: the runtime ends the process when
 *   a detached thread re-enters it.
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

/* ft_utils' header-only helpers. Unlike ft_utils these call the library
 * directly and need neither Python nor the GIL. Return 0 on success, 1 on
 * failure (weave_last_error() says why). */
static inline int _py_register_wvls_destructor(void **wvls_var, wvls_destructor_t wvls_destructor) {
  return weave_register_destructor(wvls_var, wvls_destructor) == 0 ? 0 : 1;
}

/* Sets *unregistered (if not NULL) to 1 if a registration was removed, else 0. */
static inline int _py_unregister_wvls_destructor(void **wvls_var, int *unregistered) {
  int removed = weave_unregister_destructor(wvls_var);
  if (removed < 0) {
    return 1;
  }
  if (unregistered != NULL) {
    *unregistered = removed;
  }
  return 0;
}

/* pthread keys under ft_utils' names. Each returns 0 or an errno value
 * (EINVAL for a NULL pointer); unlike ft_utils, key 0 is a valid key. Key
 * destructors run after the thread-exit destructors above. */
typedef pthread_key_t wvls_key_t;
WEAVE_API int wvls_key_create(wvls_key_t *key, wvls_destructor_t destructor);
WEAVE_API int wvls_key_delete(wvls_key_t key);
WEAVE_API int wvls_set_value(wvls_key_t key, void *value);
WEAVE_API void *wvls_get_value(wvls_key_t key);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FT_WEAVE_H */
