/*
 * Thread exit ordering between the .NET runtime and everything else.
 *
 * Linked into libft_weave.so (see CMakeLists.txt and FtWeave.csproj). The
 * NativeAOT runtime detaches a thread from a pthread key destructor that it
 * creates when it initialises (on the library's first call). After that
 * detach the thread may never run managed code again: the runtime ends the
 * process on the next reverse P/Invoke. glibc runs key destructors in passes,
 * in key-index order, so every key created after the runtime's (every
 * wvls_key_create key, every key a program creates after its first ft_weave
 * call) used to run after the detach and could not call the library.
 *
 * The library is linked with -Wl,--wrap=pthread_key_create: the runtime's
 * call reaches __wrap_pthread_key_create below, which gives it a key whose
 * destructor is ours (ftw_runtime_key_destructor), reserved when the library
 * is loaded. Our destructor defers the detach by one pass: in the thread's
 * first destructor pass it puts the value back (so glibc runs another pass)
 * and returns; in the next it tears down the thread's ft_weave context (its
 * thread-exit destructors and storage values, in managed code, while the
 * thread is still attached) and then calls the runtime's own destructor.
 * Every pthread key destructor's first run therefore happens while the
 * thread can still call every export, whatever the keys' order.
 *
 * Why one pass and not until the last (PTHREAD_DESTRUCTOR_ITERATIONS):
 * glibc gives no way to learn which pass is running, and a value put back
 * during the last pass is dropped, which would leave the runtime with a dead
 * thread it never detached (a crash at the next garbage collection). The
 * first call of our destructor is in pass 0 unless the thread's first-ever
 * ft_weave call was made from a key destructor; deferring once is wrong only
 * if that first call happened in glibc's third or fourth pass, which needs a
 * destructor that re-armed its own key twice before first calling us.
 * docs/thread_exit.md states the rule.
 *
 * Nothing here runs managed code except through the teardown callback that
 * the C# side installs, and only on a thread the runtime still has attached.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "ftw_native.h"

/* Keys reserved at load, so that a process that later uses up its
 * PTHREAD_KEYS_MAX keys cannot make the library's first call fail. */
static pthread_key_t runtime_key;
static pthread_key_t context_key;
static atomic_int runtime_key_state; /* 0 none, 1 reserved, 2 handed to the runtime */
static atomic_int context_key_ready;

/* The runtime's RuntimeThreadShutdown, run after our deferral. */
static void (*_Atomic runtime_destructor)(void *);

/* Set once by C# (ftw_set_thread_teardown): tears down the calling thread's
 * ft_weave context. Runs in managed code on a still-attached thread. */
static void (*_Atomic thread_teardown)(void);

/* How many times glibc has called our destructor on this thread. */
static __thread unsigned char detach_calls;

static void ftw_runtime_key_destructor(void *thread);
static void ftw_context_key_destructor(void *context);

/*
 * The main thread is the one whose kernel tid is the process id. Asking the
 * kernel costs two system calls (gettid, getpid), which every thread paid
 * twice (on its context's creation and in its exit hook): about 4 of the 7
 * system calls ft_weave added to a thread's life (bench/ churn scenario).
 * Once the main thread is known, pthread_self() of the main thread names it
 * for the rest of the process: its descriptor lives in the initial TLS block
 * and is never freed, so no other thread can ever get an equal pthread_t.
 * It is learned when the library is loaded on the main thread (the usual
 * case), or else on the main thread's first call; a fork child's main thread
 * is the thread that forked (its tid is the child's pid), set by the atfork
 * child handler (glibc's _Fork runs no handlers, but its child may only
 * call async-signal-safe functions until it execs, which excludes this
 * library). Only the main thread ever stores main_self (and the forking
 * thread in a child, which has no other thread), so there is one writer.
 */
static pthread_t main_self;
static atomic_int main_self_known;
/* 1 if the atfork handler could not be registered: then a fork child could
 * not learn its main thread, so the kernel is asked every time. */
static int main_self_disabled;

int ftw_is_main_thread(void) {
  /* Acquire: pairs with the release below, so main_self is the stored one. */
  if (atomic_load_explicit(&main_self_known, memory_order_acquire)) {
    return pthread_equal(pthread_self(), main_self);
  }
  if (gettid() != getpid()) {
    return 0;
  }
  if (!main_self_disabled) {
    main_self = pthread_self();
    atomic_store_explicit(&main_self_known, 1, memory_order_release);
  }
  return 1;
}

