// Small helpers shared by the lock and parking-lot suites: clocks, statistics,
// polling with a bound, and joinable native threads.
#pragma once

#include "weave_test.hpp"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <functional>
#include <memory>

namespace ftw_test {

inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void sleep_ns(int64_t ns) {
  timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

inline void sleep_ms(int ms) { sleep_ns(int64_t(ms) * 1000000); }

inline weave_stats_t stats() {
  weave_stats_t s{};
  REQUIRE(weave_stats(&s) == 0);
  return s;
}

// Polls pred until it holds or timeout_ms passed; returns whether it held.
// The bounds are generous: they only keep a broken build from hanging CTest.
inline bool wait_until(const std::function<bool()> &pred, int timeout_ms = 10000) {
  int64_t deadline = now_ns() + int64_t(timeout_ms) * 1000000;
  while (!pred()) {
    if (now_ns() > deadline) {
      return pred();
    }
    sleep_ns(100000);  // 0.1 ms
  }
  return true;
}

// A native pthread running fn; joined by join() or the destructor. Worker
// code must not use Catch2 assertions (not thread-safe): record results and
// check them on the test's thread after join().
class native_thread {
 public:
  explicit native_thread(std::function<void()> fn) : fn_(new std::function<void()>(std::move(fn))) {
    int rc = pthread_create(
        &tid_, nullptr,
        [](void *p) -> void * {
          (*static_cast<std::function<void()> *>(p))();
          return nullptr;
        },
        fn_.get());
    REQUIRE(rc == 0);
    joinable_ = true;
  }
  native_thread(const native_thread &) = delete;
  native_thread &operator=(const native_thread &) = delete;
  ~native_thread() { join(); }
  void join() {
    if (joinable_) {
      pthread_join(tid_, nullptr);
      joinable_ = false;
    }
  }

 private:
  std::unique_ptr<std::function<void()>> fn_;
  pthread_t tid_{};
  bool joinable_ = false;
};

}  // namespace ftw_test
