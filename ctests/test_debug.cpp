// Debug mode (ft_weave.h, "Diagnostics: debug mode"): lock-order cycles,
// live deadlocks, owner checks, WEAVE_DEBUG_FAIL_ON_CYCLE. Compiled with
// -DFT_WEAVE_DEBUG (ctests/CMakeLists.txt), so the header's inline lock
// operations go through the checking exports, and with exported symbols
// (-rdynamic) so that dladdr can name this program's functions in reports.
#include "weave_test.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifndef FT_WEAVE_DEBUG
#error "test_debug.cpp is compiled with -DFT_WEAVE_DEBUG"
#endif

namespace {

// Collects the reports of the installed callback.
struct Reports {
  std::mutex lock;
  std::vector<std::string> lines;

  static void collect(const char *report, void *arg) {
    auto *self = static_cast<Reports *>(arg);
    std::lock_guard<std::mutex> guard(self->lock);
    self->lines.emplace_back(report);
  }
  size_t count_with(const char *word) {
    std::lock_guard<std::mutex> guard(lock);
    size_t n = 0;
    for (const std::string &line : lines) {
      n += line.find(word) != std::string::npos;
    }
    return n;
  }
  std::string all() {
    std::lock_guard<std::mutex> guard(lock);
    std::string text;
    for (const std::string &line : lines) {
      text += line + "\n";
    }
    return text;
  }
};

std::string hex(const void *p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  return buf;
}

// Turns debug mode off at the end of a test, whatever happens.
struct DebugOff {
  ~DebugOff() { (void)weave_debug_set(0, nullptr, nullptr); }
};

} // namespace

// Named, exported functions: the report names them through dladdr.
extern "C" __attribute__((noinline)) void ftw_debug_take_a_then_b(weave_mutex_t *a, weave_mutex_t *b) {
  weave_mutex_lock(a);
  weave_mutex_lock(b);
  (void)weave_mutex_unlock(b);
  (void)weave_mutex_unlock(a);
}

extern "C" __attribute__((noinline)) void ftw_debug_take_b_then_a(weave_mutex_t *a, weave_mutex_t *b) {
  weave_mutex_lock(b);
  weave_mutex_lock(a);
  (void)weave_mutex_unlock(a);
  (void)weave_mutex_unlock(b);
}

TEST_CASE("debug: A->B then B->A on two threads that never deadlock is reported once") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
  REQUIRE(weave_debug_flags() == WEAVE_DEBUG_LOCK_ORDER);
  weave_mutex_t a = {}, b = {};
  // One thread after the other: the run cannot deadlock, the order can.
  ftw_test::run_pthread([&] {
    for (int i = 0; i < 5; i++) {
      ftw_debug_take_a_then_b(&a, &b);
    }
  });
  CHECK(reports.count_with("lock order") == 0);
  ftw_test::run_pthread([&] {
    for (int i = 0; i < 5; i++) {
      ftw_debug_take_b_then_a(&a, &b);
    }
  });
  INFO(reports.all());
  REQUIRE(reports.count_with("lock order") == 1);
  std::string report = reports.all();
  CHECK(report.find(hex(&a)) != std::string::npos);
  CHECK(report.find(hex(&b)) != std::string::npos);
  // Both orders' call sites, symbolized.
  CHECK(report.find("ftw_debug_take_a_then_b+0x") != std::string::npos);
  CHECK(report.find("ftw_debug_take_b_then_a+0x") != std::string::npos);
  CHECK_FALSE(weave_mutex_is_locked(&a));
  CHECK_FALSE(weave_mutex_is_locked(&b));
}

TEST_CASE("debug: a three-lock cycle over three threads is reported with every edge") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
  weave_mutex_t m[3] = {};
  for (int i = 0; i < 3; i++) {
    ftw_test::run_pthread([&, i] {
      weave_mutex_lock(&m[i]);
      weave_mutex_lock(&m[(i + 1) % 3]);
      (void)weave_mutex_unlock(&m[(i + 1) % 3]);
      (void)weave_mutex_unlock(&m[i]);
    });
  }
  INFO(reports.all());
  REQUIRE(reports.count_with("lock order") == 1);
  std::string report = reports.all();
  for (int i = 0; i < 3; i++) {
    CHECK(report.find(hex(&m[i])) != std::string::npos);
  }
}

