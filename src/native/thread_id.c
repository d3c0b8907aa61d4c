/*
 * weave_thread_id's storage (ft_weave.h section 1): a 64-bit counter value,
 * assigned on a thread's first call and never handed out again, so an id is
 * never reused for the life of the process (glibc reuses pthread_self()
 * values: a new thread often gets the descriptor of one that just exited).
 *
 * Why C and a pthread key of its own, and not the library's per-thread
 * context or a C# [ThreadStatic]:
 * - It must work at any point of a thread's life, including inside thread
 *   teardown after the .NET runtime has detached the thread, and on threads
 *   that never entered managed code: plain C, no managed code, no runtime.
 * - It must not allocate on the GC heap (a [ThreadStatic] block does), and
 *   must not depend on the per-thread context, which is created lazily and
 *   torn down at thread exit.
 * - A pthread key rather than C __thread: libft_weave.so may be dlopen()ed,
 *   and the first touch of a dlopen()ed library's TLS block on a thread
 *   allocates it inside __tls_get_addr, which aborts the process when that
 *   allocation fails. pthread_setspecific reports ENOMEM instead, and for the
 *   first 32 keys of the process (ours is created when the library is
 *   loaded) it never allocates at all.
 *
 * The value is the id itself (no allocation, nothing to free). glibc clears
 * every key's value before it calls that key's destructor, during thread
 * teardown; keep_id stores it back, so that destructors of other keys that
 * run after ours (in the same round or later ones) still see the thread's
 * id. glibc repeats the rounds while values are set, at most
 * PTHREAD_DESTRUCTOR_ITERATIONS (4) times, and then forgets every value: a
 * call made after that (only possible from exit() run by the last thread of
 * a process whose main thread called pthread_exit) gets a fresh id.
 *
 * A fork child keeps the forking thread's id (the key's value is copied
 * with the thread) and continues the counter.
 */
#include <pthread.h>

#include "ftw_native.h"
#include <stdint.h>

static pthread_key_t id_key;
static int id_key_ready; /* written once by the constructor, before any call */
static uint64_t last_id;  /* the last id handed out; only atomic adds */

/* Ids from the counter stay below this bit; fallback ids have it set. */
#define FTW_FALLBACK_ID_BIT ((uint64_t)1 << 63)

static void keep_id(void *value) {
  /* See the file comment: keep the id visible to later destructors. */
  (void)pthread_setspecific(id_key, value);
}

/* At load time (under the loader lock, before any export can be called): the
 * key exists before any thread asks for an id, and is likely among the
 * first 32 keys (pthread_setspecific never allocates for those). */
__attribute__((constructor)) static void ftw_thread_id_init(void) {
  if (__real_pthread_key_create(&id_key, keep_id) == 0) {
    id_key_ready = 1;
  }
}

/* The id if this thread already has one, else 0. Never blocks, never
 * allocates (pthread_getspecific reads the thread's descriptor). */
uint64_t ftw_thread_id_peek(void) {
  return id_key_ready ? (uint64_t)(uintptr_t)pthread_getspecific(id_key) : 0;
}

/* The calling thread's id, assigned on its first call. May allocate once
 * per thread (pthread_setspecific of a key above 31), so callers must not
 * treat it as a call that cannot block. */
uint64_t ftw_thread_id(void) {
  uint64_t id = ftw_thread_id_peek();
  if (id != 0) {
    return id;
  }
  if (id_key_ready) {
    /* Relaxed: the counter only has to hand out distinct values. */
    id = __atomic_add_fetch(&last_id, 1, __ATOMIC_RELAXED);
    if (pthread_setspecific(id_key, (void *)(uintptr_t)id) == 0) {
      return id;
    }
  }
  /* No key (PTHREAD_KEYS_MAX used up before the library was loaded) or no
   * memory for the key's value: fall back to the thread pointer, tagged so
   * that it never equals a counter id. Still unique among live threads and
   * stable for the thread, but reusable after it exits (the old behaviour). */
  return (uint64_t)(uintptr_t)pthread_self() | FTW_FALLBACK_ID_BIT;
}
