// Faults: fork while other threads hold and wait on every kind of lock and
// use the storage registry; pthread_cancel of threads blocked in the library.
//
// Related cases elsewhere (see docs/reliability.md): fork with parked threads
// and a held mutex (test_parking_lot.cpp), a fork child running destructor
// threads (test_thread_destructors.cpp), seqlock after_fork (test_seqlock.cpp),
// destructors that register and unregister destructors
// (test_thread_destructors.cpp).
#include "test_util.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;
using ftw_test::sleep_ms;
using ftw_test::stats;
using ftw_test::kPauseAllocatorsAroundFork;
using ftw_test::wait_child;
using ftw_test::wait_until;

namespace {


bool wait_parks(uint64_t base, uint64_t n) {
  return wait_until([&] { return stats().parks >= base + n; });
}


// ---- fork while locks are held and waited on --------------------------------

struct locks_in_use {
  weave_mutex_t mutex = {0};             // held by one thread, two more parked on it
  weave_rwmutex_t rw = {0};              // read-held by two threads, a writer parked
  weave_recursive_mutex_t recursive = {};  // held twice by one thread, one waiter
  weave_raw_mutex_t raw = {0};           // held, one waiter on its in-word stack
  weave_event_t event = {0};             // three waiters
  weave_cond_t cond = {0};               // two waiters (with cond_mutex)
  weave_mutex_t cond_mutex = {0};
  weave_seqlock_t seq = {0};             // a write in progress
  std::atomic<int> cond_flag{0};
  std::atomic<int> release{0};
  std::atomic<int> holding{0};
  std::atomic<int> storage_stop{0};
  std::atomic<int> storage_pause{0};   // see kPauseAllocatorsAroundFork
  std::atomic<int> storage_paused{0};
  std::atomic<uint64_t> storage_ops{0};
};

// What a child checks after fork. Returns 0 or the number of the first
// failed step (the exit status the parent reports).
int child_uses_library(locks_in_use *s) {
  // Memory copied from the parent still says "held, waiters parked", by
  // threads that do not exist here.
  if (!weave_mutex_is_locked(&s->mutex)) return 10;
  if ((s->rw.bits >> WEAVE_RWMUTEX_READER_SHIFT) != 2) return 11;
  // The atfork handler has reset the lot; calling it again is harmless.
  weave_parking_lot_after_fork();
  // Storage: existing keys, new keys (the registry lock may have been taken by
  // a parent thread at the moment of fork), statics and per-thread values.
  long *counter = static_cast<long *>(weave_static_get("faults.fork:static", sizeof(long), nullptr, nullptr));
  if (counter == nullptr) return 12;
  for (int k = 0; k < 200; ++k) {
    std::string key = "faults.fork:child." + std::to_string(k);
    if (weave_tls_get(key.c_str(), 16, nullptr, nullptr) == nullptr) return 13;
    if (weave_static_get(("s" + key).c_str(), 16, nullptr, nullptr) == nullptr) return 14;
  }
  // Keys the parent's storage threads were creating and initialising at the
  // moment of fork (one may have been half-registered or mid-init).
  for (int u = 0; u < 2; ++u) {
    for (int k = 0; k < 50; ++k) {
      std::string key = "faults.fork:parent." + std::to_string(u) + "." + std::to_string(k);
      if (weave_tls_get(key.c_str(), 8, nullptr, nullptr) == nullptr) return 24;
      if (weave_static_get(("s" + key).c_str(), 8, nullptr, nullptr) == nullptr) return 25;
    }
  }
  // Locks the parent's threads held: the child takes them over the way
  // CPython's _PyMutex_at_fork_reinit does, by resetting the words.
  set_mutex_state(s->mutex, 0);
  s->rw.bits = 0;
  s->recursive = weave_recursive_mutex_t{};
  s->raw.v = 0;
  set_mutex_state(s->cond_mutex, 0);
  s->cond.v = 0;
  if (weave_seqlock_after_fork(&s->seq) != 1) return 15;
  // Fresh and reset locks work, also contended, from new threads.
  weave_mutex_t fresh = {0};
  weave_event_t done = {0};
  long total = 0;
  std::atomic<int> ready{0};
  std::vector<pthread_t> threads(4);
  struct ctx {
    locks_in_use *s;
    weave_mutex_t *fresh;
    long *total;
    std::atomic<int> *ready;
    weave_event_t *done;
  } c{s, &fresh, &total, &ready, &done};
  for (auto &t : threads) {
    if (pthread_create(
            &t, nullptr,
            [](void *p) -> void * {
              auto *c = static_cast<ctx *>(p);
              (*c->ready)++;
              weave_event_wait(c->done);
              for (int k = 0; k < 1000; ++k) {
                weave_mutex_lock(&c->s->mutex);
                weave_mutex_lock(c->fresh);
                weave_rwmutex_lock(&c->s->rw);
                weave_recursive_mutex_lock(&c->s->recursive);
                weave_recursive_mutex_lock(&c->s->recursive);
                weave_raw_mutex_lock(&c->s->raw);
                ++*c->total;
                weave_raw_mutex_unlock(&c->s->raw);
                weave_recursive_mutex_unlock(&c->s->recursive);
                weave_recursive_mutex_unlock(&c->s->recursive);
                weave_rwmutex_unlock(&c->s->rw);
                weave_mutex_unlock(c->fresh);
                weave_mutex_unlock(&c->s->mutex);
              }
              return nullptr;
            },
            &c) != 0) {
      return 16;
    }
  }
  while (ready.load() < 4) sched_yield();
  weave_event_notify(&done);  // the waiters park or see it set
  for (auto &t : threads) pthread_join(t, nullptr);
  if (total != 4000) return 17;
  if (mutex_state(s->mutex) != 0 || mutex_state(fresh) != 0 || s->rw.bits != 0 || s->raw.v != 0) return 18;
  // A condition variable and an event from scratch.
  weave_mutex_lock(&s->cond_mutex);
  if (weave_cond_wait(&s->cond, &s->cond_mutex, 1000000) != 0) return 19;  // 1 ms: times out
  weave_mutex_unlock(&s->cond_mutex);
  weave_event_t e2 = {0};
  if (weave_event_wait_timed(&e2, 1000000, 1) != 0) return 20;
  weave_event_notify(&e2);
  if (weave_event_wait_timed(&e2, -1, 1) != 1) return 21;
  // The parent's event waiters are not here to be woken.
  if (weave_unpark_all(&s->event) != 0) return 22;
  // Seqlock usable again.
  weave_seqlock_lock_write(&s->seq);
  weave_seqlock_unlock_write(&s->seq);
  if (s->seq.sequence % 2 != 0) return 23;
  ++*counter;
  return 0;
}

}  // namespace

