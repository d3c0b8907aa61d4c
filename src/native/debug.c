/*
 * Debug mode's C part (ft_weave.h, "Diagnostics: debug mode";
 * src/FtWeave/Diagnostics/). The weave_debug_* lock operations that
 * -DFT_WEAVE_DEBUG routes the header's inline functions to are defined here
 * rather than in C#, because only C can name the caller's return address:
 * each stores it in a thread-local slot and calls its C# entry point, which
 * takes it back (ftw_debug_take_site) as the acquisition's call site. The
 * C# entry points have the same parameters as the exports, so the ABI check
 * compares them like the critical sections' slow paths.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ft_weave.h"
#include "ftw_native.h" /* __real_pthread_key_create */

#pragma GCC visibility push(hidden)

/* C# entry points (Exports/DiagnosticsExports.cs): hidden, never exported. */
void ftw_debug_mutex_lock(weave_mutex_t *m);
int ftw_debug_mutex_unlock(weave_mutex_t *m);
int ftw_debug_mutex_trylock(weave_mutex_t *m);
void ftw_debug_recursive_mutex_lock(weave_recursive_mutex_t *m);
int ftw_debug_recursive_mutex_unlock(weave_recursive_mutex_t *m);
void ftw_debug_rwmutex_rlock(weave_rwmutex_t *rw);
int ftw_debug_rwmutex_runlock(weave_rwmutex_t *rw);
void ftw_debug_rwmutex_lock(weave_rwmutex_t *rw);
int ftw_debug_rwmutex_unlock(weave_rwmutex_t *rw);

/* Called from C# (Diagnostics/DebugNative.cs). */
const void *ftw_debug_take_site(void);
int ftw_debug_symbolize(const void *site, char *buf, int capacity);
const char *ftw_debug_environment(void);
void ftw_debug_write_stderr(const char *line);
void *ftw_debug_record(void);
int ftw_debug_set_record(void *record);

/* The call site of the weave_debug_* call in progress on this thread; taken
 * (and cleared) by the C# side at its start, so a later checked call made
 * through an export without a site never sees a stale one. initial-exec:
 * the library is linked with -z nodelete and loaded once. */
static __thread const void *debug_site __attribute__((tls_model("initial-exec")));

/* The calling thread's debug record (Diagnostics/DebugThreads.cs: a slot
 * of a fixed native table whose first int is 1 while a thread owns it), or
 * NULL. Here rather than in a C# [ThreadStatic], whose first touch would
 * allocate on the GC heap. */
static __thread void *debug_record __attribute__((tls_model("initial-exec")));

#pragma GCC visibility pop

static pthread_key_t record_key;
static pthread_once_t record_key_once = PTHREAD_ONCE_INIT;
static int record_key_ok;

/* At thread exit: give the slot back (the C# side re-initialises a slot it
 * claims). A checked lock call from a later destructor finds no record and
 * claims a new one, which the key's next destructor round frees again. */
static void release_record(void *record) {
  if (debug_record == record) {
    debug_record = NULL;
  }
  __atomic_store_n((int *)record, 0, __ATOMIC_RELEASE);
}

static void create_record_key(void) {
  record_key_ok = __real_pthread_key_create(&record_key, release_record) == 0;
}

void *ftw_debug_record(void) {
  return debug_record;
}

/* 0, or -1 when the thread-exit key could not be made (the caller then
 * frees the slot itself and runs without a record). */
int ftw_debug_set_record(void *record) {
  (void)pthread_once(&record_key_once, create_record_key);
  if (!record_key_ok || pthread_setspecific(record_key, record) != 0) {
    return -1;
  }
  debug_record = record;
  return 0;
}

const void *ftw_debug_take_site(void) {
  const void *site = debug_site;
  debug_site = NULL;
  return site;
}

/* "function+0xoffset (object)" when dladdr names the symbol, else
 * "object+0xoffset", else the raw address. The site is a return address:
 * it points just after the call instruction. */
int ftw_debug_symbolize(const void *site, char *buf, int capacity) {
  Dl_info info;
  int n;
  if (buf == NULL || capacity <= 0) {
    return 0;
  }
  if (site == NULL) {
    n = snprintf(buf, (size_t)capacity, "(no call site: an exported call)");
  } else if (dladdr(site, &info) != 0 && info.dli_fname != NULL) {
    const char *object = strrchr(info.dli_fname, '/');
    object = object != NULL ? object + 1 : info.dli_fname;
    if (info.dli_sname != NULL && info.dli_saddr != NULL) {
      n = snprintf(buf, (size_t)capacity, "%s+0x%lx (%s)", info.dli_sname,
                   (unsigned long)((const char *)site - (const char *)info.dli_saddr), object);
    } else {
      n = snprintf(buf, (size_t)capacity, "%p (%s+0x%lx)", site, object,
                   (unsigned long)((const char *)site - (const char *)info.dli_fbase));
    }
  } else {
    n = snprintf(buf, (size_t)capacity, "%p", site);
  }
  if (n < 0) {
    buf[0] = '\0';
    return 0;
  }
  return n < capacity ? n : capacity - 1;
}

const char *ftw_debug_environment(void) {
  return getenv("FT_WEAVE_DEBUG");
}

/* The default report: one line on stderr, in one write when it fits. */
void ftw_debug_write_stderr(const char *line) {
  char buf[4096];
  size_t n = strlen(line);
  if (n + 1 < sizeof buf) {
    memcpy(buf, line, n);
    buf[n] = '\n';
    (void)!write(2, buf, n + 1);
  } else {
    (void)!write(2, line, n);
    (void)!write(2, "\n", 1);
  }
}

/* noinline keeps __builtin_return_address(0) the address in the caller's
 * code, whatever the optimisation level. */
#define FTW_DEBUG_SITE() (debug_site = __builtin_return_address(0))

__attribute__((noinline)) void weave_debug_mutex_lock(weave_mutex_t *m) {
  FTW_DEBUG_SITE();
  ftw_debug_mutex_lock(m);
}

__attribute__((noinline)) int weave_debug_mutex_unlock(weave_mutex_t *m) {
  FTW_DEBUG_SITE();
  return ftw_debug_mutex_unlock(m);
}

__attribute__((noinline)) int weave_debug_mutex_trylock(weave_mutex_t *m) {
  FTW_DEBUG_SITE();
  return ftw_debug_mutex_trylock(m);
}

__attribute__((noinline)) void weave_debug_recursive_mutex_lock(weave_recursive_mutex_t *m) {
  FTW_DEBUG_SITE();
  ftw_debug_recursive_mutex_lock(m);
}

__attribute__((noinline)) int weave_debug_recursive_mutex_unlock(weave_recursive_mutex_t *m) {
  FTW_DEBUG_SITE();
  return ftw_debug_recursive_mutex_unlock(m);
}

__attribute__((noinline)) void weave_debug_rwmutex_rlock(weave_rwmutex_t *rw) {
  FTW_DEBUG_SITE();
  ftw_debug_rwmutex_rlock(rw);
}

__attribute__((noinline)) int weave_debug_rwmutex_runlock(weave_rwmutex_t *rw) {
  FTW_DEBUG_SITE();
  return ftw_debug_rwmutex_runlock(rw);
}

__attribute__((noinline)) void weave_debug_rwmutex_lock(weave_rwmutex_t *rw) {
  FTW_DEBUG_SITE();
  ftw_debug_rwmutex_lock(rw);
}

__attribute__((noinline)) int weave_debug_rwmutex_unlock(weave_rwmutex_t *rw) {
  FTW_DEBUG_SITE();
  return ftw_debug_rwmutex_unlock(rw);
}