TEST_CASE("debug: consistent orders across 64 threads and 1,000 locks report nothing") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_ALL, &Reports::collect, &reports) == 0);
  constexpr int kLocks = 1000;
  constexpr int kThreads = 64;
  std::vector<weave_mutex_t> locks(kLocks);
  for (weave_mutex_t &m : locks) {
    m = weave_mutex_t{};
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      unsigned seed = 12345u + unsigned(t);
      // Deterministic so that the final inversion below closes a cycle.
      weave_mutex_lock(&locks[0]);
      weave_mutex_lock(&locks[kLocks - 1]);
      (void)weave_mutex_unlock(&locks[kLocks - 1]);
      (void)weave_mutex_unlock(&locks[0]);
      for (int i = 0; i < 300; i++) {
        // Three locks in increasing address order (the one global order).
        int x = int(rand_r(&seed) % kLocks), y = int(rand_r(&seed) % kLocks), z = int(rand_r(&seed) % kLocks);
        int lo = std::min(x, std::min(y, z)), hi = std::max(x, std::max(y, z)), mid = x + y + z - lo - hi;
        weave_mutex_lock(&locks[lo]);
        if (mid != lo) {
          weave_mutex_lock(&locks[mid]);
        }
        if (hi != mid) {
          weave_mutex_lock(&locks[hi]);
        }
        if (hi != mid) {
          (void)weave_mutex_unlock(&locks[hi]);
        }
        if (mid != lo) {
          (void)weave_mutex_unlock(&locks[mid]);
        }
        (void)weave_mutex_unlock(&locks[lo]);
      }
    });
  }
  for (std::thread &t : threads) {
    t.join();
  }
  INFO(reports.all());
  CHECK(reports.lines.empty());
  // The detector was on all along: one inverted acquisition is reported.
  ftw_debug_take_b_then_a(&locks[0], &locks[kLocks - 1]);
  CHECK(reports.count_with("lock order") == 1);
}

TEST_CASE("debug: weave_debug_check_deadlocks finds a real three-thread deadlock") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LIVE_DEADLOCK, &Reports::collect, &reports) == 0);
  CHECK(weave_debug_check_deadlocks() == 0);
  weave_mutex_t m[3] = {};
  std::atomic<int> holding{0};
  std::atomic<uint64_t> ids[3];
  std::atomic<int> timed_out{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; i++) {
    threads.emplace_back([&, i] {
      ids[i] = weave_thread_id();
      weave_mutex_lock(&m[i]);
      holding++;
      while (holding.load() < 3) {
        std::this_thread::yield();
      }
      // Each waits for the next one's lock: a cycle. The timeout is what
      // breaks it, so that the test ends.
      int rc = weave_mutex_lock_timed(&m[(i + 1) % 3], 3'000'000'000LL, 0);
      if (rc == WEAVE_LOCK_ACQUIRED) {
        (void)weave_mutex_unlock(&m[(i + 1) % 3]);
      } else {
        timed_out++;
      }
      (void)weave_mutex_unlock(&m[i]);
    });
  }
  int found = 0;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (found == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    found = weave_debug_check_deadlocks();
  }
  CHECK(found == 1);
  for (std::thread &t : threads) {
    t.join();
  }
  INFO(reports.all());
  CHECK(timed_out.load() >= 1);
  REQUIRE(reports.count_with("deadlock") >= 1);
  std::string report = reports.all();
  for (int i = 0; i < 3; i++) {
    CHECK(report.find("thread " + std::to_string(ids[i].load())) != std::string::npos);
    CHECK(report.find(hex(&m[i])) != std::string::npos);
  }
  // Over: nothing waits any more.
  CHECK(weave_debug_check_deadlocks() == 0);
}