TEST_CASE("fork while threads hold and wait on every lock kind and use storage: the child can use the library") {
  auto s = std::make_unique<locks_in_use>();
  locks_in_use &st = *s;
  REQUIRE(weave_static_get("faults.fork:static", sizeof(long), nullptr, nullptr) != nullptr);
  uint64_t parks = stats().parks;
  std::vector<std::unique_ptr<native_thread>> threads;
  auto spawn = [&](std::function<void()> fn) { threads.push_back(std::make_unique<native_thread>(std::move(fn))); };

  // Holders.
  spawn([&] {
    weave_mutex_lock(&st.mutex);
    weave_recursive_mutex_lock(&st.recursive);
    weave_recursive_mutex_lock(&st.recursive);
    weave_raw_mutex_lock(&st.raw);
    weave_seqlock_lock_write(&st.seq);
    st.holding++;
    while (st.release.load() == 0) sleep_ms(1);
    weave_seqlock_unlock_write(&st.seq);
    weave_raw_mutex_unlock(&st.raw);
    weave_recursive_mutex_unlock(&st.recursive);
    weave_recursive_mutex_unlock(&st.recursive);
    weave_mutex_unlock(&st.mutex);
  });
  for (int r = 0; r < 2; ++r) {
    spawn([&] {
      weave_rwmutex_rlock(&st.rw);
      st.holding++;
      while (st.release.load() == 0) sleep_ms(1);
      weave_rwmutex_runlock(&st.rw);
    });
  }
  REQUIRE(wait_until([&] { return st.holding.load() == 3; }));

  // Waiters: 2 on the mutex, 1 writer on the RW mutex, 1 on the recursive
  // mutex, 3 on the event, 2 on the condition (parks counted); 1 on the raw
  // mutex (not a parking-lot wait).
  for (int w = 0; w < 2; ++w) spawn([&] { weave_mutex_lock(&st.mutex); weave_mutex_unlock(&st.mutex); });
  spawn([&] { weave_rwmutex_lock(&st.rw); weave_rwmutex_unlock(&st.rw); });
  spawn([&] { weave_recursive_mutex_lock(&st.recursive); weave_recursive_mutex_unlock(&st.recursive); });
  for (int w = 0; w < 3; ++w) spawn([&] { weave_event_wait(&st.event); });
  for (int w = 0; w < 2; ++w) {
    spawn([&] {
      weave_mutex_lock(&st.cond_mutex);
      while (st.cond_flag.load() == 0) weave_cond_wait(&st.cond, &st.cond_mutex, -1);
      weave_mutex_unlock(&st.cond_mutex);
    });
  }
  spawn([&] { weave_raw_mutex_lock(&st.raw); weave_raw_mutex_unlock(&st.raw); });
  REQUIRE(wait_parks(parks, 9));
  REQUIRE(wait_until([&] { return st.raw.v != WEAVE_RAW_MUTEX_LOCKED; }));  // a waiter is stacked

  // Storage users: new keys all the time, so the registry lock is often held
  // (and a static's init is often running) at the moment of a fork.
  for (int u = 0; u < 2; ++u) {
    spawn([&, u] {
      ftw_test::churn_storage_keys("faults.fork:parent." + std::to_string(u) + ".", 5000, st.storage_stop,
                                   st.storage_pause, st.storage_paused, st.storage_ops);
    });
  }
  REQUIRE(wait_until([&] { return st.storage_ops.load() > 100; }));

  // Fork a few times, from a thread that is not the main thread and from the main thread.
  std::vector<int> results;
  for (int round = 0; round < 6; ++round) {
    int status = -1;
    auto do_fork = [&] {
      pid_t pid = ftw_test::fork_quiesced();
      st.storage_pause = 0;
      if (pid == 0) _exit(child_uses_library(&st));
      status = pid < 0 ? 400 : wait_child(pid);
    };
    if (kPauseAllocatorsAroundFork) {
      st.storage_pause = 1;
      REQUIRE(wait_until([&] { return st.storage_paused.load() == 2; }));
    }
    if (round % 2 == 0) {
      native_thread(do_fork).join();
    } else {
      do_fork();
    }
    results.push_back(status);
  }
  for (size_t r = 0; r < results.size(); ++r) {
    INFO("fork round " << r << ": child status " << results[r] << " (250 = hung, 2xx = signal)");
    CHECK(results[r] == 0);
  }

  // The parent is unaffected: release everything and every waiter finishes.
  st.storage_stop = 1;
  st.release = 1;
  weave_event_notify(&st.event);
  weave_mutex_lock(&st.cond_mutex);
  st.cond_flag = 1;
  weave_cond_broadcast(&st.cond);
  weave_mutex_unlock(&st.cond_mutex);
  for (auto &t : threads) t->join();
  CHECK(mutex_state(st.mutex) == 0);
  CHECK(st.rw.bits == 0);
  CHECK(st.raw.v == 0);
  CHECK(mutex_state(st.recursive.mutex) == 0);
  CHECK(mutex_state(st.cond_mutex) == 0);
  CHECK(st.seq.sequence % 2 == 0);
}

