/*
 * Reader bias of weave_rwmutex_t (ft_weave.h section 4; docs/locks.md,
 * "RW mutex: reader bias"): the visible-readers table of BRAVO (Dice and
 * Kogan, "BRAVO: Biased Locking for Reader-Writer Locks", USENIX ATC 2019)
 * and the per-lock inhibit times.
 *
 * Why C. The table is read and written by the header's inline rlock/runlock
 * (in the user's code), by the exported copies and by the C# writer slow
 * path, which must all agree on one layout and one hash; the header finds it
 * through weave__rwmutex_readers() (a C# export
 * returning ftw_rwmutex_readers(), as the ABI check wants every export). It is static storage (nothing to
 * allocate, so nothing can fail) and is copied into a fork child as it is:
 * the forking thread's own biased read locks stay held there, as a counted
 * read lock does (a reader of another thread stays in the table, exactly as
 * it stays in a counted word).
 *
 * Layout. 64 stripes of 64 slots of 16 bytes (64 KiB). A lock uses the one
 * stripe its address hashes to, and a thread the slot of its id within the
 * stripe, so a writer revoking the bias scans 1 KiB (16 cache lines), not
 * the whole table. Consecutive thread ids land on different cache lines
 * (slot = (lane % 16) * 4 + lane / 16), so up to 16 readers of one lock
 * write 16 different lines. Two locks in one stripe only share slots: a
 * reader that finds its slot taken (by another lock, or by itself holding
 * the lock twice) uses the lock's counter instead.
 */
#include <stdint.h>
#include <time.h>

#include "ftw_native.h"
#include "ft_weave.h"

/* The CPU's spin-wait hint. */
static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* The table; its shape is ft_weave.h's (WEAVE__RWMUTEX_STRIPES, ...). */
static struct weave__rwmutex_slot readers[WEAVE__RWMUTEX_STRIPES * WEAVE__RWMUTEX_STRIPE_SLOTS]
    __attribute__((aligned(64)));

/* Per-stripe inhibit-until times (monotonic ns): after a revocation the bias
 * stays off until then. Locks sharing a stripe share the time, which can
 * only keep the bias off longer than needed, never break anything. */
static int64_t inhibit_until[WEAVE__RWMUTEX_STRIPES];

/* The bias stays off for this multiple of what its revocation cost (BRAVO's
 * N = 9: revocations then take at most a tenth of a writer-heavy phase)... */
#define FTW_RW_INHIBIT_FACTOR 9
/* ...and at most this long, so that one reader that held the lock for a
 * second does not keep the bias off for nine. */
#define FTW_RW_INHIBIT_MAX_NS ((int64_t)10 * 1000 * 1000)

/* The table, for the C# export weave__rwmutex_readers (RWMutexExports.cs). */
struct weave__rwmutex_slot *ftw_rwmutex_readers(void) { return readers; }

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ftw_rwmutex_try_rlock_biased(weave_rwmutex_t *rw) {
  uint64_t id = ftw_thread_id();
  struct weave__rwmutex_slot *slot = &readers[weave__rwmutex_slot_index(rw, id)];
  return weave__rwmutex_try_rlock_biased_at(rw, slot, id);
}

int ftw_rwmutex_try_runlock_biased(weave_rwmutex_t *rw) {
  uint64_t id = ftw_thread_id_peek();
  if (id == 0) {
    return 0; /* a thread without an id never took a slot */
  }
  return weave__rwmutex_try_runlock_biased_at(rw, &readers[weave__rwmutex_slot_index(rw, id)], id);
}

/* The index (>= start) of the first slot of rw's stripe that still names
 * rw after `spins` pauses spent waiting on it, or -1 once no slot from
 * `start` on names rw. The writer calls it holding write-locked, with the
 * bias on or off, starting at 0 and then resuming where it stopped.
 *
 * Why each slot need be waited for only once (Dekker, all seq_cst): the
 * writer's CAS that set write-locked (or cleared the bias) precedes this
 * scan. A reader commits only if its re-read of the word comes before that
 * CAS, so its slot CAS comes before the CAS too, hence before our load of
 * its slot: we see it and wait until it leaves. A reader whose slot CAS
 * comes after our load of its slot re-reads the word after our CAS, sees the
 * writer's bit and backs out without touching the protected data (we may
 * still see it for a moment and wait for it: harmless). So once a slot was
 * seen free of rw, no committed reader can appear there until we unlock.
 * Acquire loads (seq_cst): pair with the reader's release store that
 * empties its slot, so the reader's loads in its critical section happen
 * before the writer's stores after the wait.
 *
 * Prefetch-friendly: the stripe is 16 consecutive cache lines read in order;
 * a line no reader of the stripe wrote since our last scan is a cache hit. */
int ftw_rwmutex_wait_biased_readers(const weave_rwmutex_t *rw, int start, int spins) {
  const struct weave__rwmutex_slot *stripe = &readers[weave__rwmutex_stripe(rw) * WEAVE__RWMUTEX_STRIPE_SLOTS];
  for (int i = start < 0 ? 0 : start; i < WEAVE__RWMUTEX_STRIPE_SLOTS; i++) {
    while (__atomic_load_n(&stripe[i].lock, __ATOMIC_SEQ_CST) == (uintptr_t)rw) {
      if (spins-- <= 0) {
        return i;
      }
      cpu_pause();
    }
  }
  return -1;
}

/* A revocation that started at start_ns has ended: inhibit the bias for
 * FTW_RW_INHIBIT_FACTOR times its cost. */
void ftw_rwmutex_revoked(const weave_rwmutex_t *rw, int64_t start_ns) {
  int64_t now = monotonic_ns();
  int64_t cost = now - start_ns;
  if (cost < 0) {
    cost = 0;
  }
  int64_t inhibit = cost * FTW_RW_INHIBIT_FACTOR;
  if (inhibit > FTW_RW_INHIBIT_MAX_NS) {
    inhibit = FTW_RW_INHIBIT_MAX_NS;
  }
  /* Relaxed: a hint; a stale value only turns the bias on a little early or
   * late. */
  __atomic_store_n(&inhibit_until[weave__rwmutex_stripe(rw)], now + inhibit, __ATOMIC_RELAXED);
}

/* 1 when the bias of rw may be turned on again (its inhibit time passed). */
int ftw_rwmutex_bias_allowed(const weave_rwmutex_t *rw) {
  return monotonic_ns() >= __atomic_load_n(&inhibit_until[weave__rwmutex_stripe(rw)], __ATOMIC_RELAXED);
}
