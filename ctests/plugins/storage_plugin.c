/* A plugin as a host would dlopen() it: built twice (storage_plugin_a.so and
 * storage_plugin_b.so) from this source. Each copy has its own thread_local and
 * static variables, but the values it gets from ft_weave's storage are the
 * ones every other binary in the process gets for the same key. */
#include <ft_weave.h>

#include <stddef.h>

#if defined(__GNUC__)
#define PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define PLUGIN_EXPORT
#endif

static _Thread_local long own_thread_local; /* one per plugin copy and thread */
static long destructor_calls;

/* ++ the process-wide per-thread "demo:counter"; returns the new value. */
PLUGIN_EXPORT long plugin_bump_tls(void) {
  long *counter = (long *)weave_tls_get("demo:counter", sizeof(long), NULL, NULL);
  return counter != NULL ? ++*counter : -1;
}

/* ++ the process-wide static "demo:static" (atomically: threads share it). */
PLUGIN_EXPORT long plugin_bump_static(void) {
  long *counter = (long *)weave_static_get("demo:static", sizeof(long), NULL, NULL);
  return counter != NULL ? __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED) : -1;
}

/* ++ this plugin copy's own thread_local, for contrast. */
PLUGIN_EXPORT long plugin_bump_own_thread_local(void) { return ++own_thread_local; }

static void owned_destructor(void *value) {
  (void)value;
  __atomic_add_fetch(&destructor_calls, 1, __ATOMIC_RELAXED);
}

/* Registers a destructor that lives in this plugin for "demo:owned". */
PLUGIN_EXPORT int plugin_own_key(void) { return weave_tls_set_destructor("demo:owned", owned_destructor); }

PLUGIN_EXPORT long plugin_destructor_calls(void) { return __atomic_load_n(&destructor_calls, __ATOMIC_RELAXED); }