namespace {
std::atomic<int> slow_init_entered{0};
std::atomic<int> slow_init_release{0};
int slow_init(void *storage, void *) {
  slow_init_entered = 1;
  while (slow_init_release.load() == 0) sleep_ms(1);
  *static_cast<int *>(storage) = 1;
  return 0;
}
int child_init(void *storage, void *) {
  *static_cast<int *>(storage) = 2;
  return 0;
}
}  // namespace

TEST_CASE("fork while another thread runs a static's init: the child initialises the static itself") {
  std::atomic<int *> parent_value{nullptr};
  native_thread initialiser(
      [&] { parent_value = static_cast<int *>(weave_static_get("faults.fork:slow_static", 4, slow_init, nullptr)); });
  REQUIRE(wait_until([&] { return slow_init_entered.load() == 1; }));
  pid_t pid = ftw_test::fork_quiesced();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The initialiser does not exist here: waiting for it would hang forever.
    int *v = static_cast<int *>(weave_static_get("faults.fork:slow_static", 4, child_init, nullptr));
    _exit(v == nullptr ? 1 : *v == 2 ? 0 : 2);
  }
  int status = wait_child(pid);
  slow_init_release = 1;
  initialiser.join();
  CHECK(status == 0);  // 250: the child hung waiting for the parent's initialiser
  REQUIRE(parent_value.load() != nullptr);
  CHECK(*parent_value.load() == 1);
}

