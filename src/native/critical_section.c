/*
 * Critical sections (ft_weave.h section 5): the exported begin and end
 * functions, with their uncontended cases done here in C and everything else
 * handed to the C# implementation (src/FtWeave/Sections/CriticalSection.cs).
 *
 * Why C. Every [UnmanagedCallersOnly] export pays NativeAOT's reverse
 * P/Invoke transition (find the runtime's thread, switch it to cooperative
 * mode and back) plus the ThreadContexts lookup: about 220 + 170
 * instructions for a begin + end, against 32 + 28 for CPython's
 * Py_BEGIN/END_CRITICAL_SECTION (docs/benchmarks.md). The uncontended case
 * needs neither the runtime nor managed state: one CAS on the mutex byte and
 * a push onto the thread's chain, whose head (ThreadContext.SectionTop) is in
 * native memory.
 *
 * The split. C does only these cases, each exactly as the C# code would:
 *
 *   call       | done here when                          | what it does
 *   -----------+-----------------------------------------+-------------------
 *   begin      | the thread's context is published (see  | CAS 0 -> LOCKED,
 *              | below), arguments non-NULL, CAS succeeds | push
 *              | same, CAS fails, innermost active        | re-entry: nothing
 *              | section holds m                          | locked or pushed
 *   begin2     | as begin, m1 != m2, both CASes succeed   | push, tag TWO
 *              | first CAS fails, innermost holds both    | re-entry
 *              | first CAS succeeds, second fails         | C# (contended
 *              |                                          | entry, holds m1)
 *   end, end2  | the section is a re-entry (mutex NULL,   | mark ended
 *              | prev 0)                                  |
 *              | it is the innermost and active, and the  | unlock (the slow
 *              | section around it is not suspended (no   | unlock in C# when
 *              | resume to do)                            | waiters parked), pop
 *
 * Everything else goes to the C# slow paths, which are the former exports
 * (NULL checks and misuse messages, no context yet, a contended mutex that
 * must park with the section pushed, resuming a suspended outer section,
 * teardown state). They are [UnmanagedCallersOnly] entry points with ftw_
 * names that this file declares hidden (ftw_native.h), so they are linked
 * into the library but never exported. The state rules (tag bits, the
 * encodings of an ended and an unpushed section, which sections hold their
 * mutexes) are CriticalSection.cs's; the constants below must equal its
 * (ftw_critical_section_constants() lets the C# side check that before it
 * publishes any context, and it keeps the fast path off otherwise).
 *
 * The mutex protocol is ft_weave.h's (WEAVE_MUTEX_LOCKED and
 * WEAVE_MUTEX_HAS_PARKED, also checked against Mutex.cs by abi_check): lock
 * is a CAS of _locked from 0 to LOCKED with acquire ordering; unlock, when
 * _locked is LOCKED and _parked 0, a release store of _locked = 0 followed
 * (after a compiler-only fence) by a load of _parked, non-zero going to
 * Mutex.UnlockWake; exactly the header's inline weave_mutex_lock and
 * weave_mutex_unlock. A mutex with _parked set before the release goes to
 * Mutex.UnlockSlow (which can hand the lock to a starving waiter).
 * docs/locks.md explains why the store-then-load loses no wake-up.
 *
 * The thread's context. section_top below is the address of the calling
 * thread's ThreadContext.SectionTop, or NULL. Only C# writes it
 * (ftw_critical_section_publish): when it creates the thread's context, and
 * NULL when it tears the context down (before freeing it), so a torn-down
 * context is never reached from here. NULL sends every call to C#, which
 * creates the context or reports the thread as past its teardown as before.
 * pthread key destructors and thread-exit destructors that run before the
 * teardown use the fast path like any code; those after it get C#'s
 * untracked sections as before. A fork child's only thread keeps its
 * context (the key value, this variable and the context's memory are all
 * copied), so both agree there too.
 *
 * TLS model. The library may be dlopen()ed (ctypes, or as a dependency of a
 * CPython extension module). A thread-local in a dlopen()ed object normally
 * lives in dynamic TLS, reached through __tls_get_addr (about 24
 * instructions per access, measured with callgrind), while initial-exec
 * (9) would make the whole library need static TLS, which dlopen refuses
 * with "cannot allocate memory in static TLS block" when the process has
 * used up glibc's small surplus. This file is compiled with TLS descriptors
 * (-mtls-dialect=gnu2 on x86-64; the default on AArch64): glibc places a
 * dlopen()ed module's TLS in that surplus when it can, and the access is then
 * a call to a two-instruction resolver (about 14 in all); when it cannot, the
 * access falls back to dynamic TLS and dlopen still succeeds. No new
 * allocation point either: the block is the same one the NativeAOT runtime
 * touches on the thread's first call into C#.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdlib.h>

#include "ft_weave.h"
#include "ftw_native.h"

/* CriticalSections' tag bits and encodings (CriticalSection.cs). */
#define CS_SUSPENDED ((uintptr_t)1)  /* CriticalSections.Inactive */
#define CS_TWO ((uintptr_t)2)        /* CriticalSections.TwoMutexes */
#define CS_TAGS ((uintptr_t)3)       /* CriticalSections.TagMask */
#define CS_ENDED ((uintptr_t)1)      /* CriticalSections.Ended */
#define CS_NOT_PUSHED ((uintptr_t)3) /* CriticalSections.NotPushed (only C# sets it) */

