// ft_weave.h section 4, "Event": one-shot event (CPython's PyEvent).
#include "weave_test.hpp"
#include "test_util.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace ftw_test;
using Threads = thread_group;

constexpr int64_t kMs = 1000 * 1000;

// The exported copy of a header function, not the inline one.
// Leaves a known, unrelated message in weave_last_error(), so that a later
// check sees whether a void function recorded its own.
// Native threads started together and joined by the destructor.
// Polls (up to ~1 s) until the event's byte is `value`.
bool byte_becomes(const weave_event_t &e, uint8_t value) {
  for (int i = 0; i < 100; i++) {
    if (__atomic_load_n(&e.v, __ATOMIC_ACQUIRE) == value) return true;
    usleep(10 * 1000);
  }
  return __atomic_load_n(&e.v, __ATOMIC_ACQUIRE) == value;
}

}  // namespace

TEST_CASE("a zero event is unset and a timed wait on it times out") {
  weave_event_t e = {0};
  CHECK(weave_event_is_set(&e) == 0);

  // Timeout 0: one look, no sleep, and no waiter announced.
  auto t0 = Clock::now();
  CHECK(weave_event_wait_timed(&e, 0, 0) == 0);
  CHECK(weave_event_wait_slow(&e, 0, 1) == 0);
  CHECK(ms_since(t0) < 100);
  CHECK(e.v == 0);

  // 1 ms: returns 0 after about that long.
  t0 = Clock::now();
  CHECK(weave_event_wait_timed(&e, kMs, 0) == 0);
  double elapsed = ms_since(t0);
  CHECK(elapsed >= 1.0);
  CHECK(elapsed < 500);
  // The waiter announced itself (2) and left; both values mean "not set".
  CHECK((e.v == 0 || e.v == WEAVE_EVENT_HAS_PARKED));

  t0 = Clock::now();
  CHECK(weave_event_wait_timed(&e, 50 * kMs, 1) == 0);
  elapsed = ms_since(t0);
  CHECK(elapsed >= 50);
  CHECK(elapsed < 1000);
  CHECK(weave_event_is_set(&e) == 0);
}

TEST_CASE("notify before wait: the wait returns at once and the event stays set") {
  weave_event_t e = {0};
  weave_event_notify(&e);
  CHECK(e.v == WEAVE_EVENT_SET);
  CHECK(weave_event_is_set(&e) == 1);
  auto t0 = Clock::now();
  weave_event_wait(&e);
  CHECK(weave_event_wait_timed(&e, -1, 1) == 1);
  CHECK(weave_event_wait_timed(&e, 0, 0) == 1);
  CHECK(weave_event_wait_slow(&e, 0, 0) == 1);
  CHECK(weave_event_wait_slow(&e, -1, 0) == 1);
  CHECK(ms_since(t0) < 100);
  weave_event_notify(&e);  // idempotent
  CHECK(e.v == WEAVE_EVENT_SET);
}

TEST_CASE("one notify wakes every waiter and publishes the notifier's writes") {
  constexpr int kWaiters = 8;
  static weave_event_t e;
  static int payload;
  static std::atomic<int> woken, saw_payload, started;
  e = weave_event_t{0};
  payload = 0;
  woken = 0;
  saw_payload = 0;
  started = 0;
  Threads threads;
  for (int i = 0; i < kWaiters; i++) {
    threads.start([i] {
      started.fetch_add(1);
      int r;
      if (i % 2 == 0) {
        r = weave_event_wait_timed(&e, 10 * 1000 * kMs, 1);
      } else {
        weave_event_wait(&e);
        r = weave_event_is_set(&e);
      }
      if (r == 1) woken.fetch_add(1);
      if (payload == 42) saw_payload.fetch_add(1);
    });
  }
  while (started.load() != kWaiters) sched_yield();
  REQUIRE(byte_becomes(e, WEAVE_EVENT_HAS_PARKED));
  usleep(20 * 1000);  // let the last waiters queue up
  CHECK(woken.load() == 0);
  payload = 42;
  weave_event_notify(&e);
  threads.join();
  CHECK(woken.load() == kWaiters);
  CHECK(saw_payload.load() == kWaiters);
  CHECK(e.v == WEAVE_EVENT_SET);
}

