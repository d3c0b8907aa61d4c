// Shared by every ctests suite: the Catch2 include that works with v2 (Debian)
// and v3 (vcpkg), and small helpers for running native threads.
#pragma once

#if defined(FT_WEAVE_CATCH2_V3)
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <ft_weave.h>

#include <pthread.h>

#include <functional>
#include <vector>

namespace ftw_test {

// Runs fn on a native pthread (not std::thread, so that the tests show plain
// C threads work) and joins it. pthread_join returns only after the thread's
// thread-exit destructors have run.
inline void run_pthread(std::function<void()> fn, bool use_pthread_exit = false) {
  struct Ctx {
    std::function<void()> fn;
    bool exit;
  } ctx{std::move(fn), use_pthread_exit};
  pthread_t t;
  int rc = pthread_create(
      &t, nullptr,
      [](void *p) -> void * {
        auto *c = static_cast<Ctx *>(p);
        c->fn();
        if (c->exit) {
          pthread_exit(nullptr);
        }
        return nullptr;
      },
      &ctx);
  REQUIRE(rc == 0);
  REQUIRE(pthread_join(t, nullptr) == 0);
}

}  // namespace ftw_test