/* Sections are pointer aligned, so the two tag bits are free. */
_Static_assert(_Alignof(weave_critical_section_t) >= 4, "tag bits need 4-byte alignment");
_Static_assert(offsetof(weave_critical_section2_t, _cs_base) == 0, "a two-mutex section starts with a one-mutex one");

static __thread uintptr_t *section_top;

/* Debug mode's switch for the sections (set by DebugMode.cs whenever the
 * lock-order or live-deadlock checks go on or off): while it is on, every
 * begin goes through C#, which first tells the checks which mutexes the
 * thread's active sections hold. Until C# has read FT_WEAVE_DEBUG it follows
 * the variable's presence, so that a program whose first call is a begin is
 * checked too. Relaxed: a hint read once per begin; a begin that races a
 * weave_debug_set is checked or not, as if it came just before or after. */
static int debug_sections;

__attribute__((constructor)) static void debug_sections_from_environment(void) {
  const char *v = getenv("FT_WEAVE_DEBUG");
  __atomic_store_n(&debug_sections, v != NULL && *v != 0, __ATOMIC_RELAXED);
}

void ftw_debug_sections_set(int on) { __atomic_store_n(&debug_sections, on != 0, __ATOMIC_RELAXED); }

uint64_t ftw_critical_section_constants(void) {
  return (uint64_t)CS_SUSPENDED | (uint64_t)CS_TWO << 8 | (uint64_t)CS_ENDED << 16 | (uint64_t)CS_NOT_PUSHED << 24 |
         (uint64_t)WEAVE_MUTEX_LOCKED << 32 | (uint64_t)WEAVE_MUTEX_HAS_PARKED << 40;
}

void ftw_critical_section_publish(uintptr_t *top) { section_top = top; }

static inline weave_critical_section_t *untag(uintptr_t tag) { return (weave_critical_section_t *)(tag & ~CS_TAGS); }

static inline bool is_active(uintptr_t tag) { return tag != 0 && (tag & CS_SUSPENDED) == 0; }

static inline bool holds(uintptr_t tag, weave_mutex_t *m) {
  weave_critical_section_t *c = untag(tag);
  return c->_cs_mutex == m || ((tag & CS_TWO) != 0 && ((weave_critical_section2_t *)c)->_cs_mutex2 == m);
}

/* The header's weave_mutex_lock fast path: acquire pairs with the release of
 * the unlock that freed the byte, so the section sees the data written under
 * the previous hold. */
static inline bool try_lock(weave_mutex_t *m) {
  uint8_t expected = 0;
  return __atomic_compare_exchange_n(&m->_bytes[0], &expected, (uint8_t)WEAVE_MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED);
}

/* The header's weave_mutex_unlock without its NULL check: true when the
 * mutex was released here (release publishes the section's writes to the
 * next holder). False, touching nothing, when waiters were announced before
 * the release (or the mutex is not locked): that unlock is Mutex.UnlockSlow's
 * (ftw_mutex_unlock_slow). A waiter announced after the release is woken
 * through ftw_mutex_unlock_wake. */
