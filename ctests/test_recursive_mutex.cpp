// ft_weave.h section 4, "Recursive mutex": CPython's _PyRecursiveMutex
// (Modules/_testinternalcapi/test_lock.c, test_lock_recursive) and more.
#include "weave_test.hpp"

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int64_t kMs = 1000 * 1000;

// The exported copies of the header's inline functions, found the way an FFI
// finds them.
struct Exported {
  void (*lock)(weave_recursive_mutex_t *);
  int (*unlock)(weave_recursive_mutex_t *);
  int (*is_locked_by_current_thread)(const weave_recursive_mutex_t *);
};

template <typename Fn>
Fn lookup(const char *name) {
  void *sym = dlsym(RTLD_DEFAULT, name);
  REQUIRE(sym != nullptr);
  Fn fn;
  static_assert(sizeof fn == sizeof sym, "function and object pointers differ in size");
  std::memcpy(&fn, &sym, sizeof fn);
  return fn;
}

Exported exported() {
  return Exported{lookup<void (*)(weave_recursive_mutex_t *)>("weave_recursive_mutex_lock"),
                  lookup<int (*)(weave_recursive_mutex_t *)>("weave_recursive_mutex_unlock"),
                  lookup<int (*)(const weave_recursive_mutex_t *)>(
                      "weave_recursive_mutex_is_locked_by_current_thread")};
}

void check_unlocked(const weave_recursive_mutex_t &m) {
  CHECK(mutex_state(m.mutex) == 0);
  CHECK(m.thread == 0);
  CHECK(m.level == 0);
}

}  // namespace