static void ftw_main_thread_after_fork(void) {
  /* The child's only thread: its tid is the child's pid. */
  main_self = pthread_self();
  atomic_store_explicit(&main_self_known, 1, memory_order_release);
}

__attribute__((constructor)) static void ftw_reserve_keys(void) {
  if (__real_pthread_key_create(&runtime_key, ftw_runtime_key_destructor) == 0) {
    atomic_store_explicit(&runtime_key_state, 1, memory_order_release);
  }
  if (__real_pthread_key_create(&context_key, ftw_context_key_destructor) == 0) {
    atomic_store_explicit(&context_key_ready, 1, memory_order_release);
  }
  ftw_process_exit_init();
  /* Learn the main thread now if this is it (see ftw_is_main_thread). */
  if (pthread_atfork(NULL, NULL, ftw_main_thread_after_fork) != 0) {
    main_self_disabled = 1;
  }
  (void)ftw_is_main_thread();
}

/*
 * The only pthread_key_create calls that reach this wrapper come from code
 * linked statically into the library: the runtime's initialisation (one key,
 * with its detach destructor) and anything else in its static libraries
 * (passed through). The library's own C# and C code call the real function
 * (Interop.Pthread.cs, ftw_native.h). The runtime initialises once, before
 * any C# code runs, so the first call with a destructor is the runtime's.
 */
int __wrap_pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
  if (destructor != NULL && atomic_load(&runtime_destructor) == NULL) {
    int expected = 1;
    if (atomic_compare_exchange_strong(&runtime_key_state, &expected, 2)) {
      *key = runtime_key;
    } else if (expected == 0) {
      /* Nothing was reserved at load (the process had no keys left then):
       * try now, still with our destructor in front of the runtime's. */
      int rc = __real_pthread_key_create(&runtime_key, ftw_runtime_key_destructor);
      if (rc != 0) {
        return rc;
      }
      atomic_store(&runtime_key_state, 2);
      *key = runtime_key;
    } else {
      return __real_pthread_key_create(key, destructor);
    }
    /* Release: a thread exiting later reads it after the runtime attached it,
     * which happens after this initialisation returned. */
    atomic_store_explicit(&runtime_destructor, destructor, memory_order_release);
    return 0;
  }
  return __real_pthread_key_create(key, destructor);
}

static void ftw_runtime_key_destructor(void *thread) {
  /* glibc cleared the slot before calling us. Putting the value back makes
   * glibc run one more pass (the set marks the thread's keys as used), in
   * which we are called again after every key destructor of this pass ran. */
  if (detach_calls++ == 0 && pthread_setspecific(runtime_key, thread) == 0) {
    return;
  }
  void (*teardown)(void) = atomic_load_explicit(&thread_teardown, memory_order_acquire);
  if (teardown != NULL && ftw_thread_has_context()) {
    teardown();
  }
  if (ftw_is_main_thread()) {
    /* main() called pthread_exit: the runtime's own threads must not keep the
     * process alive once the program's last thread is gone. */
    ftw_main_thread_exiting();
  }
  void (*detach)(void *) = atomic_load_explicit(&runtime_destructor, memory_order_acquire);
  if (detach != NULL) {
    detach(thread);
  }
}

/*
 * glibc clears every key's slot when its pass reaches it, destructor or not.
 * The context must survive until the runtime key's destructor tears it down
 * (one pass after that destructor's first call), so it is put back each time;
 * the teardown leaves the "torn down" marker (1), which is let go. Putting it
 * back is wrong only in glibc's last pass, the same rare case as above.
 */
static void ftw_context_key_destructor(void *context) {
  if ((uintptr_t)context > 1) {
    pthread_setspecific(context_key, context);
  }
}

int ftw_context_key(uint32_t *key) {
  if (!atomic_load_explicit(&context_key_ready, memory_order_acquire)) {
    return ENOSPC;
  }
  *key = (uint32_t)context_key;
  return 0;
}

void ftw_set_thread_teardown(void (*teardown)(void)) {
  atomic_store_explicit(&thread_teardown, teardown, memory_order_release);
}

int ftw_thread_has_context(void) {
  if (!atomic_load_explicit(&context_key_ready, memory_order_acquire)) {
    return 0;
  }
  uintptr_t value = (uintptr_t)pthread_getspecific(context_key);
  /* 1 is the C# side's "torn down" marker (ThreadContexts.TornDown). */
  return value > 1;
}