static inline bool try_unlock(weave_mutex_t *m) {
  if (__atomic_load_n(&m->_bytes[0], __ATOMIC_RELAXED) != WEAVE_MUTEX_LOCKED ||
      __atomic_load_n(&m->_bytes[1], __ATOMIC_RELAXED) != 0) {
    return false;
  }
  __atomic_store_n(&m->_bytes[0], (uint8_t)0, __ATOMIC_RELEASE);
  /* Compiler-only: the load must follow the store in program order; the
   * processor's reordering of the two is covered by the waiter's
   * process-wide barrier. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (__builtin_expect(__atomic_load_n(&m->_bytes[1], __ATOMIC_RELAXED) != 0, 0)) {
    ftw_mutex_unlock_wake(m);
  }
  return true;
}

static inline void unlock(weave_mutex_t *m) {
  if (!try_unlock(m)) {
    ftw_mutex_unlock_slow(m);
  }
}

/* Pops c, the innermost section (prev: its _cs_prev), and marks it ended
 * (C#'s unlink and MarkEnded; a two-mutex section's _cs_mutex2 is cleared
 * after it, as there). */
static inline void pop(weave_critical_section_t *c, uintptr_t *top, uintptr_t prev) {
  *top = prev;
  c->_cs_mutex = NULL;
  c->_cs_prev = CS_ENDED;
}

/* The ends' unlocks when a CAS failed, out of line so that the fast paths
 * need no saved registers. `done` mutexes of the list were released already. */
__attribute__((noinline)) static void end_unlocking_slowly(weave_critical_section_t *c, uintptr_t *top, uintptr_t prev,
                                                           weave_mutex_t *m1, weave_mutex_t *m2, int done) {
  if (done == 0) {
    ftw_mutex_unlock_slow(m1);
    if (m2 != NULL) {
      unlock(m2);
    }
  } else {
    ftw_mutex_unlock_slow(m2);
  }
  pop(c, top, prev);
  if (m2 != NULL) {
    ((weave_critical_section2_t *)c)->_cs_mutex2 = NULL;
  }
}

/* The chain is the calling thread's alone (only it reads or writes its
 * context and its sections), so plain loads and stores suffice below. */

void weave_critical_section_begin(weave_critical_section_t *c, weave_mutex_t *m) {
  uintptr_t *top = section_top;
  if (top != NULL && c != NULL && m != NULL && !__atomic_load_n(&debug_sections, __ATOMIC_RELAXED)) {
    if (try_lock(m)) {
      c->_cs_mutex = m;
      c->_cs_prev = *top;
      *top = (uintptr_t)c;
      return;
    }
    /* The innermost active section holding m has m locked, so the CAS
     * failing first is no loss: C# checks the same before parking. */
    uintptr_t t = *top;
    if (is_active(t) && holds(t, m)) {
      c->_cs_mutex = NULL;
      c->_cs_prev = 0;
      return;
    }
  }
  ftw_critical_section_begin_slow(c, m);
}

void weave_critical_section2_begin(weave_critical_section2_t *c, weave_mutex_t *m1, weave_mutex_t *m2) {
  uintptr_t *top = section_top;
  if (top != NULL && c != NULL && m1 != NULL && m2 != NULL && m1 != m2 &&
      !__atomic_load_n(&debug_sections, __ATOMIC_RELAXED)) {
    if ((uintptr_t)m2 < (uintptr_t)m1) {
      /* Address order, as C# (the contended entry below relies on it). */
      weave_mutex_t *t = m1;
      m1 = m2;
      m2 = t;
    }
    if (try_lock(m1)) {
      if (try_lock(m2)) {
        c->_cs_base._cs_mutex = m1;
        c->_cs_mutex2 = m2;
        c->_cs_base._cs_prev = *top;
        *top = (uintptr_t)c | CS_TWO;
        return;
      }
      /* Holding m1 (so the innermost section held neither: no re-entry). */
      ftw_critical_section2_begin_contended(c, m1, m2);
      return;
    }
    uintptr_t t = *top;
    if (is_active(t) && holds(t, m1) && holds(t, m2)) {
      c->_cs_base._cs_mutex = NULL;
      c->_cs_base._cs_prev = 0;
      c->_cs_mutex2 = NULL;
      return;
    }
  }
  ftw_critical_section2_begin_slow(c, m1, m2);
}

void weave_critical_section_end(weave_critical_section_t *c) {
  if (c != NULL) {
    weave_mutex_t *m = c->_cs_mutex;
    uintptr_t prev = c->_cs_prev;
    if (m == NULL && prev == 0) {
      /* A re-entry: nothing was locked or pushed. */
      c->_cs_prev = CS_ENDED;
      return;
    }
    uintptr_t *top = section_top;
    /* Untagged top == c: c is the innermost, active, one-mutex section. */
    if (m != NULL && top != NULL && *top == (uintptr_t)c && (prev & CS_SUSPENDED) == 0) {
      /* Unlock, then pop, as C#'s EndSection. */
      if (!try_unlock(m)) {
        end_unlocking_slowly(c, top, prev, m, NULL, 0);
        return;
      }
      pop(c, top, prev);
      return;
    }
  }
  ftw_critical_section_end_slow(c);
}

void weave_critical_section2_end(weave_critical_section2_t *c) {
  if (c != NULL) {
    weave_critical_section_t *base = &c->_cs_base;
    weave_mutex_t *m1 = base->_cs_mutex;
    uintptr_t prev = base->_cs_prev;
    if (m1 == NULL && prev == 0) {
      base->_cs_prev = CS_ENDED;
      return;
    }
    uintptr_t *top = section_top;
    if (m1 != NULL && top != NULL && (prev & CS_SUSPENDED) == 0) {
      uintptr_t t = *top;
      weave_mutex_t *m2 = c->_cs_mutex2;
      if (t == ((uintptr_t)c | CS_TWO) && m2 != NULL) {
        /* Same order as C#'s Release: the first mutex, then the second. */
        if (!try_unlock(m1)) {
          end_unlocking_slowly(base, top, prev, m1, m2, 0);
          return;
        }
        if (!try_unlock(m2)) {
          end_unlocking_slowly(base, top, prev, m1, m2, 1);
          return;
        }
        pop(base, top, prev);
        c->_cs_mutex2 = NULL;
        return;
      }
      if (t == (uintptr_t)c) {
        /* Begun with m1 == m2: pushed as a one-mutex section (no tag), its
         * _cs_mutex2 NULL; C# ends it as such too. */
        if (!try_unlock(m1)) {
          end_unlocking_slowly(base, top, prev, m1, NULL, 0);
          return;
        }
        pop(base, top, prev);
        return;
      }
    }
  }
  ftw_critical_section2_end_slow(c);
}
