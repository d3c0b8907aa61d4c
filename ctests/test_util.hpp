// Small helpers shared by the lock and parking-lot suites: clocks, statistics,
// polling with a bound, and joinable native threads.
#pragma once

#include "weave_test.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// The library's exported copy of a function the header also defines inline,
// looked up with dlsym so that the compiler cannot substitute the inline one.
template <typename F>
F *exported(const char *name) {
  void *p = dlsym(RTLD_DEFAULT, name);
  REQUIRE(p != nullptr);
  F *f = nullptr;
  std::memcpy(&f, &p, sizeof f);
  return f;
}

// Fork tests: a loop of a thread that allocates stops here while `pause` is
// set (under ASan, see kPauseAllocatorsAroundFork), counted in `paused`.
inline void pause_point(const std::atomic<int> &pause, std::atomic<int> &paused) {
  if (pause.load() != 0) {
    paused++;
    while (pause.load() != 0) sleep_ms(1);
    paused--;
  }
}

// Gets thread-local and static storage values for keys "<prefix><k % keys>"
// until `stop` is set, so that the registry lock is often held (and a
// static's init often running); counts each pair in `ops`.
inline void churn_storage_keys(const std::string &prefix, uint64_t keys, const std::atomic<int> &stop,
                               const std::atomic<int> &pause, std::atomic<int> &paused,
                               std::atomic<uint64_t> &ops) {
  for (uint64_t k = 0; stop.load() == 0; ++k) {
    pause_point(pause, paused);
    std::string key = prefix + std::to_string(k % keys);
    weave_tls_get(key.c_str(), 8, nullptr, nullptr);
    weave_static_get(("s" + key).c_str(), 8, nullptr, nullptr);
    ops++;
  }
}

inline bool last_error_has(const char *text) {
  return std::string(weave_last_error()).find(text) != std::string::npos;
}

// Puts an unrelated message into weave_last_error, so that a later check for
// `name` (a function-name prefix) proves the call under test wrote it.
inline void prime_last_error(const char *name) {
  REQUIRE(weave_register_destructor(nullptr, nullptr) == WEAVE_E_INVALID);
  REQUIRE_FALSE(last_error_has(name));
}

// A group of native pthreads, each running its own function; join() waits for
// all (the destructor too). Same rule as native_thread for assertions.
class thread_group {
 public:
  thread_group() = default;
  thread_group(const thread_group &) = delete;
  thread_group &operator=(const thread_group &) = delete;
  void start(std::function<void()> fn) {
    auto *heap = new std::function<void()>(std::move(fn));
    pthread_t t;
    REQUIRE(pthread_create(
                &t, nullptr,
                [](void *p) -> void * {
                  auto *f = static_cast<std::function<void()> *>(p);
                  (*f)();
                  delete f;
                  return nullptr;
                },
                heap) == 0);
    threads_.push_back(t);
  }
  void join() {
    for (pthread_t t : threads_) REQUIRE(pthread_join(t, nullptr) == 0);
    threads_.clear();
  }
  ~thread_group() {
    for (pthread_t t : threads_) pthread_join(t, nullptr);
  }

 private:
  std::vector<pthread_t> threads_;
};

// A thread for code that may hang in a broken build: join_within() waits a
// bounded time and, if the thread has not finished, detaches it and returns
// false, so the test fails instead of hanging. Keep the thread's state in a
// std::shared_ptr captured by value: a hung thread may outlive the test's
// stack frame. Same rule as native_thread for assertions.
class watched_thread {
 public:
  explicit watched_thread(std::function<void()> fn) : done_(std::make_shared<std::atomic<bool>>(false)) {
    auto done = done_;
    thread_ = std::thread([done, fn] {
      fn();
      done->store(true);
    });
  }
  watched_thread(const watched_thread &) = delete;
  watched_thread &operator=(const watched_thread &) = delete;
  ~watched_thread() { join_within(0); }
  bool join_within(int timeout_ms) {
    if (!thread_.joinable()) return done_->load();
    bool done = wait_until([this] { return done_->load(); }, timeout_ms);
    if (done) {
      thread_.join();
    } else {
      thread_.detach();
    }
    return done;
  }

 private:
  std::shared_ptr<std::atomic<bool>> done_;
  std::thread thread_;
};

}  // namespace ftw_test