TEST_CASE("lock then re-enter then unlock (CPython test_lock_recursive)") {
  weave_recursive_mutex_t m = {};
  CHECK_FALSE(weave_recursive_mutex_is_locked_by_current_thread(&m));

  weave_recursive_mutex_lock(&m);
  CHECK(m.thread == weave_thread_id());
  CHECK(weave_mutex_is_locked(&m.mutex));
  CHECK(m.level == 0);
  CHECK(weave_recursive_mutex_is_locked_by_current_thread(&m));

  weave_recursive_mutex_lock(&m);
  CHECK(m.level == 1);
  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  CHECK(m.level == 0);
  CHECK(weave_recursive_mutex_is_locked_by_current_thread(&m));

  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  CHECK_FALSE(weave_recursive_mutex_is_locked_by_current_thread(&m));
  check_unlocked(m);

  // One unlock too many: not the owner any more, nothing changes.
  CHECK(weave_recursive_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(std::string(weave_last_error()).find("does not own") != std::string::npos);
  check_unlocked(m);
}

TEST_CASE("lock_timed: the owner re-enters at once and flags are checked") {
  weave_recursive_mutex_t m = {};
  CHECK(weave_recursive_mutex_lock_timed(&m, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED);
  CHECK(m.thread == weave_thread_id());
  CHECK(m.level == 0);
  CHECK(weave_recursive_mutex_lock_timed(&m, 0, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED);
  CHECK(weave_recursive_mutex_lock_timed(&m, -1, WEAVE_LOCK_ALL_FLAGS) == WEAVE_LOCK_ACQUIRED);
  CHECK(m.level == 2);
  CHECK(weave_recursive_mutex_lock_timed(&m, 0, 8) == WEAVE_E_INVALID);
  CHECK(weave_recursive_mutex_lock_timed(&m, 0, -1) == WEAVE_E_INVALID);
  CHECK(m.level == 2);  // a rejected call changes nothing
  for (int i = 0; i < 3; i++) {
    CHECK(weave_recursive_mutex_unlock(&m) == 0);
  }
  check_unlocked(m);
}

TEST_CASE("another thread can neither unlock nor lock a held recursive mutex") {
  weave_recursive_mutex_t m = {};
  weave_recursive_mutex_lock(&m);
  weave_recursive_mutex_lock(&m);
  const uint64_t owner = m.thread;

  ftw_test::run_pthread([&] {
    CHECK_FALSE(weave_recursive_mutex_is_locked_by_current_thread(&m));
    CHECK(weave_recursive_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
    CHECK(weave_recursive_mutex_unlock_slow(&m) == WEAVE_E_NOT_OWNER);

    CHECK(weave_recursive_mutex_lock_timed(&m, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_FAILURE);

    auto start = clock_type::now();
    CHECK(weave_recursive_mutex_lock_timed(&m, 5 * kMs, WEAVE_LOCK_DETACH) == WEAVE_LOCK_FAILURE);
    auto elapsed = clock_type::now() - start;
    CHECK(elapsed >= std::chrono::milliseconds(5));
    CHECK(elapsed < std::chrono::seconds(10));  // generous: the machine may be loaded
  });

  // Nothing changed for the owner.
  CHECK(m.thread == owner);
  CHECK(m.level == 1);
  CHECK(weave_recursive_mutex_is_locked_by_current_thread(&m));
  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  check_unlocked(m);
}

TEST_CASE("a blocked locker gets the mutex after the owner's last unlock") {
  weave_recursive_mutex_t m = {};
  std::atomic<bool> acquired{false};
  weave_recursive_mutex_lock(&m);
  weave_recursive_mutex_lock(&m);
  bool owner_ok = false;
  int unlocked = -1;
  // (Catch2 assertions stay on the main thread: they are not thread-safe.)
  std::thread other([&] {
    weave_recursive_mutex_lock(&m);  // parks (slow path)
    acquired = true;
    owner_ok = m.thread == weave_thread_id() && m.level == 0;
    unlocked = weave_recursive_mutex_unlock(&m);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(acquired.load());
  CHECK(weave_recursive_mutex_unlock(&m) == 0);  // one level left
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(acquired.load());
  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  other.join();
  CHECK(acquired.load());
  CHECK(owner_ok);
  CHECK(unlocked == 0);
  check_unlocked(m);
}

namespace {

// Each thread does nested lock/lock/unlock/unlock around non-atomic
// increments; with `mix_exported`, every other thread goes through the
// exported copies.
void counter_stress(int threads, int iterations, bool mix_exported) {
  weave_recursive_mutex_t m = {};
  long counter = 0;
  std::atomic<int> failures{0};  // Catch2 assertions are not thread-safe
  const Exported ex = exported();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; t++) {
    const bool use_exported = mix_exported && (t % 2 == 1);
    workers.emplace_back([&, use_exported] {
      for (int i = 0; i < iterations; i++) {
        if (use_exported) {
          ex.lock(&m);
          counter++;
          ex.lock(&m);
          counter++;
          failures += ex.unlock(&m) != 0;
          counter++;
          failures += ex.unlock(&m) != 0;
        } else {
          weave_recursive_mutex_lock(&m);
          counter++;
          weave_recursive_mutex_lock(&m);
          counter++;
          failures += weave_recursive_mutex_unlock(&m) != 0;
          counter++;
          failures += weave_recursive_mutex_unlock(&m) != 0;
        }
      }
    });
  }
  for (auto &w : workers) {
    w.join();
  }
  CHECK(failures.load() == 0);
  CHECK(counter == 3L * threads * iterations);
  check_unlocked(m);
}

}  // namespace

TEST_CASE("counter stress with re-entry: 4 threads x 20000") {
  counter_stress(4, 20000, false);
}

TEST_CASE("exported copies behave as the inline functions and interoperate") {
  const Exported ex = exported();
  weave_recursive_mutex_t m = {};

  CHECK(ex.is_locked_by_current_thread(&m) == 0);
  ex.lock(&m);
  CHECK(m.thread == weave_thread_id());
  CHECK(m.level == 0);
  CHECK(ex.is_locked_by_current_thread(&m) == 1);
  CHECK(weave_recursive_mutex_is_locked_by_current_thread(&m));
  weave_recursive_mutex_lock(&m);  // inline re-entry on an exported lock
  CHECK(m.level == 1);
  ex.lock(&m);
  CHECK(m.level == 2);
  CHECK(ex.unlock(&m) == 0);
  CHECK(weave_recursive_mutex_unlock(&m) == 0);
  CHECK(m.level == 0);
  CHECK(ex.unlock(&m) == 0);
  check_unlocked(m);
  CHECK(ex.unlock(&m) == WEAVE_E_NOT_OWNER);
  check_unlocked(m);

  ftw_test::run_pthread([&] {
    weave_recursive_mutex_lock(&m);
  });
  // Held by a thread that has exited: still not ours.
  CHECK(ex.is_locked_by_current_thread(&m) == 0);
  CHECK(ex.unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(weave_mutex_is_locked(&m.mutex));

  // Two threads inline, two through the exports, one mutex.
  counter_stress(4, 10000, true);
}

TEST_CASE("NULL is rejected with WEAVE_E_INVALID") {
  const Exported ex = exported();
  weave_recursive_mutex_lock(nullptr);
  CHECK(std::string(weave_last_error()).find("NULL") != std::string::npos);
  CHECK(weave_recursive_mutex_unlock(nullptr) == WEAVE_E_INVALID);
  CHECK(weave_recursive_mutex_is_locked_by_current_thread(nullptr) == 0);
  CHECK(weave_recursive_mutex_lock_timed(nullptr, 0, 0) == WEAVE_E_INVALID);
  weave_recursive_mutex_lock_slow(nullptr);
  CHECK(weave_recursive_mutex_unlock_slow(nullptr) == WEAVE_E_INVALID);
  ex.lock(nullptr);
  CHECK(ex.unlock(nullptr) == WEAVE_E_INVALID);
  CHECK(ex.is_locked_by_current_thread(nullptr) == 0);
  CHECK(std::string(weave_last_error()).find("weave_recursive_mutex_unlock") != std::string::npos);
}

// Issue 11, finding 18: the owner used to be pthread_self(), which glibc hands
// to the next thread once one has exited; that thread was then taken for the
// owner of a mutex the exited thread had left locked.
TEST_CASE("a thread that exits holding the mutex does not pass it to the next thread with its pthread_t") {
  static weave_recursive_mutex_t m;
  static Exported ex;
  m = weave_recursive_mutex_t{};
  ex = exported();
  struct Seen {
    pthread_t self;
    int inline_is_owner, exported_is_owner, inline_unlock, exported_unlock, relock_status, trylock;
  };
  static pthread_t locker_self;
  static Seen seen;
  bool same_pthread_t = false;
  // glibc usually reuses the exited thread's descriptor at once; try a few times.
  for (int attempt = 0; attempt < 20 && !same_pthread_t; attempt++) {
    m = weave_recursive_mutex_t{};
    pthread_t t;
    REQUIRE(pthread_create(&t, nullptr, [](void *) -> void * {
      locker_self = pthread_self();
      weave_recursive_mutex_lock(&m);
      weave_recursive_mutex_lock(&m);
      return nullptr;  // exits holding it (twice)
    }, nullptr) == 0);
    REQUIRE(pthread_join(t, nullptr) == 0);
    REQUIRE(weave_mutex_is_locked(&m.mutex));
    REQUIRE(pthread_create(&t, nullptr, [](void *) -> void * {
      seen.self = pthread_self();
      seen.inline_is_owner = weave_recursive_mutex_is_locked_by_current_thread(&m);
      seen.exported_is_owner = ex.is_locked_by_current_thread(&m);
      seen.inline_unlock = weave_recursive_mutex_unlock(&m);
      seen.exported_unlock = ex.unlock(&m);
      // Re-entry would succeed at once; a stranger must not get it.
      seen.relock_status = weave_recursive_mutex_lock_timed(&m, 0, 0);
      seen.trylock = weave_mutex_trylock(&m.mutex);
      return nullptr;
    }, nullptr) == 0);
    REQUIRE(pthread_join(t, nullptr) == 0);
    same_pthread_t = pthread_equal(seen.self, locker_self) != 0;
    CHECK(seen.inline_is_owner == 0);
    CHECK(seen.exported_is_owner == 0);
    CHECK(seen.inline_unlock == WEAVE_E_NOT_OWNER);
    CHECK(seen.exported_unlock == WEAVE_E_NOT_OWNER);
    CHECK(seen.relock_status == WEAVE_LOCK_FAILURE);
    CHECK(seen.trylock == 0);
    CHECK(m.level == 1);  // untouched
    CHECK(weave_mutex_is_locked(&m.mutex));
  }
  REQUIRE(same_pthread_t);  // the situation under test did occur
}
