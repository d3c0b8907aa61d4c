/*
 * The C part of libft_weave.so (src/native/): what must run where managed
 * code cannot. Private to the library: hidden symbols, reached from C#
 * through direct P/Invoke (FtWeave.csproj, DirectPInvoke "ft_weave_native";
 * Interop/Interop.Native.cs).
 */
#ifndef FTW_NATIVE_H
#define FTW_NATIVE_H

#include <pthread.h>
#include <stdint.h>

/* The library links with -Wl,--wrap=pthread_key_create (thread_exit.c): the
 * wrapper is for the runtime's key only, so the library's own C code creates
 * its keys with the real function. Declared outside the hidden region below:
 * it resolves to libc's pthread_key_create. */
int __real_pthread_key_create(pthread_key_t *key, void (*destructor)(void *));

#pragma GCC visibility push(hidden)

/* thread_exit.c */
int ftw_context_key(uint32_t *key);
void ftw_set_thread_teardown(void (*teardown)(void));
int ftw_thread_has_context(void);
int ftw_is_main_thread(void);

/* once_runner.c: 1 while thread `tid` of this process runs code; 0 once it
 * has exited, or is the main thread and a zombie after pthread_exit. */
int ftw_thread_alive(int tid);

/* python_probe.c: restore(tstate) (PyEval_RestoreThread); a thread that
 * CPython ends in there (pthread_exit during finalization) is parked for good
 * instead of unwinding through the library's frames. */
void ftw_python_restore(void (*restore)(void *), void *tstate);

/* process_exit.c */
void ftw_process_exit_init(void);
void ftw_main_thread_exiting(void);
void ftw_process_exit_forget_current_thread(void);

/* critical_section.c: the fast paths of weave_critical_section_begin/end and
 * 2_begin/2_end (exported: ft_weave.h declares them WEAVE_API). */
struct weave_mutex;
struct weave_critical_section;
struct weave_critical_section2;
/* CriticalSection.cs's tag bits and the mutex bits, packed, for its check. */
uint64_t ftw_critical_section_constants(void);
/* Sets the calling thread's &ThreadContext.SectionTop, or NULL (C# only). */
void ftw_critical_section_publish(uintptr_t *top);

/* C# [UnmanagedCallersOnly] entry points that critical_section.c calls
 * (Exports/CriticalSectionExports.cs). Declared hidden here, which makes the
 * linked symbols hidden: they are never exported, whatever the runtime's
 * version script lists. Each goes through the NativeAOT transition. */
/* The former exports: every case (NULL checks, no context, contended...). */
void ftw_critical_section_begin_slow(struct weave_critical_section *c, struct weave_mutex *m);
void ftw_critical_section_end_slow(struct weave_critical_section *c);
void ftw_critical_section2_begin_slow(struct weave_critical_section2 *c, struct weave_mutex *m1,
                                      struct weave_mutex *m2);
void ftw_critical_section2_end_slow(struct weave_critical_section2 *c);
/* m1 < m2, the caller's context is published and it holds m1 (its CAS
 * succeeded) but m2's CAS failed: push and lock m2 the slow way. */
void ftw_critical_section2_begin_contended(struct weave_critical_section2 *c, struct weave_mutex *m1,
                                           struct weave_mutex *m2);
/* Mutex.UnlockSlow (no error recorded: as Mutex.Unlock in C#). */
int ftw_mutex_unlock_slow(struct weave_mutex *m);
/* Mutex.UnlockWake: after the release store, _parked was non-zero. */
void ftw_mutex_unlock_wake(struct weave_mutex *m);

/* thread_id.c */
uint64_t ftw_thread_id(void);
uint64_t ftw_thread_id_peek(void);

/* rwmutex_bias.c: the reader bias of weave_rwmutex_t (RWMutex.cs). */
struct weave_rwmutex;
struct weave__rwmutex_slot;
struct weave__rwmutex_slot *ftw_rwmutex_readers(void);
int ftw_rwmutex_try_rlock_biased(struct weave_rwmutex *rw);
int ftw_rwmutex_try_runlock_biased(struct weave_rwmutex *rw);
int ftw_rwmutex_wait_biased_readers(const struct weave_rwmutex *rw, int start, int spins);
void ftw_rwmutex_revoked(const struct weave_rwmutex *rw, int64_t start_ns);
int ftw_rwmutex_bias_allowed(const struct weave_rwmutex *rw);

/* contention_profile.c: stacks outside the library and the write at exit
 * (Diagnostics/ContentionProfile.cs). */
int ftw_profile_stack(uintptr_t *pcs, int max);
void ftw_profile_warm_up(void);
int ftw_profile_in_library(uintptr_t pc);
int ftw_profile_at_exit(void (*writer)(void));

/* critical_section.c: debug mode's switch for the sections' begins. */
void ftw_debug_sections_set(int on);

/* park_spin.c: the calling thread's poll budget (Parking/ParkSpin.cs). */
int *ftw_park_budget(void);

#pragma GCC visibility pop

#endif
