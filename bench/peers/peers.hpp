// Bench peers: one small adapter per lock, all with the same shape, so that
// every scenario in lockbench.cpp runs the same loop for every peer.
//
// Each adapter is called the way its users call it: ft_weave through the
// header's inline fast path (and, separately, through its exported symbol),
// pthread through libc calls, std:: and absl:: through their own headers, and
// Rust parking_lot through one FFI call per operation (the staticlib in
// rust_parking_lot/; its Rust-native loops are reported beside it).
#pragma once

#include <ft_weave.h>

#include <absl/synchronization/mutex.h>
#include <absl/synchronization/notification.h>
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>

extern "C" {
// bench/peers/rust_parking_lot/src/lib.rs
struct ftw_pl_mutex;
struct ftw_pl_rwlock;
ftw_pl_mutex *ftw_pl_mutex_new(void);
void ftw_pl_mutex_free(ftw_pl_mutex *m);
void ftw_pl_mutex_lock(const ftw_pl_mutex *m);
void ftw_pl_mutex_unlock(const ftw_pl_mutex *m);
ftw_pl_rwlock *ftw_pl_rwlock_new(void);
void ftw_pl_rwlock_free(ftw_pl_rwlock *rw);
void ftw_pl_rwlock_read_lock(const ftw_pl_rwlock *rw);
void ftw_pl_rwlock_read_unlock(const ftw_pl_rwlock *rw);
void ftw_pl_rwlock_write_lock(const ftw_pl_rwlock *rw);
void ftw_pl_rwlock_write_unlock(const ftw_pl_rwlock *rw);
uint64_t ftw_pl_native_uncontended(uint64_t iters);
uint64_t ftw_pl_native_contended(uint32_t threads, uint32_t duration_ms, uint32_t work_in, uint32_t work_out,
                                 uint64_t *counts);
// The two ping-pongs return the median nanoseconds of one round trip.
uint64_t ftw_pl_native_cond_pingpong(uint32_t rounds);
uint64_t ftw_pl_native_park_pingpong(uint32_t rounds);
}

