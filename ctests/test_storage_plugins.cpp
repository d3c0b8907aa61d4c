// A host plus two dlopen()ed plugins (storage_plugin_a.so, storage_plugin_b.so,
// both built from plugins/storage_plugin.c) share per-thread and static values
// through ft_weave's storage, where their own thread_local copies differ.
#include "weave_test.hpp"

#include <dlfcn.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

struct Plugin {
  void *handle = nullptr;
  long (*bump_tls)() = nullptr;
  long (*bump_static)() = nullptr;
  long (*bump_own)() = nullptr;
  int (*own_key)() = nullptr;
  long (*destructor_calls)() = nullptr;

  explicit Plugin(const char *path) {
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    INFO(path << ": " << (handle ? "" : dlerror()));
    REQUIRE(handle != nullptr);
    bump_tls = reinterpret_cast<long (*)()>(dlsym(handle, "plugin_bump_tls"));
    bump_static = reinterpret_cast<long (*)()>(dlsym(handle, "plugin_bump_static"));
    bump_own = reinterpret_cast<long (*)()>(dlsym(handle, "plugin_bump_own_thread_local"));
    own_key = reinterpret_cast<int (*)()>(dlsym(handle, "plugin_own_key"));
    destructor_calls = reinterpret_cast<long (*)()>(dlsym(handle, "plugin_destructor_calls"));
    REQUIRE(bump_tls);
    REQUIRE(bump_static);
    REQUIRE(bump_own);
    REQUIRE(own_key);
    REQUIRE(destructor_calls);
  }
};

long host_bump_tls() {
  long *counter = static_cast<long *>(weave_tls_get("demo:counter", sizeof(long), nullptr, nullptr));
  return counter ? ++*counter : -1;
}

long host_bump_static() {
  long *counter = static_cast<long *>(weave_static_get("demo:static", sizeof(long), nullptr, nullptr));
  return counter ? __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED) : -1;
}

}  // namespace

TEST_CASE("host and two plugins share one per-thread value and one static, while their own thread_locals differ") {
  Plugin a(FTW_PLUGIN_A), b(FTW_PLUGIN_B);
  CHECK(host_bump_tls() == 1);
  CHECK(a.bump_tls() == 2);
  CHECK(b.bump_tls() == 3);
  CHECK(host_bump_tls() == 4);
  CHECK(a.bump_own() == 1);  // each plugin copy has its own thread_local ...
  CHECK(b.bump_own() == 1);
  CHECK(a.bump_own() == 2);

  // ... and another thread has its own "demo:counter", shared by the three binaries.
  std::thread([&] {
    long values[3] = {b.bump_tls(), host_bump_tls(), a.bump_tls()};
    CHECK(values[0] == 1);
    CHECK(values[1] == 2);
    CHECK(values[2] == 3);
  }).join();
  CHECK(host_bump_tls() == 5);

  // The static is one value for every binary and thread.
  constexpr int kThreads = 4, kIters = 1000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      for (int n = 0; n < kIters; n++) {
        host_bump_static();
        a.bump_static();
        b.bump_static();
      }
    });
  }
  for (auto &t : threads) t.join();
  CHECK(host_bump_static() == 3L * kThreads * kIters + 1);
}

TEST_CASE("after reset + dlclose nothing calls into the unloaded plugin") {
  Plugin a(FTW_PLUGIN_A);
  Plugin b(FTW_PLUGIN_B);
  REQUIRE(a.own_key() == 0);  // destructor inside plugin A

  // A thread gets its value (A's destructor would run at its exit) and waits.
  std::atomic<int> phase{0};
  std::thread holder([&] {
    REQUIRE(weave_tls_get("demo:owned", sizeof(long), nullptr, nullptr) != nullptr);
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    // Its next storage call frees the old value without A's destructor.
    long *fresh = static_cast<long *>(weave_tls_get("demo:owned", sizeof(long), nullptr, nullptr));
    if (fresh) *fresh = 1;
  });
  while (phase.load() != 1) std::this_thread::yield();

  // The same on a thread that only exits after the unload.
  std::atomic<int> phase2{0};
  std::thread exiter([&] {
    REQUIRE(weave_tls_get("demo:owned", sizeof(long), nullptr, nullptr) != nullptr);
    phase2 = 1;
    while (phase2.load() != 2) std::this_thread::yield();
  });
  while (phase2.load() != 1) std::this_thread::yield();

  CHECK(a.destructor_calls() == 0);
  CHECK(weave_storage_reset() >= 0);
  REQUIRE(dlclose(a.handle) == 0);
  phase = 2;
  phase2 = 2;
  holder.join();   // would crash here if A's destructor were called
  exiter.join();
  // Plugin B and the host go on working after the unload.
  CHECK(b.bump_tls() == 1);
  CHECK(host_bump_tls() == 2);
}
