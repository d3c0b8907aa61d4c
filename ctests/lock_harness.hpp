// One stress harness for every lock kind, in the style of WebKit's
// Tools/TestWebKitAPI/Tests/WTF/Lock.cpp (runLockTest): `groups` locks, each
// protecting one counter; `threads` native threads per group; each thread
// takes its group's lock `iterations` times and increments the counter `work`
// times inside. At the end every counter must be exact and every lock word
// must be back to zero (no stray has-parked bit, no leftover waiter pointer).
//
// The locks of all groups sit next to each other in one array, so one-byte
// locks share cache lines and neighbouring parking-lot keys (which bucket an
// address lands in cannot be chosen from C; adjacent addresses are the
// closest we can get to "address collision").
//
// Adding a lock kind: specialise ftw_test::lock_traits<T> with lock(),
// unlock() (returns 0 on success), is_reset() and a name, then instantiate the
// named cases with FTW_LOCK_HARNESS_CASES. For example, for the RW mutex
// (write side) and the recursive mutex, once their exports exist:
//
//   template <> struct lock_traits<weave_rwmutex_t> {
//     static constexpr const char *name = "weave_rwmutex_t (write)";
//     static void lock(weave_rwmutex_t *l) { weave_rwmutex_lock(l); }
//     static int unlock(weave_rwmutex_t *l) { return weave_rwmutex_unlock(l); }
//     static bool is_reset(const weave_rwmutex_t *l) {
//       return __atomic_load_n(&l->bits, __ATOMIC_ACQUIRE) == 0;
//     }
//   };
//   template <> struct lock_traits<weave_recursive_mutex_t> {
//     static constexpr const char *name = "weave_recursive_mutex_t";
//     static void lock(weave_recursive_mutex_t *l) { weave_recursive_mutex_lock(l); }
//     static int unlock(weave_recursive_mutex_t *l) { return weave_recursive_mutex_unlock(l); }
//     static bool is_reset(const weave_recursive_mutex_t *l) {
//       return mutex_state(l->mutex) == 0 && l->thread == 0 && l->level == 0;
//     }
//   };
//   FTW_LOCK_HARNESS_CASES(weave_rwmutex_t, "[rwmutex]")
//
// Catch2 assertions are not thread-safe, so worker threads only count; the
// checks run on the calling thread after every worker has been joined.
#pragma once

#include "test_util.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ftw_test {

template <class L>
struct lock_traits;  // specialised per lock kind

template <>
struct lock_traits<weave_mutex_t> {
  static constexpr const char *name = "weave_mutex_t";
  static void lock(weave_mutex_t *l) { weave_mutex_lock(l); }
  static int unlock(weave_mutex_t *l) { return weave_mutex_unlock(l); }
  static bool is_reset(const weave_mutex_t *l) {
    return mutex_state(*l) == 0;
  }
};

template <>
struct lock_traits<weave_raw_mutex_t> {
  static constexpr const char *name = "weave_raw_mutex_t";
  static void lock(weave_raw_mutex_t *l) { weave_raw_mutex_lock(l); }
  static int unlock(weave_raw_mutex_t *l) { return weave_raw_mutex_unlock(l); }
  static bool is_reset(const weave_raw_mutex_t *l) {
    return __atomic_load_n(&l->v, __ATOMIC_ACQUIRE) == 0;
  }
};

struct harness_params {
  unsigned groups;
  unsigned threads;     // per group
  unsigned work;        // counter increments inside each critical section
  unsigned iterations;  // lock/unlock pairs per thread
};

struct harness_result {
  std::vector<uint64_t> counters;
  uint64_t expected_per_group = 0;
  unsigned unlock_errors = 0;   // unlock() returned non-zero
  unsigned words_not_reset = 0; // locks whose word was not zero at the end
  unsigned thread_create_failures = 0;
};

namespace detail {

// A start line: every thread waits here so that contention starts at once
// instead of the first thread finishing before the last is created.
struct start_gate {
  std::atomic<unsigned> arrived{0};
  std::atomic<bool> open{false};
  void wait() {
    arrived.fetch_add(1);
    while (!open.load(std::memory_order_acquire)) {
      sched_yield();
    }
  }
};

template <class L>
struct harness_shared {
  L *locks;
  // volatile: each increment is a real load and store inside the critical
  // section, which a missing mutual exclusion makes lose updates.
  volatile uint64_t *counters;
  harness_params p;
  start_gate gate;
  std::atomic<unsigned> unlock_errors{0};
};

template <class L>
struct harness_thread_arg {
  harness_shared<L> *shared;
  unsigned group;
};

template <class L>
void *harness_thread(void *raw) {
  auto *arg = static_cast<harness_thread_arg<L> *>(raw);
  harness_shared<L> *s = arg->shared;
  L *lock = &s->locks[arg->group];
  volatile uint64_t *counter = &s->counters[arg->group];
  unsigned errors = 0;
  s->gate.wait();
  for (unsigned i = 0; i < s->p.iterations; i++) {
    lock_traits<L>::lock(lock);
    for (unsigned j = 0; j < s->p.work; j++) {
      *counter = *counter + 1;
    }
    if (lock_traits<L>::unlock(lock) != 0) {
      errors++;
    }
  }
  if (errors != 0) {
    s->unlock_errors.fetch_add(errors);
  }
  return nullptr;
}

}  // namespace detail

