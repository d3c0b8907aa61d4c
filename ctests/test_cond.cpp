// ft_weave.h section 4, "Condition variable": a condition over a
// weave_mutex_t whose signals requeue waiters onto the mutex.
//
// Catch2 assertions are not thread-safe: worker threads record what they saw
// and the main thread checks it after joining them.
#include "test_util.hpp"
#include "weave_test.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int64_t kMs = 1000 * 1000;

weave_stats_t stats() {
  weave_stats_t s{};
  REQUIRE(weave_stats(&s) == 0);
  return s;
}

// Waits until `count` more threads than `base` have gone to sleep in the
// parking lot. Each Catch2 test case runs in its own process, and in the
// cases that use this only the threads under test use the lot, so the
// counter says that the waiter is queued on the condition (it is bumped
// after the waiter's entry is queued).
void wait_for_parks(uint64_t base, uint64_t count) {
  auto deadline = clock_type::now() + std::chrono::seconds(60);
  while (stats().parks < base + count) {
    REQUIRE(clock_type::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

TEST_CASE("signal and broadcast with no waiters return 0") {
  weave_cond_t c = {};
  CHECK(weave_cond_signal(&c) == 0);
  CHECK(weave_cond_broadcast(&c) == 0);
  CHECK(c.v == 0);
}

TEST_CASE("misuse: unlocked mutex and NULLs") {
  weave_cond_t c = {};
  weave_mutex_t m = {};
  CHECK(weave_cond_wait(&c, &m, -1) == WEAVE_E_NOT_OWNER);
  CHECK(std::string(weave_last_error()).find("weave_cond_wait") != std::string::npos);
  CHECK(c.v == 0);  // checked before anything was touched
  CHECK(mutex_state(m) == 0);

  weave_mutex_lock(&m);
  CHECK(weave_cond_wait(nullptr, &m, 0) == WEAVE_E_INVALID);
  CHECK(weave_cond_wait(&c, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_cond_wait(nullptr, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_mutex_is_locked(&m));  // still held: nothing happened
  CHECK(weave_mutex_unlock(&m) == 0);
  CHECK(weave_cond_signal(nullptr) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("weave_cond_signal") != std::string::npos);
  CHECK(weave_cond_broadcast(nullptr) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("weave_cond_broadcast") != std::string::npos);
}

TEST_CASE("timed wait returns 0 after its timeout with the mutex held") {
  weave_cond_t c = {};
  weave_mutex_t m = {};
  weave_mutex_lock(&m);

  auto start = clock_type::now();
  CHECK(weave_cond_wait(&c, &m, 50 * kMs) == 0);
  auto elapsed = clock_type::now() - start;
  CHECK(elapsed >= std::chrono::milliseconds(50));
  CHECK(elapsed < std::chrono::seconds(10));  // generous: the machine may be loaded
  CHECK(weave_mutex_is_locked(&m));
  CHECK_FALSE(weave_mutex_trylock(&m));

  // Timeout 0: no sleep at all, still re-locked.
  CHECK(weave_cond_wait(&c, &m, 0) == 0);
  CHECK(weave_mutex_is_locked(&m));
  CHECK(weave_mutex_unlock(&m) == 0);
  CHECK(mutex_state(m) == 0);

  // The stale "may have waiters" byte is cleared by the next signal.
  CHECK(weave_cond_signal(&c) == 0);
  CHECK(c.v == 0);
}

TEST_CASE("ping-pong: 10000 round trips between two threads") {
  constexpr int kRounds = 10000;
  weave_cond_t c = {};
  weave_mutex_t m = {};
  int turn = 0;  // protected by m
  std::atomic<int> errors{0};

  auto player = [&](int me) {
    for (int i = 0; i < kRounds; i++) {
      weave_mutex_lock(&m);
      while (turn != me) {
        int r = weave_cond_wait(&c, &m, -1);
        errors += r != 1;
        errors += !weave_mutex_is_locked(&m);
      }
      turn = 1 - me;
      errors += weave_cond_signal(&c) < 0;
      errors += weave_mutex_unlock(&m) != 0;
    }
  };
  std::thread a(player, 0);
  std::thread b(player, 1);
  a.join();
  b.join();
  CHECK(errors.load() == 0);
  CHECK(turn == 0);
  CHECK(mutex_state(m) == 0);
}

TEST_CASE("broadcast requeues all 8 waiters and each wakes once the broadcaster unlocks") {
  constexpr int kWaiters = 8;
  weave_cond_t c = {};
  weave_mutex_t m = {};
  bool go = false;  // protected by m
  std::atomic<bool> released{false};
  std::atomic<int> woke_before_release{0};
  std::atomic<int> done{0};
  std::atomic<int> errors{0};

  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; i++) {
    // One at a time, so that each is queued on the condition before the next
    // takes the mutex: nobody parks on the mutex, and the broadcast must
    // find all of them.
    uint64_t base = stats().parks;
    waiters.emplace_back([&] {
      weave_mutex_lock(&m);
      while (!go) {
        errors += weave_cond_wait(&c, &m, -1) != 1;
      }
      woke_before_release += !released.load();
      done++;
      errors += weave_mutex_unlock(&m) != 0;
    });
    wait_for_parks(base, 1);
  }

  weave_stats_t before = stats();
  weave_mutex_lock(&m);
  go = true;
  CHECK(weave_cond_broadcast(&c) == kWaiters);  // every waiter was queued
  CHECK(c.v == 0);                               // and none is left on the condition
  // The waiters were moved onto the mutex, not woken: nobody runs while we
  // hold it (without requeue they would all wake now and pile onto it).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  weave_stats_t during = stats();
  CHECK(during.unparks == before.unparks);
  CHECK(done.load() == 0);
  // Locked, waiters announced (bit 0 of _parked), and the 8 waiters counted
  // in bits 1-7 until each holds the mutex again.
  CHECK(m._bytes[0] == WEAVE_MUTEX_LOCKED);
  CHECK((m._bytes[1] & 1) == 1);
  CHECK((m._bytes[1] >> 1) == kWaiters);
  released = true;
  CHECK(weave_mutex_unlock(&m) == 0);
  for (auto &w : waiters) {
    w.join();
  }

  weave_stats_t after = stats();
  CHECK(errors.load() == 0);
  CHECK(done.load() == kWaiters);
  CHECK(woke_before_release.load() == 0);
  // Each waiter was woken exactly once, by the previous holder's unlock, and
  // none had to park again. Each had been on the mutex's queue for more than
  // 1 ms, so every unlock handed the mutex over.
  CHECK(after.unparks - before.unparks == kWaiters);
  CHECK(after.parks - before.parks == 0);
  CHECK(after.handoffs - before.handoffs == kWaiters);
  CHECK(mutex_state(m) == 0);
}

TEST_CASE("signal while holding the mutex: the waiter runs only after the unlock") {
  weave_cond_t c = {};
  weave_mutex_t m = {};
  bool ready = false;  // protected by m
  std::atomic<bool> released{false};
  bool saw_release = false;
  int result = -1;

  uint64_t base = stats().parks;
  std::thread waiter([&] {
    weave_mutex_lock(&m);
    while (!ready) {
      result = weave_cond_wait(&c, &m, -1);
    }
    saw_release = released.load();
    weave_mutex_unlock(&m);
  });
  wait_for_parks(base, 1);

  weave_stats_t before = stats();
  weave_mutex_lock(&m);
  ready = true;
  CHECK(weave_cond_signal(&c) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(stats().unparks == before.unparks);  // requeued, not woken
  released = true;
  CHECK(weave_mutex_unlock(&m) == 0);
  waiter.join();

  weave_stats_t after = stats();
  CHECK(result == 1);
  CHECK(saw_release);
  CHECK(after.unparks - before.unparks == 1);  // one wake: the unlock's
  CHECK(after.parks - before.parks == 0);      // the waiter never re-parked
  CHECK(after.handoffs - before.handoffs == 1);
  CHECK(mutex_state(m) == 0);
  CHECK(c.v == 0);
}

TEST_CASE("a requeued waiter whose timeout expires on the mutex's queue reports a wake") {
  weave_cond_t c = {};
  weave_mutex_t m = {};
  int result = -1;
  bool held_after_return = false;

  uint64_t base = stats().parks;
  std::thread waiter([&] {
    weave_mutex_lock(&m);
    result = weave_cond_wait(&c, &m, 100 * kMs);
    held_after_return = weave_mutex_is_locked(&m);
    weave_mutex_unlock(&m);
  });
  wait_for_parks(base, 1);

  weave_mutex_lock(&m);
  // 1 when the waiter was still queued (it is moved onto the mutex), 0 when
  // a very slow machine let its 100 ms run out first. Either way its answer
  // must match: a waiter that was signalled must not report a timeout (the
  // signal would be lost), and one that was not must.
  int signalled = weave_cond_signal(&c);
  // Hold the mutex past the waiter's deadline, so that it expires while the
  // waiter sits on the mutex's queue.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(weave_mutex_unlock(&m) == 0);
  waiter.join();

  CHECK(result == signalled);
  CHECK(held_after_return);
  CHECK(mutex_state(m) == 0);
}

TEST_CASE("a waiter that uses another mutex is woken instead of requeued") {
  weave_cond_t c = {};
  weave_mutex_t m1 = {}, m2 = {};
  bool go = false;  // written under both mutexes
  std::atomic<bool> released{false};
  bool second_saw_release = true;
  int r1 = -1, r2 = -1;

  uint64_t base = stats().parks;
  std::thread first([&] {
    weave_mutex_lock(&m1);
    while (!go) {
      r1 = weave_cond_wait(&c, &m1, -1);
    }
    weave_mutex_unlock(&m1);
  });
  wait_for_parks(base, 1);
  std::thread second([&] {
    weave_mutex_lock(&m2);
    r2 = weave_cond_wait(&c, &m2, -1);  // any return ends its wait
    second_saw_release = released.load();
    weave_mutex_unlock(&m2);
  });
  wait_for_parks(base, 2);

  weave_mutex_lock(&m1);
  weave_mutex_lock(&m2);
  go = true;
  weave_mutex_unlock(&m2);
  CHECK(weave_cond_broadcast(&c) == 2);
  // The first waiter's mutex is m1, which we hold: it is requeued. The
  // second uses m2, which is free: it is woken and returns while we still
  // hold m1.
  second.join();
  released = true;
  CHECK(weave_mutex_unlock(&m1) == 0);
  first.join();
  CHECK(r1 == 1);
  CHECK(r2 == 1);
  CHECK_FALSE(second_saw_release);
  CHECK(mutex_state(m1) == 0);
  CHECK(mutex_state(m2) == 0);
  CHECK(c.v == 0);
}

namespace {

// Bounded queue with two conditions; 4 producers and 4 consumers move
// kItems numbered items. Every item must arrive exactly once. With a
// positive wait_timeout_ns, waiters also time out often, which races
// timeouts against signals and requeues.
void producer_consumer(int64_t wait_timeout_ns) {
  constexpr int kProducers = 4, kConsumers = 4, kItems = 100000, kCapacity = 16;
  weave_mutex_t m = {};
  weave_cond_t not_empty = {}, not_full = {};
  // Protected by m:
  int ring[kCapacity];
  int head = 0, size = 0, taken = 0;
  std::vector<uint8_t> seen(kItems, 0);
  std::atomic<int> errors{0};

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; p++) {
    threads.emplace_back([&, p] {
      for (int item = p; item < kItems; item += kProducers) {
        weave_mutex_lock(&m);
        while (size == kCapacity) {
          errors += weave_cond_wait(&not_full, &m, wait_timeout_ns) < 0;
        }
        ring[(head + size) % kCapacity] = item;
        size++;
        errors += weave_cond_signal(&not_empty) < 0;
        errors += weave_mutex_unlock(&m) != 0;
      }
    });
  }
  for (int k = 0; k < kConsumers; k++) {
    threads.emplace_back([&] {
      while (true) {
        weave_mutex_lock(&m);
        while (size == 0 && taken < kItems) {
          errors += weave_cond_wait(&not_empty, &m, wait_timeout_ns) < 0;
        }
        if (taken == kItems) {
          errors += weave_mutex_unlock(&m) != 0;
          return;
        }
        int item = ring[head];
        head = (head + 1) % kCapacity;
        size--;
        taken++;
        seen[item]++;
        errors += weave_cond_signal(&not_full) < 0;
        if (taken == kItems) {
          errors += weave_cond_broadcast(&not_empty) < 0;  // release the other consumers
        }
        errors += weave_mutex_unlock(&m) != 0;
      }
    });
  }
  for (auto &t : threads) {
    t.join();
  }
  CHECK(errors.load() == 0);
  CHECK(taken == kItems);
  CHECK(size == 0);
  int wrong = 0;
  for (uint8_t s : seen) {
    wrong += s != 1;
  }
  CHECK(wrong == 0);
  CHECK(mutex_state(m) == 0);
}

}  // namespace

TEST_CASE("producer/consumer: 4 x 4 threads move 100000 items and none is lost") {
  producer_consumer(-1);
}

TEST_CASE("producer/consumer with 200 us timed waits racing the signals") {
  producer_consumer(200 * 1000);
}

// ---------------------------------------------------------------------------
// Waiting inside critical sections (ft_weave.h section 5). On return the
// mutex is held once, the innermost section is active again, and so is the
// section that holds the mutex with every section inside it; while the
// thread sleeps, all its sections are suspended (their mutexes free).
// Every case runs its waiter on a watched thread: a library that hangs (as
// before the sections and the wait agreed) fails the case on a bound.
// ---------------------------------------------------------------------------

namespace {

using ftw_test::last_error_has;
using ftw_test::wait_until;
using ftw_test::watched_thread;

bool lock_within(weave_mutex_t *m, int ms) {
  return weave_mutex_lock_timed(m, int64_t(ms) * kMs, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED;
}

bool is_locked(weave_mutex_t *m) { return weave_mutex_is_locked(m) != 0; }

// Puts an unrelated message into weave_last_error (any thread), so that a
// later look proves whether a call wrote one.
void prime_error() { (void)weave_register_destructor(nullptr, nullptr); }

bool section_error() { return last_error_has("critical_section"); }

enum class Notify { RequeueAndHandOff, WakeAfterUnlock, Broadcast };

struct OwnSection {
  weave_mutex_t m{};
  weave_cond_t c{};
  bool ready = false;  // protected by m
  std::atomic<int> phase{0};
  int timed = -9, woke = -9;
  bool held_after_timeout = false, held_after_wake = false, end_error = true;
  int unlock_after_end = 0;
};

void own_section_waiter(OwnSection *s) {
  WEAVE_BEGIN_CRITICAL_SECTION(&s->m);
  s->timed = weave_cond_wait(&s->c, &s->m, 20 * kMs);
  s->held_after_timeout = is_locked(&s->m);
  s->phase = 1;
  while (!s->ready) {
    s->woke = weave_cond_wait(&s->c, &s->m, -1);
    if (s->woke < 0) break;
  }
  s->held_after_wake = is_locked(&s->m);
  prime_error();
  WEAVE_END_CRITICAL_SECTION();
  s->end_error = section_error();
  // The end released the only hold: the mutex is free now.
  s->unlock_after_end = weave_mutex_unlock(&s->m);
}

void own_section_case(Notify how) {
  auto s = std::make_shared<OwnSection>();
  weave_stats_t before = stats();
  watched_thread waiter([s] { own_section_waiter(s.get()); });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  // The waiter holds m until it is queued on c: getting m proves it waits.
  REQUIRE(lock_within(&s->m, 10000));
  s->ready = true;
  if (how == Notify::WakeAfterUnlock) {
    CHECK(weave_mutex_unlock(&s->m) == 0);
    CHECK(weave_cond_signal(&s->c) == 1);  // m is free: woken, not requeued
  } else {
    CHECK((how == Notify::Broadcast ? weave_cond_broadcast(&s->c) : weave_cond_signal(&s->c)) == 1);
    // Requeued onto m; held past the 1 ms fairness bound, m is handed over.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(weave_mutex_unlock(&s->m) == 0);
  }
  REQUIRE(waiter.join_within(20000));
  CHECK(s->timed == 0);
  CHECK(s->held_after_timeout);
  CHECK(s->woke == 1);
  CHECK(s->held_after_wake);
  CHECK_FALSE(s->end_error);
  CHECK(s->unlock_after_end == WEAVE_E_NOT_OWNER);
  CHECK(mutex_state(s->m) == 0);
  CHECK(s->c.v == 0);
  if (how != Notify::WakeAfterUnlock) {
    CHECK(stats().handoffs > before.handoffs);  // the requeued waiter was handed m
  }
}

}  // namespace

TEST_CASE("in a section on its own mutex: timed wait times out, signal requeues and hands the mutex over") {
  own_section_case(Notify::RequeueAndHandOff);
}

TEST_CASE("in a section on its own mutex: signal after the unlock wakes the waiter") {
  own_section_case(Notify::WakeAfterUnlock);
}

TEST_CASE("in a section on its own mutex: broadcast requeues the waiter") { own_section_case(Notify::Broadcast); }

namespace {
struct OuterSection {
  weave_mutex_t m{}, n{}, a{};
  weave_cond_t c{};
  bool ready = false;  // protected by m
  std::atomic<int> phase{0};
  int woke = -9;
  bool m_held = false, n_held = false, a_held_after_wait = true, a_held_after_inner_end = false;
  bool m_held_after_inner_end = false, end_error = true;
  int unlock_m = 0, unlock_n = 0;
};
}  // namespace

TEST_CASE("in nested sections, on the outer section's mutex: both sections are active on return") {
  auto s = std::make_shared<OuterSection>();
  watched_thread waiter([s] {
    WEAVE_BEGIN_CRITICAL_SECTION(&s->m);
    WEAVE_BEGIN_CRITICAL_SECTION(&s->n);
    s->phase = 1;
    while (!s->ready) {
      s->woke = weave_cond_wait(&s->c, &s->m, -1);
      if (s->woke < 0) break;
    }
    s->m_held = is_locked(&s->m);
    s->n_held = is_locked(&s->n);
    prime_error();
    WEAVE_END_CRITICAL_SECTION();
    s->m_held_after_inner_end = is_locked(&s->m);  // the outer section is still active
    WEAVE_END_CRITICAL_SECTION();
    s->end_error = section_error();
    s->unlock_m = weave_mutex_unlock(&s->m);
    s->unlock_n = weave_mutex_unlock(&s->n);
  });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  REQUIRE(lock_within(&s->m, 10000));
  // While the waiter sleeps, its inner section is suspended too.
  CHECK(weave_mutex_trylock(&s->n));
  CHECK(weave_mutex_unlock(&s->n) == 0);
  s->ready = true;
  CHECK(weave_cond_signal(&s->c) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(weave_mutex_unlock(&s->m) == 0);
  REQUIRE(waiter.join_within(20000));
  CHECK(s->woke == 1);
  CHECK(s->m_held);
  CHECK(s->n_held);
  CHECK(s->m_held_after_inner_end);
  CHECK_FALSE(s->end_error);
  CHECK(s->unlock_m == WEAVE_E_NOT_OWNER);
  CHECK(s->unlock_n == WEAVE_E_NOT_OWNER);
  CHECK(mutex_state(s->m) == 0);
  CHECK(mutex_state(s->n) == 0);
}

TEST_CASE("in a section inside an unrelated one: the outer is suspended while asleep and resumes when the inner ends") {
  auto s = std::make_shared<OuterSection>();
  watched_thread waiter([s] {
    WEAVE_BEGIN_CRITICAL_SECTION(&s->a);
    WEAVE_BEGIN_CRITICAL_SECTION(&s->m);
    s->phase = 1;
    while (!s->ready) {
      s->woke = weave_cond_wait(&s->c, &s->m, -1);
      if (s->woke < 0) break;
    }
    s->m_held = is_locked(&s->m);
    // As after any blocking call, only the innermost section is resumed ...
    s->a_held_after_wait = is_locked(&s->a);
    prime_error();
    WEAVE_END_CRITICAL_SECTION();
    s->a_held_after_inner_end = is_locked(&s->a);  // ... the outer when it ends
    WEAVE_END_CRITICAL_SECTION();
    s->end_error = section_error();
    s->unlock_m = weave_mutex_unlock(&s->a);
  });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  REQUIRE(lock_within(&s->m, 10000));
  // The waiter's outer section is suspended while it sleeps: a is free.
  CHECK(weave_mutex_trylock(&s->a));
  CHECK(weave_mutex_unlock(&s->a) == 0);
  s->ready = true;
  CHECK(weave_cond_signal(&s->c) == 1);
  CHECK(weave_mutex_unlock(&s->m) == 0);
  REQUIRE(waiter.join_within(20000));
  CHECK(s->woke == 1);
  CHECK(s->m_held);
  CHECK_FALSE(s->a_held_after_wait);
  CHECK(s->a_held_after_inner_end);
  CHECK_FALSE(s->end_error);
  CHECK(s->unlock_m == WEAVE_E_NOT_OWNER);
  CHECK(mutex_state(s->a) == 0);
  CHECK(mutex_state(s->m) == 0);
}

namespace {
struct PairSection {
  weave_mutex_t pair[2] = {{0}, {0}};
  weave_cond_t c{};
  bool ready = false;  // protected by the wait's mutex
  std::atomic<int> phase{0};
  int timed = -9, woke = -9;
  bool both_after_timeout = false, both_after_wake = false, end_error = true;
};
}  // namespace

TEST_CASE("in a two-mutex section, on either of its mutexes: both held on return, both free while asleep") {
  for (int which = 0; which < 2; which++) {
    auto s = std::make_shared<PairSection>();
    weave_mutex_t *m = &s->pair[which];
    weave_mutex_t *other = &s->pair[1 - which];
    watched_thread waiter([s, m, other] {
      WEAVE_BEGIN_CRITICAL_SECTION2(other, m);
      s->timed = weave_cond_wait(&s->c, m, 20 * kMs);
      s->both_after_timeout = is_locked(m) && is_locked(other);
      s->phase = 1;
      while (!s->ready) {
        s->woke = weave_cond_wait(&s->c, m, -1);
        if (s->woke < 0) break;
      }
      s->both_after_wake = is_locked(m) && is_locked(other);
      prime_error();
      WEAVE_END_CRITICAL_SECTION2();
      s->end_error = section_error();
    });
    REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
    REQUIRE(lock_within(m, 10000));
    CHECK(weave_mutex_trylock(other));  // the section's other mutex is released too
    CHECK(weave_mutex_unlock(other) == 0);
    s->ready = true;
    CHECK(weave_cond_signal(&s->c) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(weave_mutex_unlock(m) == 0);
    REQUIRE(waiter.join_within(20000));
    CHECK(s->timed == 0);
    CHECK(s->both_after_timeout);
    CHECK(s->woke == 1);
    CHECK(s->both_after_wake);
    CHECK_FALSE(s->end_error);
    CHECK(mutex_state(s->pair[0]) == 0);
    CHECK(mutex_state(s->pair[1]) == 0);
  }
}

TEST_CASE("a requeued waiter handed the mutex while its section's other mutex is busy lets go instead of deadlocking") {
  auto s = std::make_shared<PairSection>();
  weave_mutex_t *m = &s->pair[0], *x = &s->pair[1];
  watched_thread waiter([s, m, x] {
    WEAVE_BEGIN_CRITICAL_SECTION2(m, x);
    s->phase = 1;
    while (!s->ready) {
      s->woke = weave_cond_wait(&s->c, m, -1);
      if (s->woke < 0) break;
    }
    s->both_after_wake = is_locked(m) && is_locked(x);
    prime_error();
    WEAVE_END_CRITICAL_SECTION2();
    s->end_error = section_error();
  });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  weave_stats_t before = stats();
  REQUIRE(lock_within(m, 10000));
  REQUIRE(lock_within(x, 10000));  // free while the waiter sleeps; we keep it
  // Our hold of m stays ours (the waiter released m once, before we got it).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(is_locked(m));
  s->ready = true;
  CHECK(weave_cond_signal(&s->c) == 1);  // requeued onto m
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(weave_mutex_unlock(m) == 0);  // handed to the waiter (fairness)
  // We hold x and want m: the textbook deadlock if the waiter kept m while
  // waiting for x. It must let m go, wait for x, and only then re-take m.
  bool got_m = lock_within(m, 10000);
  CHECK(got_m);
  CHECK(stats().handoffs > before.handoffs);
  CHECK(weave_mutex_unlock(x) == 0);
  if (got_m) CHECK(weave_mutex_unlock(m) == 0);
  REQUIRE(waiter.join_within(20000));
  CHECK(s->woke == 1);
  CHECK(s->both_after_wake);
  CHECK_FALSE(s->end_error);
  CHECK(mutex_state(s->pair[0]) == 0);
  CHECK(mutex_state(s->pair[1]) == 0);
}

namespace {
struct SuspendedOuter {
  weave_mutex_t m{}, n{};
  weave_cond_t c{};
  std::atomic<int> phase{0};
  std::atomic<bool> returned{false};
  int first = -9;
  double first_ms = 1e9;
  bool m_held = false, n_held = false, m_held_after_inner_end = false, end_error = true;
};

// Begins a section on m, then one on n, and leaves the outer one suspended
// (as a blocking begin of the inner one would): m is free, n is held.
void suspended_outer_then_wait(SuspendedOuter *s, bool wait_for_holder) {
  WEAVE_BEGIN_CRITICAL_SECTION(&s->m);
  WEAVE_BEGIN_CRITICAL_SECTION(&s->n);
  weave_critical_section_suspend_all();
  weave_critical_section_resume();
  s->phase = 1;
  if (wait_for_holder) {
    while (s->phase.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto t0 = clock_type::now();
  s->first = weave_cond_wait(&s->c, &s->m, 5000 * kMs);
  s->first_ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  s->returned = true;
  s->m_held = is_locked(&s->m);
  s->n_held = is_locked(&s->n);
  prime_error();
  WEAVE_END_CRITICAL_SECTION();
  s->m_held_after_inner_end = is_locked(&s->m);
  WEAVE_END_CRITICAL_SECTION();
  s->end_error = section_error();
}
}  // namespace

TEST_CASE("on the mutex of a suspended outer section: it is re-taken and the wait returns at once (spurious wake)") {
  auto s = std::make_shared<SuspendedOuter>();
  watched_thread waiter([s] { suspended_outer_then_wait(s.get(), false); });
  REQUIRE(waiter.join_within(20000));
  // The caller did not hold m (its section was suspended), so it read its
  // condition without m: sleeping could miss a signal. The wait re-takes m
  // and returns 1 without sleeping; the caller's loop re-checks under m.
  CHECK(s->first == 1);
  CHECK(s->first_ms < 4000);
  CHECK(s->m_held);
  CHECK(s->n_held);
  CHECK(s->m_held_after_inner_end);  // the outer section is active again
  CHECK_FALSE(s->end_error);
  CHECK(mutex_state(s->m) == 0);
  CHECK(mutex_state(s->n) == 0);
}

TEST_CASE("on the mutex of a suspended outer section held by another thread: that hold is left alone") {
  auto s = std::make_shared<SuspendedOuter>();
  watched_thread waiter([s] { suspended_outer_then_wait(s.get(), true); });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  REQUIRE(lock_within(&s->m, 10000));  // free: the waiter's outer section is suspended
  s->phase = 2;
  // The waiter must wait for m, not release our hold and run.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(s->returned.load());
  CHECK(weave_mutex_unlock(&s->m) == 0);  // still ours
  REQUIRE(waiter.join_within(20000));
  CHECK(s->first == 1);
  CHECK(s->m_held);
  CHECK(s->n_held);
  CHECK(s->m_held_after_inner_end);
  CHECK_FALSE(s->end_error);
  CHECK(mutex_state(s->m) == 0);
  CHECK(mutex_state(s->n) == 0);
}

TEST_CASE("on the mutex of a suspended section that cannot be resumed: WEAVE_E_NOT_OWNER, nothing touched") {
  struct State {
    weave_mutex_t m{}, n{};
    weave_cond_t c{};
    std::atomic<int> phase{0};
    int rc = -9;
    bool error_named = false, n_held = false, m_still_held = false, n_resumed = false, m_resumed = false;
  };
  auto s = std::make_shared<State>();
  watched_thread t([s] {
    weave_critical_section_t s1, s2, s3;
    weave_critical_section_begin(&s1, &s->m);
    weave_critical_section_begin(&s2, &s->n);
    weave_critical_section_suspend_all();   // s1 and s2 suspended, m and n free
    weave_critical_section_begin(&s3, &s->n);  // a new section on n, inside the suspended s2
    s->phase = 1;
    while (s->phase.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // m is the test thread's now. Resuming s1 would make s2 and s3 active
    // together, both holding n: refused, and the test's hold of m untouched.
    s->rc = weave_cond_wait(&s->c, &s->m, 50 * kMs);
    s->error_named = last_error_has("weave_cond_wait: the mutex belongs to a suspended critical section");
    s->n_held = is_locked(&s->n);
    s->m_still_held = is_locked(&s->m);
    s->phase = 3;
    while (s->phase.load() != 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    weave_critical_section_end(&s3);  // resumes s2 (n)
    s->n_resumed = is_locked(&s->n);
    weave_critical_section_end(&s2);  // resumes s1 (m)
    s->m_resumed = is_locked(&s->m);
    weave_critical_section_end(&s1);
  });
  REQUIRE(wait_until([&] { return s->phase.load() == 1; }));
  REQUIRE(lock_within(&s->m, 10000));
  s->phase = 2;
  REQUIRE(wait_until([&] { return s->phase.load() == 3; }));
  CHECK(weave_mutex_unlock(&s->m) == 0);  // still ours
  s->phase = 4;
  REQUIRE(t.join_within(10000));
  CHECK(s->rc == WEAVE_E_NOT_OWNER);
  CHECK(s->error_named);
  CHECK(s->n_held);
  CHECK(s->m_still_held);
  CHECK(s->n_resumed);
  CHECK(s->m_resumed);
  CHECK(mutex_state(s->m) == 0);
  CHECK(mutex_state(s->n) == 0);
  CHECK(s->c.v == 0);
}

namespace {
struct SectionQueue {
  static constexpr int kItems = 20000, kCapacity = 8, kThreads = 2;
  weave_mutex_t m{};
  weave_cond_t not_empty{}, not_full{};
  weave_mutex_t own[2 * kThreads] = {};  // one outer section per thread
  int ring[kCapacity] = {};              // protected by m, as the fields below
  int head = 0, size = 0, taken = 0;
  std::vector<uint8_t> seen = std::vector<uint8_t>(kItems, 0);
  std::atomic<int> errors{0};
};
}  // namespace

TEST_CASE("producer/consumer inside nested sections, with 200 us timed waits racing signals and requeues") {
  auto q = std::make_shared<SectionQueue>();
  constexpr int64_t kWait = 200 * 1000;
  std::vector<std::unique_ptr<watched_thread>> threads;
  for (int p = 0; p < SectionQueue::kThreads; p++) {
    threads.emplace_back(new watched_thread([q, p] {
      for (int item = p; item < SectionQueue::kItems; item += SectionQueue::kThreads) {
        WEAVE_BEGIN_CRITICAL_SECTION(&q->own[p]);
        WEAVE_BEGIN_CRITICAL_SECTION(&q->m);
        while (q->size == SectionQueue::kCapacity) {
          q->errors += weave_cond_wait(&q->not_full, &q->m, kWait) < 0;
          q->errors += !is_locked(&q->m);
        }
        q->ring[(q->head + q->size) % SectionQueue::kCapacity] = item;
        q->size++;
        q->errors += weave_cond_signal(&q->not_empty) < 0;
        WEAVE_END_CRITICAL_SECTION();
        WEAVE_END_CRITICAL_SECTION();
      }
    }));
  }
  for (int k = 0; k < SectionQueue::kThreads; k++) {
    threads.emplace_back(new watched_thread([q, k] {
      bool more = true;
      while (more) {
        WEAVE_BEGIN_CRITICAL_SECTION(&q->own[SectionQueue::kThreads + k]);
        WEAVE_BEGIN_CRITICAL_SECTION(&q->m);
        while (q->size == 0 && q->taken < SectionQueue::kItems) {
          q->errors += weave_cond_wait(&q->not_empty, &q->m, kWait) < 0;
          q->errors += !is_locked(&q->m);
        }
        if (q->taken == SectionQueue::kItems) {
          more = false;
        } else {
          int item = q->ring[q->head];
          q->head = (q->head + 1) % SectionQueue::kCapacity;
          q->size--;
          q->taken++;
          q->seen[item]++;
          q->errors += weave_cond_signal(&q->not_full) < 0;
          if (q->taken == SectionQueue::kItems) q->errors += weave_cond_broadcast(&q->not_empty) < 0;
        }
        WEAVE_END_CRITICAL_SECTION();
        WEAVE_END_CRITICAL_SECTION();
      }
    }));
  }
  for (auto &t : threads) REQUIRE(t->join_within(60000));
  CHECK(q->errors.load() == 0);
  CHECK(q->taken == SectionQueue::kItems);
  int wrong = 0;
  for (uint8_t v : q->seen) wrong += v != 1;
  CHECK(wrong == 0);
  CHECK(mutex_state(q->m) == 0);
  for (auto &o : q->own) CHECK(mutex_state(o) == 0);
}

namespace {

// A notification (sent without the mutex) finds the mutex held by another
// thread and moves `kWaiters` waiters onto it (or, if that thread released
// it first, wakes one and moves the rest), while that holder's unlock (a
// release store, then a load of _parked) runs at a varying moment against
// it. The waiters' count in _parked must send that unlock to the slow path.
// Nobody else touches the mutex, so a moved waiter that every unlock missed
// would only come back through its 2 s timeout: a round that takes more
// than 1 s fails the test. Spins yield, so that valgrind's one-at-a-time
// scheduling still runs every thread. Bounded: about 1.5 s.
template <int kWaiters>
void notify_racing_unlock(int (*notify)(weave_cond_t *)) {
  weave_mutex_t m = {0};
  weave_cond_t c = {0};
  std::atomic<int> generation{0}, go_holder{0}, holding{0};
  std::atomic<int> ready[kWaiters] = {}, seen[kWaiters] = {};
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  auto waiter_fn = [&](int i) {
    weave_mutex_lock(&m);
    while (!stop.load()) {
      ready[i].store(seen[i].load() + 1);
      errors += weave_cond_wait(&c, &m, 2000 * kMs) < 0;
      int g = generation.load();
      if (g > seen[i].load()) seen[i].store(g);
    }
    errors += weave_mutex_unlock(&m) != 0;
  };
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; i++) waiters.emplace_back(waiter_fn, i);
  std::thread holder([&] {
    for (int round = 1;; round++) {
      while (go_holder.load() < round) {
        if (stop.load()) return;
        std::this_thread::yield();
      }
      weave_mutex_lock(&m);
      holding.store(round);
      auto until = clock_type::now() + std::chrono::nanoseconds((round * 7919) % 20000);
      while (clock_type::now() < until) {
      }
      errors += weave_mutex_unlock(&m) != 0;
    }
  });
  auto all_at_least = [&](std::atomic<int> *v, int n) {
    for (int i = 0; i < kWaiters; i++) {
      if (v[i].load() < n) return false;
    }
    return true;
  };
  auto deadline = clock_type::now() + std::chrono::milliseconds(1500);
  int rounds = 0;
  int64_t slowest_ns = 0;
  bool lost = false;
  for (int round = 1; clock_type::now() < deadline; round++) {
    while (!all_at_least(ready, round)) {
      std::this_thread::yield();
    }
    go_holder.store(round);
    // The holder has m, which it got after every waiter released it: all
    // are queued on c.
    while (holding.load() < round) {
      std::this_thread::yield();
    }
    auto t0 = clock_type::now();
    generation.store(round);
    notify(&c);
    while (!all_at_least(seen, round) && clock_type::now() - t0 < std::chrono::seconds(3)) {
      std::this_thread::yield();
    }
    slowest_ns = std::max<int64_t>(slowest_ns, (clock_type::now() - t0).count());
    rounds = round;
    if (!all_at_least(seen, round)) {
      lost = true;
      break;
    }
  }
  stop = true;
  if (!lost) {
    while (!all_at_least(ready, rounds + 1)) {  // all back in (or entering) their wait
      std::this_thread::yield();
    }
  }
  weave_mutex_lock(&m);
  generation.store(rounds + 1);
  weave_cond_broadcast(&c);
  errors += weave_mutex_unlock(&m) != 0;
  for (auto &w : waiters) w.join();
  holder.join();
  INFO("rounds " << rounds << ", slowest round " << slowest_ns / kMs << " ms");
  CHECK(errors.load() == 0);
  CHECK_FALSE(lost);
  CHECK(rounds >= 10);  // about 50 under valgrind, thousands natively
  CHECK(slowest_ns < 1000 * kMs);
  CHECK(mutex_state(m) == 0);
}

}  // namespace

TEST_CASE("requeue onto the two-byte mutex racing its unlock loses no wake-up") {
  notify_racing_unlock<1>(weave_cond_signal);
}

TEST_CASE("broadcast moving waiters onto the two-byte mutex racing its unlock loses no wake-up") {
  notify_racing_unlock<2>(weave_cond_broadcast);
}