TEST_CASE("a timed wait is not ended early by spurious wake-ups") {
  static weave_event_t e;
  static std::atomic<int> result;
  static std::atomic<bool> waiting;
  e = weave_event_t{0};
  result = -1000;
  waiting = false;

  SECTION("unparks of the event's address that do not set it") {
    Threads threads;
    auto t0 = Clock::now();
    threads.start([] {
      waiting = true;
      result = weave_event_wait_timed(&e, 200 * kMs, 0);
    });
    while (!waiting.load()) sched_yield();
    int kicks = 0;
    while (ms_since(t0) < 150) {
      kicks += weave_unpark_all(&e);
      usleep(5 * 1000);
    }
    threads.join();
    CHECK(kicks > 0);
    CHECK(result.load() == 0);
    CHECK(ms_since(t0) >= 200);
  }

  SECTION("signals (EINTR) while parked") {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the futex wait returns EINTR
    struct sigaction old;
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    static pthread_t waiter;
    static Clock::time_point t0;
    Threads threads;
    t0 = Clock::now();
    threads.start([] {
      waiter = pthread_self();
      waiting = true;
      result = weave_event_wait_timed(&e, 200 * kMs, 0);
    });
    while (!waiting.load()) sched_yield();
    while (ms_since(t0) < 150) {
      pthread_kill(waiter, SIGUSR1);
      usleep(10 * 1000);
    }
    threads.join();
    sigaction(SIGUSR1, &old, nullptr);
    CHECK(result.load() == 0);
    CHECK(ms_since(t0) >= 200);
  }

  SECTION("and a notify during the wait still ends it with 1") {
    Threads threads;
    threads.start([] {
      waiting = true;
      result = weave_event_wait_timed(&e, 10 * 1000 * kMs, 0);
    });
    while (!waiting.load()) sched_yield();
    weave_unpark_all(&e);
    usleep(20 * 1000);
    weave_unpark_all(&e);
    weave_event_notify(&e);
    threads.join();
    CHECK(result.load() == 1);
  }
}

TEST_CASE("the exported copies of the inline functions behave the same") {
  auto is_set = exported<int(const weave_event_t *)>("weave_event_is_set");
  auto wait = exported<void(weave_event_t *)>("weave_event_wait");
  auto wait_timed = exported<int(weave_event_t *, int64_t, int)>("weave_event_wait_timed");
  auto notify = exported<void(weave_event_t *)>("weave_event_notify");
  auto wait_slow = exported<int(weave_event_t *, int64_t, int)>("weave_event_wait_slow");

  weave_event_t e = {0};
  CHECK(is_set(&e) == 0);
  CHECK(wait_timed(&e, 0, 0) == 0);
  CHECK(e.v == 0);
  auto t0 = Clock::now();
  CHECK(wait_timed(&e, kMs, 1) == 0);
  CHECK(ms_since(t0) >= 1.0);
  CHECK(wait_slow(&e, 0, 0) == 0);
  CHECK(is_set(nullptr) == 0);

  static weave_event_t shared;
  static std::atomic<int> woken;
  shared = weave_event_t{0};
  woken = 0;
  {
    Threads threads;
    threads.start([&] {
      wait(&shared);
      woken.fetch_add(1);
    });
    threads.start([&] {
      if (wait_timed(&shared, 10 * 1000 * kMs, 1) == 1) woken.fetch_add(1);
    });
    REQUIRE(byte_becomes(shared, WEAVE_EVENT_HAS_PARKED));
    notify(&shared);
    threads.join();
  }
  CHECK(woken.load() == 2);
  CHECK(is_set(&shared) == 1);
  wait(&shared);
  CHECK(wait_timed(&shared, 0, 0) == 1);

  // NULL, exactly as the inline functions.
  prime_last_error("weave_event");
  wait(nullptr);
  CHECK(last_error_has("weave_event_wait"));
  CHECK(wait_timed(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(wait_slow(nullptr, -1, 1) == WEAVE_E_INVALID);
  prime_last_error("weave_event");
  notify(nullptr);
  CHECK(last_error_has("weave_event_notify"));
}

TEST_CASE("event functions reject NULL and the process goes on") {
  CHECK(weave_event_is_set(nullptr) == 0);
  CHECK(weave_event_wait_timed(nullptr, -1, 1) == WEAVE_E_INVALID);
  CHECK(last_error_has("NULL"));
  CHECK(weave_event_wait_slow(nullptr, 0, 0) == WEAVE_E_INVALID);
  prime_last_error("weave_event");
  weave_event_wait(nullptr);
  CHECK(last_error_has("weave_event_wait: event is NULL"));
  prime_last_error("weave_event");
  weave_event_notify(nullptr);
  CHECK(last_error_has("weave_event_notify: event is NULL"));
  CHECK(std::string(weave_strerror(WEAVE_E_INVALID)).rfind("WEAVE_E_INVALID", 0) == 0);
}