// Runs one configuration and returns what happened; check_lock_harness()
// turns it into Catch2 assertions.
template <class L>
harness_result run_lock_harness(harness_params p) {
  std::unique_ptr<L[]> locks(new L[p.groups]());  // value-initialised: all zero
  std::unique_ptr<uint64_t[]> counters(new uint64_t[p.groups]());
  detail::harness_shared<L> shared;
  shared.locks = locks.get();
  shared.counters = counters.get();
  shared.p = p;

  const unsigned total = p.groups * p.threads;
  std::vector<detail::harness_thread_arg<L>> args(total);
  std::vector<pthread_t> threads;
  threads.reserve(total);
  harness_result r;
  for (unsigned g = 0; g < p.groups; g++) {
    for (unsigned t = 0; t < p.threads; t++) {
      auto &a = args[g * p.threads + t];
      a.shared = &shared;
      a.group = g;
      pthread_t tid;
      if (pthread_create(&tid, nullptr, detail::harness_thread<L>, &a) == 0) {
        threads.push_back(tid);
      } else {
        r.thread_create_failures++;
      }
    }
  }
  while (shared.gate.arrived.load() != threads.size()) {
    sched_yield();
  }
  shared.gate.open.store(true, std::memory_order_release);
  for (pthread_t t : threads) {
    pthread_join(t, nullptr);
  }

  r.expected_per_group = uint64_t(p.threads) * p.iterations * p.work;
  r.counters.assign(counters.get(), counters.get() + p.groups);
  r.unlock_errors = shared.unlock_errors.load();
  // Every thread has returned, so no waiter can remain: the word must be
  // exactly zero, not merely "unlocked" (a stale has-parked bit or waiter
  // pointer would send every later unlock down the slow path, or worse).
  for (unsigned g = 0; g < p.groups; g++) {
    if (!lock_traits<L>::is_reset(&locks[g])) {
      r.words_not_reset++;
    }
  }
  return r;
}

template <class L>
void check_lock_harness(harness_params p) {
  INFO(lock_traits<L>::name << ": " << p.groups << " groups x " << p.threads << " threads, work "
                            << p.work << ", " << p.iterations << " iterations");
  harness_result r = run_lock_harness<L>(p);
  REQUIRE(r.thread_create_failures == 0);
  CHECK(r.unlock_errors == 0);
  CHECK(r.words_not_reset == 0);
  for (unsigned g = 0; g < p.groups; g++) {
    INFO("group " << g);
    CHECK(r.counters[g] == r.expected_per_group);
  }
}

// The named cases. Sizes keep each case well under 2 s on a loaded 2-core
// machine (the parameters are WebKit's shapes, scaled down).
constexpr harness_params kContendedShort{1, 8, 1, 20000};
constexpr harness_params kContendedLong{1, 4, 2000, 1000};
constexpr harness_params kUncontended{1, 1, 1, 1000000};
constexpr harness_params kManyGroups{8, 4, 10, 5000};
// 32 adjacent locks (32 bytes for a one-byte mutex), two threads each.
constexpr harness_params kAddressCollision{32, 2, 100, 1000};

}  // namespace ftw_test

// Defines the five named harness cases for lock kind L; tag is a Catch2 tag.
#define FTW_LOCK_HARNESS_CASES(L, tag)                                                        \
  TEST_CASE(#L " harness: contended-short", tag "[harness]") {                                \
    ftw_test::check_lock_harness<L>(ftw_test::kContendedShort);                               \
  }                                                                                           \
  TEST_CASE(#L " harness: contended-long", tag "[harness]") {                                 \
    ftw_test::check_lock_harness<L>(ftw_test::kContendedLong);                                \
  }                                                                                           \
  TEST_CASE(#L " harness: uncontended", tag "[harness]") {                                    \
    ftw_test::check_lock_harness<L>(ftw_test::kUncontended);                                  \
  }                                                                                           \
  TEST_CASE(#L " harness: many-groups", tag "[harness]") {                                    \
    ftw_test::check_lock_harness<L>(ftw_test::kManyGroups);                                   \
  }                                                                                           \
  TEST_CASE(#L " harness: address-collision (adjacent locks in one array)", tag "[harness]") { \
    ftw_test::check_lock_harness<L>(ftw_test::kAddressCollision);                             \
  }