TEST_CASE("debug: a thread waiting for a mutex it holds is a deadlock of one") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LIVE_DEADLOCK, &Reports::collect, &reports) == 0);
  weave_mutex_t m = {};
  std::atomic<int> stage{0};
  uint64_t id = 0;
  std::thread t([&] {
    id = weave_thread_id();
    weave_mutex_lock(&m);
    stage = 1;
    CHECK(weave_mutex_lock_timed(&m, 1'500'000'000LL, 0) == WEAVE_LOCK_FAILURE);
    (void)weave_mutex_unlock(&m);
  });
  while (stage.load() == 0) {
    std::this_thread::yield();
  }
  int found = 0;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
  while (found == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    found = weave_debug_check_deadlocks();
  }
  t.join();
  CHECK(found == 1);
  INFO(reports.all());
  CHECK(reports.count_with("waits for itself") == 1);
  CHECK(reports.all().find("thread " + std::to_string(id)) != std::string::npos);
}

TEST_CASE("debug: owner checks refuse and report an unlock by a thread that does not hold the lock") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_OWNER, &Reports::collect, &reports) == 0);
  weave_mutex_t m = {};
  weave_recursive_mutex_t r = {};
  weave_rwmutex_t rw = {};
  std::atomic<int> stage{0};
  std::thread holder([&] {
    weave_mutex_lock(&m);
    weave_recursive_mutex_lock(&r);
    weave_rwmutex_lock(&rw);
    CHECK(weave_mutex_assert_held(&m) == 0);
    stage = 1;
    while (stage.load() != 2) {
      std::this_thread::yield();
    }
    CHECK(weave_rwmutex_unlock(&rw) == 0);
    CHECK(weave_recursive_mutex_unlock(&r) == 0);
    CHECK(weave_mutex_unlock(&m) == 0);
  });
  while (stage.load() != 1) {
    std::this_thread::yield();
  }
  CHECK(weave_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(std::string(weave_last_error()).find("another thread") != std::string::npos);
  CHECK(weave_mutex_is_locked(&m));
  CHECK(weave_mutex_assert_held(&m) == WEAVE_E_NOT_OWNER);
  CHECK(weave_recursive_mutex_unlock(&r) == WEAVE_E_NOT_OWNER);
  CHECK(weave_rwmutex_unlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK((__atomic_load_n(&rw.bits, __ATOMIC_RELAXED) & WEAVE_RWMUTEX_WRITE_LOCKED) != 0);
  stage = 2;
  holder.join();
  INFO(reports.all());
  CHECK(reports.count_with("owner") == 4);
  CHECK_FALSE(weave_mutex_is_locked(&m));
  // Unlocking a free mutex, and asserting one: also reported.
  CHECK(weave_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(weave_mutex_assert_held(&m) == WEAVE_E_NOT_OWNER);
  CHECK(reports.count_with("owner") == 6);
  CHECK(weave_mutex_assert_held(nullptr) == WEAVE_E_INVALID);
}

TEST_CASE("debug: with debug mode off, unlock by another thread keeps CPython's behaviour") {
  REQUIRE(weave_debug_set(0, nullptr, nullptr) == 0);
  weave_mutex_t m = {};
  ftw_test::run_pthread([&] { weave_mutex_lock(&m); });
  CHECK(weave_mutex_unlock(&m) == 0);
  CHECK_FALSE(weave_mutex_is_locked(&m));
  CHECK(weave_debug_check_deadlocks() == 0);
}

TEST_CASE("debug: FAIL_ON_CYCLE makes a timed lock that would close a cycle return WEAVE_E_DEADLOCK") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER | WEAVE_DEBUG_FAIL_ON_CYCLE, &Reports::collect, &reports) == 0);
  weave_mutex_t a = {}, b = {};
  weave_mutex_lock(&a);
  REQUIRE(weave_mutex_lock_timed(&b, -1, 0) == WEAVE_LOCK_ACQUIRED);
  (void)weave_mutex_unlock(&b);
  (void)weave_mutex_unlock(&a);
  weave_mutex_lock(&b);
  CHECK(weave_mutex_lock_timed(&a, -1, 0) == WEAVE_E_DEADLOCK);
  CHECK(std::string(weave_last_error()).find("cycle") != std::string::npos);
  CHECK_FALSE(weave_mutex_is_locked(&a));
  // Refused every time (the order is never recorded)...
  CHECK(weave_mutex_lock_timed(&a, 0, 0) == WEAVE_E_DEADLOCK);
  // ...and reported each time; a plain lock is reported once and goes ahead.
  CHECK(reports.count_with("WEAVE_E_DEADLOCK") == 2);
  weave_mutex_lock(&a);
  CHECK(weave_mutex_is_locked(&a));
  (void)weave_mutex_unlock(&a);
  (void)weave_mutex_unlock(&b);
  INFO(reports.all());
  CHECK(reports.count_with("lock order") == 3);
  // Relocking a held mutex with a timed lock is refused too.
  weave_mutex_lock(&a);
  CHECK(weave_mutex_lock_timed(&a, 1'000'000'000LL, 0) == WEAVE_E_DEADLOCK);
  (void)weave_mutex_unlock(&a);
}

TEST_CASE("debug: the recursive mutex and the rwmutex take part in lock orders") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
  weave_recursive_mutex_t r = {};
  weave_rwmutex_t rw = {};
  weave_recursive_mutex_lock(&r);
  weave_recursive_mutex_lock(&r); // re-entry: no order with itself
  weave_rwmutex_rlock(&rw);
  (void)weave_rwmutex_runlock(&rw);
  (void)weave_recursive_mutex_unlock(&r);
  (void)weave_recursive_mutex_unlock(&r);
  CHECK(reports.lines.empty());
  ftw_test::run_pthread([&] {
    weave_rwmutex_lock(&rw);
    weave_recursive_mutex_lock(&r);
    (void)weave_recursive_mutex_unlock(&r);
    (void)weave_rwmutex_unlock(&rw);
  });
  INFO(reports.all());
  CHECK(reports.count_with("lock order") == 1);
  CHECK(reports.count_with("recursive mutex") == 1);
  CHECK(reports.count_with("rwmutex") == 1);
}

