// Churn and load: 64 native threads hammer 1,000 locks chosen at random for a
// bounded time (about 2 s; FTW_CHURN_MS overrides), checking an invariant
// inside every critical region. Each lock guards a slot with two counters
// that are equal outside the lock and an owner field that only the holder
// writes: a second thread inside the same region sees the counters differ or
// the owner change. At the end the counters add up to the number of
// operations and every lock word is back to zero.
//
// Other churn lives elsewhere (see docs/reliability.md): 10,000 threads x 4
// destructor registrations in test_thread_destructors.cpp, the park/unpark
// storm in test_parking_lot.cpp, once/event races in test_once.cpp and
// test_event.cpp.
#include "test_util.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;

namespace {

constexpr int kThreads = 64;
constexpr int kLocks = 1000;

int64_t run_ns() {
  const char *env = std::getenv("FTW_CHURN_MS");
  int64_t ms = env != nullptr ? std::atoll(env) : 2000;
  return (ms > 0 ? ms : 2000) * 1000000;
}

// A guarded slot: a and b are equal outside the lock; owner is the holder's
// index while inside. Relaxed atomics keep a broken lock from being undefined
// behaviour in the test itself; the lock supplies every ordering.
struct slot {
  std::atomic<uint64_t> a{0};
  std::atomic<uint64_t> b{0};
  std::atomic<int> owner{-1};
};

// Enter: the region must be empty; do one increment in two halves with a
// possible yield between them (so that a broken lock is caught in the act).
bool guarded_increment(slot &s, int me, bool yield) {
  bool ok = true;
  if (s.owner.load(std::memory_order_relaxed) != -1) ok = false;
  s.owner.store(me, std::memory_order_relaxed);
  uint64_t a = s.a.load(std::memory_order_relaxed);
  if (s.b.load(std::memory_order_relaxed) != a) ok = false;
  s.a.store(a + 1, std::memory_order_relaxed);
  if (yield) sched_yield();
  s.b.store(a + 1, std::memory_order_relaxed);
  if (s.owner.load(std::memory_order_relaxed) != me) ok = false;
  s.owner.store(-1, std::memory_order_relaxed);
  return ok;
}

// Readers of an RW slot: no writer inside, counters equal.
bool guarded_read(slot &s) {
  return s.owner.load(std::memory_order_relaxed) == -1 &&
         s.a.load(std::memory_order_relaxed) == s.b.load(std::memory_order_relaxed);
}

struct shared_state {
  weave_mutex_t mutexes[kLocks] = {};
  slot mutex_slots[kLocks];
  weave_rwmutex_t rwmutexes[kLocks] = {};
  slot rw_slots[kLocks];
  weave_recursive_mutex_t recursive[kLocks] = {};
  slot recursive_slots[kLocks];
  std::atomic<int> started{0};
  std::atomic<int> go{0};
  std::atomic<int> stop{0};
  std::atomic<int> violations{0};
  std::atomic<int> timed_failures{0};  // bounded timed locks that gave up (legal)
  std::atomic<int> threads_with_ops{0};
  std::atomic<uint64_t> mutex_ops{0}, rw_writes{0}, rw_reads{0}, recursive_ops{0};
};

void worker(shared_state &st, int me) {
  std::mt19937_64 rng(0x9E3779B97F4A7C15ULL * uint64_t(me + 1));
  uint64_t mutex_ops = 0, rw_writes = 0, rw_reads = 0, recursive_ops = 0;
  int bad = 0;
  bool counted = false;
  st.started++;
  while (st.go.load() == 0) sched_yield();
  while (st.stop.load(std::memory_order_relaxed) == 0) {
    uint64_t r = rng();
    int i = int(r % kLocks);
    int j = int((r >> 20) % kLocks);
    bool yield = ((r >> 40) & 15) == 0;
    switch ((r >> 44) % 8) {
      case 0:
      case 1:  // plain lock
        weave_mutex_lock(&st.mutexes[i]);
        bad += !guarded_increment(st.mutex_slots[i], me, yield);
        bad += weave_mutex_unlock(&st.mutexes[i]) != 0;
        mutex_ops++;
        break;
      case 2:  // trylock, then a bounded timed lock with every flag
        if (weave_mutex_trylock(&st.mutexes[i]) ||
            weave_mutex_lock_timed(&st.mutexes[i], 200000, WEAVE_LOCK_ALL_FLAGS) == WEAVE_LOCK_ACQUIRED) {
          bad += !guarded_increment(st.mutex_slots[i], me, yield);
          bad += weave_mutex_unlock(&st.mutexes[i]) != 0;
          mutex_ops++;
        } else {
          st.timed_failures++;
        }
        break;
      case 3: {  // critical section over one mutex
        WEAVE_BEGIN_CRITICAL_SECTION(&st.mutexes[i]);
        bad += !guarded_increment(st.mutex_slots[i], me, yield);
        WEAVE_END_CRITICAL_SECTION();
        mutex_ops++;
        break;
      }
      case 4: {  // two-mutex critical section (locks in address order)
        WEAVE_BEGIN_CRITICAL_SECTION2(&st.mutexes[i], &st.mutexes[j]);
        bad += !guarded_increment(st.mutex_slots[i], me, false);
        if (j != i) bad += !guarded_increment(st.mutex_slots[j], me, yield);
        WEAVE_END_CRITICAL_SECTION2();
        mutex_ops += j != i ? 2 : 1;
        break;
      }
      case 5:  // RW write
        weave_rwmutex_lock(&st.rwmutexes[i]);
        bad += !guarded_increment(st.rw_slots[i], me, yield);
        bad += weave_rwmutex_unlock(&st.rwmutexes[i]) != 0;
        rw_writes++;
        break;
      case 6:  // RW read
        weave_rwmutex_rlock(&st.rwmutexes[i]);
        bad += !guarded_read(st.rw_slots[i]);
        if (yield) sched_yield();
        bad += !guarded_read(st.rw_slots[i]);
        bad += weave_rwmutex_runlock(&st.rwmutexes[i]) != 0;
        rw_reads++;
        break;
      default:  // recursive mutex, entered twice
        weave_recursive_mutex_lock(&st.recursive[i]);
        weave_recursive_mutex_lock(&st.recursive[i]);
        bad += !guarded_increment(st.recursive_slots[i], me, yield);
        bad += weave_recursive_mutex_unlock(&st.recursive[i]) != 0;
        bad += weave_recursive_mutex_unlock(&st.recursive[i]) != 0;
        recursive_ops++;
        break;
    }
    if (!counted) {
      counted = true;
      st.threads_with_ops++;
    }
  }
  st.violations += bad;
  st.mutex_ops += mutex_ops;
  st.rw_writes += rw_writes;
  st.rw_reads += rw_reads;
  st.recursive_ops += recursive_ops;
}

uint64_t sum_a(const slot *slots) {
  uint64_t n = 0;
  for (int i = 0; i < kLocks; ++i) n += slots[i].a.load();
  return n;
}

bool slots_consistent(const slot *slots) {
  for (int i = 0; i < kLocks; ++i) {
    if (slots[i].a.load() != slots[i].b.load() || slots[i].owner.load() != -1) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("64 threads x 1000 random mutexes, RW mutexes, recursive mutexes and critical sections: invariant per lock") {
  auto st = std::make_unique<shared_state>();
  uint64_t parks_before = ftw_test::stats().parks;
  std::vector<std::unique_ptr<native_thread>> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.push_back(std::make_unique<native_thread>([&st, t] { worker(*st, t); }));
  }
  REQUIRE(ftw_test::wait_until([&] { return st->started.load() == kThreads; }, 60000));
  st->go = 1;
  // Run for the set time, and on until every thread has done at least one
  // operation (a starved thread would show here), within a hard bound.
  int64_t start = now_ns();
  int64_t end = start + run_ns();
  int64_t hard_end = start + INT64_C(60) * 1000000000;
  while (now_ns() < end || (st->threads_with_ops.load() < kThreads && now_ns() < hard_end)) {
    ftw_test::sleep_ms(10);
  }
  st->stop = 1;
  for (auto &t : threads) t->join();

  CHECK(st->violations == 0);
  CHECK(st->threads_with_ops == kThreads);
  CHECK(sum_a(st->mutex_slots) == st->mutex_ops.load());
  CHECK(sum_a(st->rw_slots) == st->rw_writes.load());
  CHECK(sum_a(st->recursive_slots) == st->recursive_ops.load());
  CHECK(slots_consistent(st->mutex_slots));
  CHECK(slots_consistent(st->rw_slots));
  CHECK(slots_consistent(st->recursive_slots));
  int dirty = 0;
  for (int i = 0; i < kLocks; ++i) {
    dirty += mutex_state(st->mutexes[i]) != 0;
    // Readers that contended may have left the reader bias on (the top bit).
    dirty += (st->rwmutexes[i].bits & ~(uintptr_t)WEAVE_RWMUTEX_READER_BIAS) != 0;
    dirty += mutex_state(st->recursive[i].mutex) != 0 || st->recursive[i].thread != 0 || st->recursive[i].level != 0;
  }
  CHECK(dirty == 0);
  uint64_t ops = st->mutex_ops + st->rw_writes + st->rw_reads + st->recursive_ops;
  INFO("operations " << ops << ", parks " << ftw_test::stats().parks - parks_before << ", timed lock give-ups "
                     << st->timed_failures.load());
  CHECK(ops > uint64_t(kThreads));
  SUCCEED();
}
