// fork and the storage registry (ft_weave.h section 6, docs/storage.md "fork").
//
// The registry has no pthread_atfork handler: fork() runs none of the
// library's code (which is managed code: a handler would attach the forking
// thread to the .NET runtime inside fork(), and enter the runtime in the child
// while its locks may be held by threads that do not exist there). A child
// finds the registry lock free and repairs what parent threads left half-done
// at its first registry operation. These cases fork from a thread that never
// called the library while other threads hold and wait for the registry lock,
// initialise statics and wait for them.
//
// Related: test_faults.cpp forks while every lock kind is held (storage
// included), and a static's init runs on another thread.
#include "test_util.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;
using ftw_test::sleep_ms;
using ftw_test::stats;
using ftw_test::kPauseAllocatorsAroundFork;
using ftw_test::wait_child;
using ftw_test::wait_until;

namespace {



// fork() on a fresh pthread that has never called the library; the child runs
// child_main and _exits with its result. Returns the child's pid (or -1).
// quiesce: fork_quiesced (waits for the other threads to sleep under ASan),
// for children that allocate.
pid_t fork_from_fresh_thread(int (*child_main)(void *), void *arg, bool quiesce = true) {
  struct ctx {
    int (*child_main)(void *);
    void *arg;
    pid_t pid;
    bool quiesce;
  } c{child_main, arg, -1, quiesce};
  pthread_t t;
  REQUIRE(pthread_create(
              &t, nullptr,
              [](void *p) -> void * {
                auto *c = static_cast<ctx *>(p);
                pid_t pid = c->quiesce ? ftw_test::fork_quiesced() : fork();
                if (pid == 0) _exit(c->child_main(c->arg));
                c->pid = pid;
                return nullptr;
              },
              &c) == 0);
  REQUIRE(pthread_join(t, nullptr) == 0);
  return c.pid;
}

// ---- the child uses storage ---------------------------------------------------

struct busy_parent {
  std::atomic<int> stop{0};
  std::atomic<int> pause{0};  // kPauseAllocatorsAroundFork
  std::atomic<int> paused{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<int> release_inits{0};
  std::atomic<int> inits_running{0};
  long *published = nullptr;  // a static published before the forks
};
busy_parent *g_parent;

constexpr int kSlowStatics = 2;

int slow_parent_init(void *storage, void *) {
  g_parent->inits_running++;
  while (g_parent->release_inits.load() == 0) sleep_ms(1);
  *static_cast<int *>(storage) = 1;
  return 0;
}

int child_init(void *storage, void *) {
  *static_cast<int *>(storage) = 2;
  return 0;
}

std::atomic<int> child_race_inits{0};
int child_race_init(void *storage, void *) {
  child_race_inits++;
  sleep_ms(5);  // the other threads of the child wait (park) meanwhile
  *static_cast<int *>(storage) = 3;
  return 0;
}

// In the child (only the forking thread exists). Returns 0 or the first failed step.
int child_uses_storage(void *) {
  busy_parent *p = g_parent;
  // A static published by the parent before fork: same pointer, same contents.
  long *published = static_cast<long *>(weave_static_get("storage.fork:published", sizeof(long), nullptr, nullptr));
  if (published != p->published || published == nullptr || *published != 4242) return 10;
  // Statics whose init runs on a parent thread (others were parked waiting for
  // it): nobody here will finish those inits; the child runs its own.
  for (int i = 0; i < kSlowStatics; ++i) {
    std::string key = "storage.fork:slow." + std::to_string(i);
    int *v = static_cast<int *>(weave_static_get(key.c_str(), sizeof(int), child_init, nullptr));
    if (v == nullptr || *v != 2) return 11;
    if (weave_static_get(key.c_str(), sizeof(int), child_init, nullptr) != v) return 12;
  }
  // Keys the parent's threads were creating at the moment of fork (one may
  // have been half-inserted, the registry lock held or waited for), and new ones.
  for (int u = 0; u < 3; ++u) {
    for (int k = 0; k < 40; ++k) {
      std::string key = "storage.fork:churn." + std::to_string(u) + "." + std::to_string(k);
      if (weave_tls_get(key.c_str(), 8, nullptr, nullptr) == nullptr) return 13;
      if (weave_static_get(("s" + key).c_str(), 8, nullptr, nullptr) == nullptr) return 14;
    }
  }
  for (int k = 0; k < 300; ++k) {  // enough to grow the registry's table
    std::string key = "storage.fork:child." + std::to_string(k);
    void *t = weave_tls_get(key.c_str(), 16, nullptr, nullptr);
    if (t == nullptr || weave_tls_get(key.c_str(), 16, nullptr, nullptr) != t) return 15;
    if (weave_static_get(("s" + key).c_str(), 16, nullptr, nullptr) == nullptr) return 16;
  }
  // New threads of the child race on a new static: one init, one value.
  child_race_inits = 0;
  std::vector<pthread_t> threads(4);
  std::vector<void *> got(threads.size(), nullptr);
  for (size_t i = 0; i < threads.size(); ++i) {
    if (pthread_create(
            &threads[i], nullptr,
            [](void *slot) -> void * {
              *static_cast<void **>(slot) =
                  weave_static_get("storage.fork:child-race", sizeof(int), child_race_init, nullptr);
              weave_tls_get("storage.fork:churn.0.0", 8, nullptr, nullptr);
              return nullptr;
            },
            &got[i]) != 0) {
      return 17;
    }
  }
  for (auto &t : threads) pthread_join(t, nullptr);
  if (child_race_inits.load() != 1) return 18;
  for (void *g : got) {
    if (g == nullptr || g != got[0] || *static_cast<int *>(g) != 3) return 19;
  }
  // A reset in the child: everything fresh afterwards.
  if (weave_storage_reset() < 1) return 20;
  long *again = static_cast<long *>(weave_static_get("storage.fork:published", sizeof(long), nullptr, nullptr));
  if (again == nullptr || *again != 0) return 21;
  return 0;
}

}  // namespace

TEST_CASE("fork from a thread that never called the library, while threads hold and wait for the registry lock and "
          "initialise statics: the child uses storage", "[registry]") {
  busy_parent parent;
  g_parent = &parent;
  parent.published = static_cast<long *>(weave_static_get("storage.fork:published", sizeof(long), nullptr, nullptr));
  REQUIRE(parent.published != nullptr);
  *parent.published = 4242;
  std::vector<std::unique_ptr<native_thread>> threads;
  auto spawn = [&](std::function<void()> fn) { threads.push_back(std::make_unique<native_thread>(std::move(fn))); };

  // Statics whose init is running on a parent thread at every fork, with two
  // more threads parked waiting for each.
  uint64_t parks = stats().parks;
  for (int i = 0; i < kSlowStatics; ++i) {
    std::string key = "storage.fork:slow." + std::to_string(i);
    for (int w = 0; w < 3; ++w) {
      spawn([&parent, key] {
        int *v = static_cast<int *>(weave_static_get(key.c_str(), sizeof(int), slow_parent_init, nullptr));
        if (v == nullptr || *v != 1) parent.ops += 1000000000;  // fails the final check
      });
    }
  }
  REQUIRE(wait_until([&] { return parent.inits_running.load() == kSlowStatics; }));
  REQUIRE(wait_until([&] { return stats().parks >= parks + 2 * kSlowStatics; }));

  // Threads creating keys all the time: the registry lock is held, and waited
  // for, much of the time.
  for (int u = 0; u < 3; ++u) {
    spawn([&parent, u] {
      ftw_test::churn_storage_keys("storage.fork:churn." + std::to_string(u) + ".", 3000, parent.stop,
                                   parent.pause, parent.paused, parent.ops);
    });
  }
  REQUIRE(wait_until([&] { return parent.ops.load() > 1000; }));

  std::vector<int> results;
  for (int round = 0; round < 8; ++round) {
    if (kPauseAllocatorsAroundFork) {
      parent.pause = 1;
      REQUIRE(wait_until([&] { return parent.paused.load() == 3; }));
    }
    pid_t pid = fork_from_fresh_thread(child_uses_storage, nullptr);
    parent.pause = 0;
    results.push_back(pid < 0 ? 400 : wait_child(pid, 20000));
  }
  for (size_t r = 0; r < results.size(); ++r) {
    INFO("fork round " << r << ": child status " << results[r] << " (250 = hung, 2xx = signal)");
    CHECK(results[r] == 0);
  }

  // The parent is unaffected.
  parent.stop = 1;
  parent.release_inits = 1;
  for (auto &t : threads) t->join();
  CHECK(parent.ops.load() < 1000000000);
  CHECK(*static_cast<long *>(weave_static_get("storage.fork:published", sizeof(long), nullptr, nullptr)) == 4242);
}

// ---- fork during resets -----------------------------------------------------------

namespace {
struct resetting_parent {
  std::atomic<int> stop{0};
  std::atomic<int> pause{0};
  std::atomic<int> paused{0};
  std::atomic<uint64_t> resets{0};
};

int child_after_resets(void *) {
  // Whatever the parent's reset had reached at the moment of fork (it is
  // finished here if it was in progress), every static is either the parent's
  // value or fresh, and real memory: write all of it, then reset again (which
  // frees every static: a double free or a freed pointer would abort here).
  for (int k = 0; k < 64; ++k) {
    std::string key = "storage.fork:reset." + std::to_string(k);
    char *v = static_cast<char *>(weave_static_get(key.c_str(), 256, nullptr, nullptr));
    if (v == nullptr) return 10;
    std::memset(v, 0x5a, 256);
    if (weave_tls_get(("t" + key).c_str(), 64, nullptr, nullptr) == nullptr) return 11;
  }
  if (weave_storage_reset() < 64) return 12;
  for (int k = 0; k < 64; ++k) {
    std::string key = "storage.fork:reset." + std::to_string(k);
    char *v = static_cast<char *>(weave_static_get(key.c_str(), 256, nullptr, nullptr));
    if (v == nullptr || v[0] != 0 || v[255] != 0) return 13;
  }
  return 0;
}
}  // namespace

TEST_CASE("fork while another thread resets the storage: the child finishes or ignores that reset, never frees twice", "[registry]") {
  resetting_parent parent;
  std::vector<std::unique_ptr<native_thread>> threads;
  auto pause_point = [&parent] { ftw_test::pause_point(parent.pause, parent.paused); };
  // One thread fills 64 statics (each reset frees them all) ...
  threads.push_back(std::make_unique<native_thread>([&] {
    while (parent.stop.load() == 0) {
      pause_point();
      for (int k = 0; k < 64; ++k) {
        std::string key = "storage.fork:reset." + std::to_string(k);
        weave_static_get(key.c_str(), 256, nullptr, nullptr);
      }
    }
  }));
  // ... and another resets all the time.
  threads.push_back(std::make_unique<native_thread>([&] {
    while (parent.stop.load() == 0) {
      pause_point();
      weave_storage_reset();
      parent.resets++;
    }
  }));
  REQUIRE(wait_until([&] { return parent.resets.load() > 100; }));
  std::vector<int> results;
  for (int round = 0; round < 16; ++round) {
    if (kPauseAllocatorsAroundFork) {
      parent.pause = 1;
      REQUIRE(wait_until([&] { return parent.paused.load() == 2; }));
    }
    pid_t pid = fork_from_fresh_thread(child_after_resets, nullptr);
    parent.pause = 0;
    results.push_back(pid < 0 ? 400 : wait_child(pid, 20000));
  }
  parent.stop = 1;
  for (auto &t : threads) t->join();
  for (size_t r = 0; r < results.size(); ++r) {
    INFO("fork round " << r << ": child status " << results[r] << " (250 = hung, 2xx = signal)");
    CHECK(results[r] == 0);
  }
}

// ---- fork runs no library code -------------------------------------------------

namespace {
int child_exits(void *) { return 0; }
}  // namespace

TEST_CASE("fork runs no library code: a child that never calls the library exits, even forked while the runtime "
          "suspends threads") {
  // The .NET runtime suspends every managed thread now and then (a GC;
  // today also weave_stats). A fork child inherits a suspension in progress
  // from the parent, with the suspending thread gone: code that enters the
  // runtime in the child (a managed atfork handler) waits for it forever, so
  // the child hangs inside fork() and never reaches its exec. Here one thread
  // makes the runtime suspend all the time while others use storage (the
  // registry lock, statics) and fork() is called from a fresh thread.
  std::atomic<int> stop{0};
  std::atomic<uint64_t> ops{0};
  std::vector<std::unique_ptr<native_thread>> threads;
  threads.push_back(std::make_unique<native_thread>([&] {
    weave_stats_t s;
    while (stop.load() == 0) weave_stats(&s);
  }));
  for (int u = 0; u < 2; ++u) {
    threads.push_back(std::make_unique<native_thread>([&, u] {
      for (uint64_t k = 0; stop.load() == 0; ++k) {
        std::string key = "storage.fork:nocode." + std::to_string(u) + "." + std::to_string(k % 500);
        weave_tls_get(key.c_str(), 8, nullptr, nullptr);
        weave_static_get(("s" + key).c_str(), 8, nullptr, nullptr);
        ops++;
      }
    }));
  }
  REQUIRE(wait_until([&] { return ops.load() > 1000; }));
  std::vector<int> results;
  for (int round = 0; round < 40; ++round) {
    pid_t pid = fork_from_fresh_thread(child_exits, nullptr, /*quiesce=*/false);  // the child allocates nothing
    results.push_back(pid < 0 ? 400 : wait_child(pid, 3000));
  }
  stop = 1;
  for (auto &t : threads) t->join();
  int hung = 0;
  for (int r : results) hung += r != 0;
  INFO(hung << " of " << results.size() << " children did not exit 0 (250 = hung)");
  CHECK(hung == 0);
}

// ---- an init that forks ---------------------------------------------------------

namespace {
std::atomic<int> forking_init_runs{0};
int forked_child_status = -1;
int forking_init(void *storage, void *) {
  forking_init_runs++;
  pid_t pid = ftw_test::fork_quiesced();
  if (pid == 0) {
    // The child continues the init it inherited: asking for its own key is
    // still refused, and the value it then returns is published in the child.
    if (weave_static_get("storage.fork:forking-init", sizeof(int), forking_init, nullptr) != nullptr) _exit(30);
    if (std::strstr(weave_last_error(), "its own key") == nullptr) _exit(31);
    *static_cast<int *>(storage) = 7;
    return 0;
  }
  forked_child_status = pid < 0 ? 400 : wait_child(pid, 20000);
  *static_cast<int *>(storage) = 5;
  return 0;
}
}  // namespace

TEST_CASE("an init that forks: the child finishes that init and publishes its value", "[registry]") {
  int *v = static_cast<int *>(weave_static_get("storage.fork:forking-init", sizeof(int), forking_init, nullptr));
  if (forking_init_runs.load() == 1 && forked_child_status == -1) {
    // The child: back from its init.
    if (v == nullptr || *v != 7) _exit(32);
    if (weave_static_get("storage.fork:forking-init", sizeof(int), forking_init, nullptr) != v) _exit(33);
    if (forking_init_runs.load() != 1) _exit(34);
    _exit(0);
  }
  REQUIRE(v != nullptr);
  CHECK(*v == 5);
  CHECK(forked_child_status == 0);
  CHECK(forking_init_runs.load() == 1);
}