namespace peers {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// ---- Mutexes: lock() / unlock() ------------------------------------------

// The uncontended physical floor: the same two CASes as ft_weave's inline
// fast path (lock 0 -> 1, unlock 1 -> 0) and nothing else. Spins with
// pause, then sched_yield; only used uncontended.
struct SpinPair {
  static constexpr const char *name = "CAS spin-pair";
  uint8_t v = 0;
  void lock() {
    uint8_t expected = 0;
    int spins = 0;
    while (!__atomic_compare_exchange_n(&v, &expected, (uint8_t)1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      expected = 0;
      if (++spins < 100) {
        cpu_relax();
      } else {
        sched_yield();
      }
    }
  }
  void unlock() {
    uint8_t expected = 1;
    __atomic_compare_exchange_n(&v, &expected, (uint8_t)0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  }
};

// The floor of any lock with an atomic acquire: SpinPair's CAS lock and a
// plain release-store unlock (no waiter to look for: it only spins).
struct SpinStorePair : SpinPair {
  static constexpr const char *name = "CAS+store spin-pair";
  void unlock() { __atomic_store_n(&v, (uint8_t)0, __ATOMIC_RELEASE); }
};

struct Weave {
  static constexpr const char *name = "ft_weave";
  weave_mutex_t m{};
  void lock() { weave_mutex_lock(&m); }
  void unlock() { weave_mutex_unlock(&m); }
};

// ft_weave through its exported copies of the inline functions (what an FFI
// without the header gets: ctypes, Rust, C#), found with dlsym.
struct WeaveExported {
  static constexpr const char *name = "ft_weave (exported call)";
  using lock_fn = void (*)(weave_mutex_t *);
  using unlock_fn = int (*)(weave_mutex_t *);
  static lock_fn lock_ptr() {
    static lock_fn f = reinterpret_cast<lock_fn>(dlsym(RTLD_DEFAULT, "weave_mutex_lock"));
    return f;
  }
  static unlock_fn unlock_ptr() {
    static unlock_fn f = reinterpret_cast<unlock_fn>(dlsym(RTLD_DEFAULT, "weave_mutex_unlock"));
    return f;
  }
  weave_mutex_t m{};
  lock_fn l = lock_ptr();
  unlock_fn u = unlock_ptr();
  WeaveExported() {
    if (l == nullptr || u == nullptr) {
      std::fprintf(stderr, "lockbench: weave_mutex_lock/unlock not exported\n");
      std::exit(2);
    }
  }
  void lock() { l(&m); }
  void unlock() { u(&m); }
};

template <int Kind>
struct PthreadMutexT {
  pthread_mutex_t m;
  PthreadMutexT() {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, Kind);
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
  }
  ~PthreadMutexT() { pthread_mutex_destroy(&m); }
  void lock() { pthread_mutex_lock(&m); }
  void unlock() { pthread_mutex_unlock(&m); }
};
struct PthreadMutex : PthreadMutexT<PTHREAD_MUTEX_NORMAL> {
  static constexpr const char *name = "pthread_mutex";
};
struct PthreadAdaptive : PthreadMutexT<PTHREAD_MUTEX_ADAPTIVE_NP> {
  static constexpr const char *name = "pthread_mutex adaptive";
};

struct StdMutex {
  static constexpr const char *name = "std::mutex";
  std::mutex m;
  void lock() { m.lock(); }
  void unlock() { m.unlock(); }
};

struct StdSharedMutex {
  static constexpr const char *name = "std::shared_mutex";
  std::shared_mutex m;
  void lock() { m.lock(); }
  void unlock() { m.unlock(); }
  void rlock() { m.lock_shared(); }
  void runlock() { m.unlock_shared(); }
};

struct Absl {
  static constexpr const char *name = "absl::Mutex";
  absl::Mutex m;
  void lock() { m.Lock(); }
  void unlock() { m.Unlock(); }
  void rlock() { m.ReaderLock(); }
  void runlock() { m.ReaderUnlock(); }
};

struct ParkingLotFfi {
  static constexpr const char *name = "parking_lot (FFI)";
  ftw_pl_mutex *m = ftw_pl_mutex_new();
  ~ParkingLotFfi() { ftw_pl_mutex_free(m); }
  void lock() { ftw_pl_mutex_lock(m); }
  void unlock() { ftw_pl_mutex_unlock(m); }
};

// ---- RW locks: rlock() / runlock() / lock() / unlock() --------------------

struct WeaveRW {
  static constexpr const char *name = "ft_weave";
  weave_rwmutex_t m{};
  void lock() { weave_rwmutex_lock(&m); }
  void unlock() { weave_rwmutex_unlock(&m); }
  void rlock() { weave_rwmutex_rlock(&m); }
  void runlock() { weave_rwmutex_runlock(&m); }
};

struct PthreadRW {
  static constexpr const char *name = "pthread_rwlock";
  pthread_rwlock_t m = PTHREAD_RWLOCK_INITIALIZER;
  ~PthreadRW() { pthread_rwlock_destroy(&m); }
  void lock() { pthread_rwlock_wrlock(&m); }
  void unlock() { pthread_rwlock_unlock(&m); }
  void rlock() { pthread_rwlock_rdlock(&m); }
  void runlock() { pthread_rwlock_unlock(&m); }
};

struct ParkingLotRWFfi {
  static constexpr const char *name = "parking_lot (FFI)";
  ftw_pl_rwlock *m = ftw_pl_rwlock_new();
  ~ParkingLotRWFfi() { ftw_pl_rwlock_free(m); }
  void lock() { ftw_pl_rwlock_write_lock(m); }
  void unlock() { ftw_pl_rwlock_write_unlock(m); }
  void rlock() { ftw_pl_rwlock_read_lock(m); }
  void runlock() { ftw_pl_rwlock_read_unlock(m); }
};

// ---- Park / unpark on one 32-bit word -----------------------------------

inline long futex(uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, addr, op, val, nullptr, nullptr, 0);
}

// wait_while(addr, value): sleep while *addr == value (may return early);
// wake(addr): wake one sleeper.
struct WeavePark {
  static constexpr const char *name = "ft_weave";
  static void wait_while(uint32_t *addr, uint32_t value) {
    weave_park(addr, &value, sizeof value, -1, nullptr, 0);
  }
  static void wake(uint32_t *addr) { weave_unpark(addr, nullptr, nullptr); }
  static void wake_all(uint32_t *addr) { weave_unpark_all(addr); }
};

struct FutexPark {
  static constexpr const char *name = "raw futex";
  static void wait_while(uint32_t *addr, uint32_t value) { futex(addr, FUTEX_WAIT_PRIVATE, value); }
  static void wake(uint32_t *addr) { futex(addr, FUTEX_WAKE_PRIVATE, 1); }
  static void wake_all(uint32_t *addr) { futex(addr, FUTEX_WAKE_PRIVATE, INT32_MAX); }
};

// ---- One-shot events: wait() / notify() -----------------------------------

struct WeaveEvent {
  static constexpr const char *name = "ft_weave";
  weave_event_t e{};
  void wait() { weave_event_wait(&e); }
  void notify() { weave_event_notify(&e); }
};

// What a C programmer writes without a library: a flag word and a futex.
struct FutexEvent {
  static constexpr const char *name = "raw futex";
  uint32_t v = 0;
  void wait() {
    while (__atomic_load_n(&v, __ATOMIC_ACQUIRE) == 0) {
      futex(&v, FUTEX_WAIT_PRIVATE, 0);
    }
  }
  void notify() {
    __atomic_store_n(&v, 1, __ATOMIC_RELEASE);
    futex(&v, FUTEX_WAKE_PRIVATE, INT32_MAX);
  }
};

struct PthreadEvent {
  static constexpr const char *name = "pthread_cond";
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  bool set = false;
  void wait() {
    pthread_mutex_lock(&m);
    while (!set) {
      pthread_cond_wait(&c, &m);
    }
    pthread_mutex_unlock(&m);
  }
  void notify() {
    pthread_mutex_lock(&m);
    set = true;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
  }
};

struct AbslEvent {
  static constexpr const char *name = "absl::Notification";
  absl::Notification n;
  void wait() { n.WaitForNotification(); }
  void notify() { n.Notify(); }
};

// ---- Mutex + condition variable: lock() / unlock() / wait() / signal() ---

struct WeaveCond {
  static constexpr const char *name = "ft_weave";
  weave_mutex_t m{};
  weave_cond_t c{};
  void lock() { weave_mutex_lock(&m); }
  void unlock() { weave_mutex_unlock(&m); }
  void wait() { weave_cond_wait(&c, &m, -1); }
  void signal() { weave_cond_signal(&c); }
};

struct PthreadCond {
  static constexpr const char *name = "pthread_cond";
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  void lock() { pthread_mutex_lock(&m); }
  void unlock() { pthread_mutex_unlock(&m); }
  void wait() { pthread_cond_wait(&c, &m); }
  void signal() { pthread_cond_signal(&c); }
};

struct StdCond {
  static constexpr const char *name = "std::condition_variable";
  std::mutex m;
  std::condition_variable c;
  void lock() { m.lock(); }
  void unlock() { m.unlock(); }
  void wait() {
    std::unique_lock<std::mutex> held(m, std::adopt_lock);
    c.wait(held);
    held.release();
  }
  void signal() { c.notify_one(); }
};

struct AbslCond {
  static constexpr const char *name = "absl::CondVar";
  absl::Mutex m;
  absl::CondVar c;
  void lock() { m.Lock(); }
  void unlock() { m.Unlock(); }
  void wait() { c.Wait(&m); }
  void signal() { c.Signal(); }
};

}  // namespace peers