TEST_CASE("debug: weave_debug_set rejects bad flags and leaves the mode as it was") {
  DebugOff off;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_OWNER, nullptr, nullptr) == 0);
  CHECK(weave_debug_set(64, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("unknown flags") != std::string::npos);
  CHECK(weave_debug_set(WEAVE_DEBUG_FAIL_ON_CYCLE, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(weave_debug_set(WEAVE_DEBUG_WATCHDOG, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(weave_debug_set(-1, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(weave_debug_flags() == WEAVE_DEBUG_OWNER);
}

// Critical sections count as held while active: a section on A, then a
// lock of B, on one thread; B, then a section on A, on another.
TEST_CASE("debug: an active critical section's mutex takes part in lock orders") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
  weave_mutex_t a = {}, b = {};
  ftw_test::run_pthread([&] {
    weave_critical_section_t cs;
    weave_critical_section_begin(&cs, &a);
    weave_mutex_lock(&b);
    (void)weave_mutex_unlock(&b);
    weave_critical_section_end(&cs);
  });
  CHECK(reports.count_with("lock order") == 0);
  ftw_test::run_pthread([&] {
    weave_mutex_lock(&b);
    weave_critical_section_t cs;
    weave_critical_section_begin(&cs, &a);
    weave_critical_section_end(&cs);
    (void)weave_mutex_unlock(&b);
  });
  INFO(reports.all());
  REQUIRE(reports.count_with("lock order") == 1);
  std::string report = reports.all();
  CHECK(report.find(hex(&a)) != std::string::npos);
  CHECK(report.find(hex(&b)) != std::string::npos);
  CHECK(report.find("critical section") != std::string::npos);
  CHECK_FALSE(weave_mutex_is_locked(&a));
  CHECK_FALSE(weave_mutex_is_locked(&b));
}

// ... and not while suspended: a detached park suspends every section; on
// waking only the innermost is resumed, so the outer section's mutex is not
// held when the next lock is taken, and its order is not recorded.
TEST_CASE("debug: a suspended critical section's mutex does not take part in lock orders") {
  DebugOff off;
  Reports reports;
  REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
  weave_mutex_t outer = {}, inner = {}, b = {};
  ftw_test::run_pthread([&] {
    weave_critical_section_t cs_outer, cs_inner;
    weave_critical_section_begin(&cs_outer, &outer);
    weave_critical_section_begin(&cs_inner, &inner);
    uint32_t word = 0, expected = 0;
    // Times out after 1 ms; detached, so the sections are suspended.
    (void)weave_park(&word, &expected, sizeof word, 1000 * 1000, nullptr, 1);
    CHECK_FALSE(weave_mutex_is_locked(&outer));  // suspended, not resumed yet
    CHECK(weave_mutex_is_locked(&inner));        // the innermost is resumed
    // Start the graph afresh (weave_debug_set resets it), so that the
    // nesting order outer -> inner does not link outer to what follows.
    REQUIRE(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER, &Reports::collect, &reports) == 0);
    weave_mutex_lock(&b);
    (void)weave_mutex_unlock(&b);
    weave_critical_section_end(&cs_inner);
    weave_critical_section_end(&cs_outer);
  });
  ftw_test::run_pthread([&] {
    // b then outer: no cycle (outer -> b was never held), b then inner: one.
    weave_mutex_lock(&b);
    weave_mutex_lock(&outer);
    (void)weave_mutex_unlock(&outer);
    (void)weave_mutex_unlock(&b);
  });
  INFO(reports.all());
  CHECK(reports.count_with("lock order") == 0);
  ftw_test::run_pthread([&] {
    weave_mutex_lock(&b);
    weave_mutex_lock(&inner);
    (void)weave_mutex_unlock(&inner);
    (void)weave_mutex_unlock(&b);
  });
  INFO(reports.all());
  CHECK(reports.count_with("lock order") == 1);
  CHECK(reports.all().find(hex(&inner)) != std::string::npos);
}
