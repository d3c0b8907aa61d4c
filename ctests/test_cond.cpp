// ft_weave.h section 4, "Condition variable": a condition over a
// weave_mutex_t whose signals requeue waiters onto the mutex.
//
// Catch2 assertions are not thread-safe: worker threads record what they saw
// and the main thread checks it after joining them.
#include "weave_test.hpp"

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
  CHECK(m._bits == 0);

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
  CHECK(m._bits == 0);

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
  CHECK(m._bits == 0);
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
  CHECK(m._bits == (WEAVE_MUTEX_LOCKED | WEAVE_MUTEX_HAS_PARKED));
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
  CHECK(m._bits == 0);
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
  CHECK(m._bits == 0);
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
  CHECK(m._bits == 0);
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
  CHECK(m1._bits == 0);
  CHECK(m2._bits == 0);
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
  CHECK(m._bits == 0);
}

}  // namespace

TEST_CASE("producer/consumer: 4 x 4 threads move 100000 items and none is lost") {
  producer_consumer(-1);
}

TEST_CASE("producer/consumer with 200 us timed waits racing the signals") {
  producer_consumer(200 * 1000);
}