// ---- pthread_cancel of a thread blocked in the library ----------------------
//
// The library's waits (futex through glibc's syscall()) are not cancellation
// points: a deferred cancel of a parked thread takes effect only after the
// wait returned, at the thread's next cancellation point. That is the safe
// behaviour: a forced unwind through NativeAOT frames is not supported.

namespace {

struct cancel_probe {
  std::atomic<int> rc{-1000};
  std::atomic<int> after_testcancel{0};  // must stay 0: cancelled there
  std::atomic<int> cleanup_ran{0};
};

void run_and_cancel_point(cancel_probe *p, const std::function<int()> &wait) {
  p->rc = wait();
  pthread_testcancel();
  p->after_testcancel = 1;
}

// A joinable raw pthread (native_thread's join discards the result we need).
struct cancellable {
  pthread_t tid{};
  std::function<void()> fn;
  explicit cancellable(std::function<void()> f) : fn(std::move(f)) {
    REQUIRE(pthread_create(
                &tid, nullptr,
                [](void *p) -> void * {
                  (*static_cast<std::function<void()> *>(p))();
                  return nullptr;
                },
                &fn) == 0);
  }
  void *join() {
    void *result = nullptr;
    REQUIRE(pthread_join(tid, &result) == 0);
    return result;
  }
};

}  // namespace

TEST_CASE("pthread_cancel of a parked thread: it is woken, leaves the lot, and is cancelled at its next cancellation point") {
  alignas(8) uint32_t word = 1;
  uint32_t expected = 1;
  cancel_probe p;
  uint64_t parks = stats().parks;
  cancellable t([&] { run_and_cancel_point(&p, [&] { return weave_park(&word, &expected, 4, -1, nullptr, 1); }); });
  REQUIRE(wait_parks(parks, 1));
  REQUIRE(pthread_cancel(t.tid) == 0);
  sleep_ms(20);
  CHECK(p.rc == -1000);  // still parked: the wait is not a cancellation point
  CHECK(weave_unpark(&word, nullptr, nullptr) == 1);
  CHECK(t.join() == PTHREAD_CANCELED);
  CHECK(p.rc == WEAVE_PARK_OK);
  CHECK(p.after_testcancel == 0);
  // Its wait entry is gone; a new waiter on the same address works.
  CHECK(weave_unpark(&word, nullptr, nullptr) == 0);
  std::atomic<int> rc2{-1000};
  parks = stats().parks;
  native_thread w2([&] { rc2 = weave_park(&word, &expected, 4, -1, nullptr, 0); });
  REQUIRE(wait_parks(parks, 1));
  CHECK(weave_unpark(&word, nullptr, nullptr) == 1);
  w2.join();
  CHECK(rc2 == WEAVE_PARK_OK);
}

TEST_CASE("pthread_cancel of a thread parked with a timeout: it times out, leaves the lot, and is cancelled") {
  alignas(8) uint64_t word = 7;
  uint64_t expected = 7;
  cancel_probe p;
  uint64_t parks = stats().parks;
  cancellable t([&] {
    run_and_cancel_point(&p, [&] { return weave_park(&word, &expected, 8, 100 * 1000000, nullptr, 0); });
  });
  REQUIRE(wait_parks(parks, 1));
  REQUIRE(pthread_cancel(t.tid) == 0);
  CHECK(t.join() == PTHREAD_CANCELED);
  CHECK(p.rc == WEAVE_PARK_TIMEOUT);
  CHECK(p.after_testcancel == 0);
  CHECK(weave_unpark(&word, nullptr, nullptr) == 0);
  CHECK(weave_unpark_all(&word) == 0);
}

TEST_CASE("pthread_cancel of threads blocked on a mutex, an event and a condition: each finishes its wait, then is cancelled") {
  weave_mutex_t m = {0};
  weave_event_t e = {0};
  weave_cond_t c = {0};
  weave_mutex_t cm = {0};
  cancel_probe pm, pe, pc;
  uint64_t parks = stats().parks;
  weave_mutex_lock(&m);
  cancellable tm([&] {
    run_and_cancel_point(&pm, [&] {
      weave_mutex_lock(&m);
      // A cancelled thread must not die holding the lock: unlock before the
      // cancellation point (as a pthread_cleanup_push handler would).
      return weave_mutex_unlock(&m);
    });
  });
  cancellable te([&] { run_and_cancel_point(&pe, [&] { return weave_event_wait_timed(&e, -1, 1); }); });
  cancellable tc([&] {
    run_and_cancel_point(&pc, [&] {
      weave_mutex_lock(&cm);
      int rc = weave_cond_wait(&c, &cm, -1);
      weave_mutex_unlock(&cm);
      return rc;
    });
  });
  REQUIRE(wait_parks(parks, 3));
  REQUIRE(pthread_cancel(tm.tid) == 0);
  REQUIRE(pthread_cancel(te.tid) == 0);
  REQUIRE(pthread_cancel(tc.tid) == 0);
  sleep_ms(20);
  CHECK(pm.rc == -1000);
  CHECK(pe.rc == -1000);
  CHECK(pc.rc == -1000);
  weave_mutex_unlock(&m);
  weave_event_notify(&e);
  weave_mutex_lock(&cm);
  weave_cond_signal(&c);
  weave_mutex_unlock(&cm);
  CHECK(tm.join() == PTHREAD_CANCELED);
  CHECK(te.join() == PTHREAD_CANCELED);
  CHECK(tc.join() == PTHREAD_CANCELED);
  CHECK(pm.rc == 0);
  CHECK(pe.rc == 1);
  CHECK(pc.rc == 1);
  CHECK(mutex_state(m) == 0);
  CHECK(mutex_state(cm) == 0);
  // Nothing of theirs is left behind: the lock words are clean, and the
  // library keeps working on these objects and on new threads.
  CHECK(weave_unpark_all(&m) == 0);
  CHECK(weave_unpark_all(&c) == 0);
  std::atomic<int> ok{0};
  native_thread([&] {
    weave_mutex_lock(&m);
    weave_mutex_lock(&cm);
    ok = weave_cond_wait(&c, &cm, 1000000) == 0;
    weave_mutex_unlock(&cm);
    weave_mutex_unlock(&m);
  }).join();
  CHECK(ok == 1);
}

TEST_CASE("a cancelled thread with destructors and storage values: its teardown still runs them") {
  static std::atomic<int> destructor_runs{0};
  static std::atomic<int> storage_destructor_runs{0};
  REQUIRE(weave_tls_set_destructor("faults.cancel:value", [](void *) { storage_destructor_runs++; }) == 0);
  alignas(8) uint32_t word = 1;
  uint32_t expected = 1;
  cancel_probe p;
  uint64_t parks = stats().parks;
  cancellable t([&] {
    static weave_local void *slot = nullptr;
    slot = &slot;
    weave_register_destructor(&slot, [](void *) { destructor_runs++; });
    weave_tls_get("faults.cancel:value", 8, nullptr, nullptr);
    run_and_cancel_point(&p, [&] { return weave_park(&word, &expected, 4, -1, nullptr, 1); });
  });
  REQUIRE(wait_parks(parks, 1));
  REQUIRE(pthread_cancel(t.tid) == 0);
  CHECK(weave_unpark(&word, nullptr, nullptr) == 1);
  CHECK(t.join() == PTHREAD_CANCELED);
  CHECK(destructor_runs == 1);
  CHECK(storage_destructor_runs == 1);
}
