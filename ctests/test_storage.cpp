// Cross-library storage (ft_weave.h section 6) within one binary; the
// host-plus-plugins case is test_storage_plugins.cpp.
#include "weave_test.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using ftw_test::run_pthread;

namespace {

std::string last_error() { return weave_last_error(); }

std::atomic<int> init_calls{0};
int init_to_42(void *storage, void *arg) {
  init_calls++;
  *static_cast<long *>(storage) = arg ? *static_cast<long *>(arg) : 42;
  return 0;
}

int fail_init(void *, void *) {
  init_calls++;
  return -1;
}

}  // namespace

TEST_CASE("thread-local values: zeroed, init once per thread, distinct per thread, stable pointer") {
  init_calls = 0;
  long *a = static_cast<long *>(weave_tls_get("test.storage:tls-basic", sizeof(long), init_to_42, nullptr));
  REQUIRE(a != nullptr);
  CHECK(*a == 42);
  *a = 7;
  CHECK(weave_tls_get("test.storage:tls-basic", sizeof(long), init_to_42, nullptr) == a);
  CHECK(*a == 7);
  CHECK(init_calls.load() == 1);

  void *zeroed = weave_tls_get("test.storage:tls-zeroed", 64, nullptr, nullptr);
  REQUIRE(zeroed != nullptr);
  static const unsigned char zeros[64] = {0};
  CHECK(std::memcmp(zeroed, zeros, 64) == 0);

  static long *other = nullptr;
  run_pthread([] {
    other = static_cast<long *>(weave_tls_get("test.storage:tls-basic", sizeof(long), init_to_42, nullptr));
  });
  REQUIRE(other != nullptr);
  CHECK(other != a);
  CHECK(init_calls.load() == 2);
}

TEST_CASE("the key is compared by content, not by pointer") {
  char key1[] = "test.storage:by-content";
  std::string key2 = "test.storage:by-content";
  void *p1 = weave_tls_get(key1, 8, nullptr, nullptr);
  std::memset(key1, 'x', sizeof key1 - 1);  // the registry kept its own copy
  void *p2 = weave_tls_get(key2.c_str(), 8, nullptr, nullptr);
  CHECK(p1 != nullptr);
  CHECK(p1 == p2);
}

namespace {
std::mutex order_mutex;
std::vector<std::string> destroyed;
void destroy_first(void *p) {
  std::lock_guard<std::mutex> g(order_mutex);
  destroyed.push_back("first:" + std::to_string(*static_cast<long *>(p)));
}
void destroy_second(void *p) {
  std::lock_guard<std::mutex> g(order_mutex);
  destroyed.push_back("second:" + std::to_string(*static_cast<long *>(p)));
}
std::atomic<long> teardown_get_was_null{0};
void destroy_and_get(void *) {
  // During the teardown, gets fail with WEAVE_E_STATE instead of recreating values.
  if (weave_tls_get("test.storage:dtor-first", sizeof(long), nullptr, nullptr) == nullptr &&
      std::string(weave_last_error()).find("destroying") != std::string::npos) {
    teardown_get_was_null = 1;
  }
}
}  // namespace

TEST_CASE("destructors run at thread exit, in reverse creation order, before the memory is freed") {
  destroyed.clear();
  teardown_get_was_null = 0;
  // Destructors may be set before the key's first get.
  REQUIRE(weave_tls_set_destructor("test.storage:dtor-first", destroy_first) == 0);
  REQUIRE(weave_tls_set_destructor("test.storage:dtor-second", destroy_second) == 0);
  REQUIRE(weave_tls_set_destructor("test.storage:dtor-get", destroy_and_get) == 0);
  run_pthread([] {
    *static_cast<long *>(weave_tls_get("test.storage:dtor-first", sizeof(long), nullptr, nullptr)) = 1;
    *static_cast<long *>(weave_tls_get("test.storage:dtor-second", sizeof(long), nullptr, nullptr)) = 2;
    REQUIRE(weave_tls_get("test.storage:dtor-get", 8, nullptr, nullptr) != nullptr);
  });
  std::lock_guard<std::mutex> g(order_mutex);
  CHECK(destroyed == std::vector<std::string>{"second:2", "first:1"});
  CHECK(teardown_get_was_null.load() == 1);
}

namespace {
weave_local void *t_marker;
std::atomic<int> value_in_weave_destructor{0};
void weave_destructor_reads_storage(void *) {
  // Thread-exit destructors (section 2) run before storage teardown: values are still there.
  long *v = static_cast<long *>(weave_tls_get("test.storage:still-there", sizeof(long), nullptr, nullptr));
  value_in_weave_destructor = v ? static_cast<int>(*v) : -1;
}
}  // namespace

TEST_CASE("thread-exit destructors may still use storage values") {
  value_in_weave_destructor = 0;
  run_pthread([] {
    *static_cast<long *>(weave_tls_get("test.storage:still-there", sizeof(long), nullptr, nullptr)) = 99;
    REQUIRE(weave_register_destructor(&t_marker, weave_destructor_reads_storage) == 0);
  });
  CHECK(value_in_weave_destructor.load() == 99);
}

TEST_CASE("a failing init returns NULL with a message and is retried by the next get") {
  init_calls = 0;
  CHECK(weave_tls_get("test.storage:tls-fail", sizeof(long), fail_init, nullptr) == nullptr);
  CHECK(last_error().find("test.storage:tls-fail") != std::string::npos);
  CHECK(last_error().find("failed") != std::string::npos);
  long seven = 7;
  long *v = static_cast<long *>(weave_tls_get("test.storage:tls-fail", sizeof(long), init_to_42, &seven));
  REQUIRE(v != nullptr);
  CHECK(*v == 7);
  CHECK(init_calls.load() == 2);

  CHECK(weave_static_get("test.storage:static-fail", sizeof(long), fail_init, nullptr) == nullptr);
  CHECK(last_error().find("failed") != std::string::npos);
  long *s = static_cast<long *>(weave_static_get("test.storage:static-fail", sizeof(long), init_to_42, &seven));
  REQUIRE(s != nullptr);
  CHECK(*s == 7);
}

namespace {
int init_gets_other(void *storage, void *) {
  // init for A may get B (thread-local and static) ...
  long *b = static_cast<long *>(weave_tls_get("test.storage:B", sizeof(long), init_to_42, nullptr));
  long *s = static_cast<long *>(weave_static_get("test.storage:S-from-init", sizeof(long), init_to_42, nullptr));
  *static_cast<long *>(storage) = (b ? *b : 0) + (s ? *s : 0);
  return 0;
}
std::string self_error;
int init_gets_self(void *, void *) {
  // ... but asking for its own key on the same thread is refused, not a deadlock.
  void *self = weave_tls_get("test.storage:self", sizeof(long), init_gets_self, nullptr);
  self_error = weave_last_error();
  return self == nullptr ? 0 : -1;
}
int static_init_gets_self(void *, void *) {
  void *self = weave_static_get("test.storage:static-self", sizeof(long), static_init_gets_self, nullptr);
  self_error = weave_last_error();
  return self == nullptr ? 0 : -1;
}
}  // namespace

TEST_CASE("init may get other keys, and an init that asks for its own key gets NULL (WEAVE_E_STATE)") {
  long *a = static_cast<long *>(weave_tls_get("test.storage:A", sizeof(long), init_gets_other, nullptr));
  REQUIRE(a != nullptr);
  CHECK(*a == 84);

  self_error.clear();
  CHECK(weave_tls_get("test.storage:self", sizeof(long), init_gets_self, nullptr) != nullptr);
  CHECK(self_error.find("its own key") != std::string::npos);

  self_error.clear();
  CHECK(weave_static_get("test.storage:static-self", sizeof(long), static_init_gets_self, nullptr) != nullptr);
  CHECK(self_error.find("its own key") != std::string::npos);
}

namespace {
std::atomic<int> static_inits{0};
std::atomic<int> in_init{0};
int slow_static_init(void *storage, void *) {
  if (in_init.fetch_add(1) != 0) static_inits += 1000;  // two inits at once: fail loudly
  static_inits++;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the others pile up
  *static_cast<long *>(storage) = 1234;
  in_init--;
  return 0;
}
}  // namespace

TEST_CASE("16 threads racing on a static's first use: init runs once, all get the same value") {
  static_inits = 0;
  constexpr int kThreads = 16;
  std::atomic<bool> go{false};
  std::vector<void *> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      got[i] = weave_static_get("test.storage:raced-static", sizeof(long), slow_static_init, nullptr);
    });
  }
  go = true;
  for (auto &t : threads) t.join();
  CHECK(static_inits.load() == 1);
  REQUIRE(got[0] != nullptr);
  for (auto *p : got) CHECK(p == got[0]);
  CHECK(*static_cast<long *>(got[0]) == 1234);
}

TEST_CASE("mismatched size or kind returns NULL with a clear message") {
  REQUIRE(weave_tls_get("test.storage:sized", 8, nullptr, nullptr) != nullptr);
  CHECK(weave_tls_get("test.storage:sized", 4, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("\"test.storage:sized\" has size 8, asked with size 4") != std::string::npos);

  REQUIRE(weave_static_get("test.storage:static-sized", 16, nullptr, nullptr) != nullptr);
  CHECK(weave_static_get("test.storage:static-sized", 8, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("has size 16, asked with size 8") != std::string::npos);

  CHECK(weave_static_get("test.storage:sized", 8, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("thread-local key, not static") != std::string::npos);
  CHECK(weave_tls_get("test.storage:static-sized", 16, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("static key, not thread-local") != std::string::npos);
  CHECK(weave_tls_set_destructor("test.storage:static-sized", free) == WEAVE_E_MISMATCH);
}

TEST_CASE("bad keys, sizes and destructors are errors, not corruption") {
  CHECK(weave_tls_get(nullptr, 8, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("key is NULL") != std::string::npos);
  CHECK(weave_tls_get("", 8, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("empty") != std::string::npos);
  std::string long_key(1025, 'k');
  CHECK(weave_tls_get(long_key.c_str(), 8, nullptr, nullptr) == nullptr);
  CHECK(last_error().find("longer than 1024") != std::string::npos);
  std::string huge_key(10000, 'h');
  CHECK(weave_static_get(huge_key.c_str(), 8, nullptr, nullptr) == nullptr);
  std::string max_key(1024, 'm');
  CHECK(weave_tls_get(max_key.c_str(), 8, nullptr, nullptr) != nullptr);
  CHECK(weave_tls_get("test.storage:zero-size", 0, nullptr, nullptr) == nullptr);
  CHECK(weave_static_get("test.storage:zero-size", 0, nullptr, nullptr) == nullptr);
  CHECK(weave_tls_set_destructor(nullptr, free) == WEAVE_E_INVALID);
  CHECK(weave_tls_set_destructor("", free) == WEAVE_E_INVALID);
  CHECK(weave_tls_set_destructor("test.storage:no-dtor", nullptr) == WEAVE_E_INVALID);
}

namespace {
std::atomic<int> reset_destructor_runs{0};
void count_destroy(void *) { reset_destructor_runs++; }
}  // namespace

TEST_CASE("reset drops everything: destructors of this thread's values, statics, other threads' values") {
  reset_destructor_runs = 0;
  REQUIRE(weave_tls_set_destructor("test.storage:reset-tls", count_destroy) == 0);
  long *mine = static_cast<long *>(weave_tls_get("test.storage:reset-tls", sizeof(long), nullptr, nullptr));
  REQUIRE(mine != nullptr);
  *mine = 5;
  long *shared = static_cast<long *>(weave_static_get("test.storage:reset-static", sizeof(long), nullptr, nullptr));
  REQUIRE(shared != nullptr);
  *shared = 6;

  // A live thread with its own value, parked on a flag while the reset happens.
  std::atomic<int> phase{0};
  std::atomic<long> other_after{-1};
  std::thread other([&] {
    long *v = static_cast<long *>(weave_tls_get("test.storage:reset-tls", sizeof(long), nullptr, nullptr));
    *v = 9;
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    long *fresh = static_cast<long *>(weave_tls_get("test.storage:reset-tls", sizeof(long), init_to_42, nullptr));
    other_after = fresh ? *fresh : -2;
  });
  while (phase.load() != 1) std::this_thread::yield();

  int dropped = weave_storage_reset();
  CHECK(dropped >= 2);  // at least this thread's value and the static (earlier cases add more)
  CHECK(reset_destructor_runs.load() == 1);  // only the calling thread's destructor ran
  phase = 2;
  other.join();
  CHECK(other_after.load() == 42);          // fresh and initialised on the other thread
  CHECK(reset_destructor_runs.load() == 1);  // its old value was freed without the destructor

  long *again = static_cast<long *>(weave_tls_get("test.storage:reset-tls", sizeof(long), nullptr, nullptr));
  REQUIRE(again != nullptr);
  CHECK(*again == 0);  // freshly zeroed
  long *shared_again = static_cast<long *>(weave_static_get("test.storage:reset-static", sizeof(long), init_to_42, nullptr));
  REQUIRE(shared_again != nullptr);
  CHECK(*shared_again == 42);
  // The destructor was forgotten by the reset.
  run_pthread([] { REQUIRE(weave_tls_get("test.storage:reset-tls", sizeof(long), nullptr, nullptr) != nullptr); });
  CHECK(reset_destructor_runs.load() == 1);
}

TEST_CASE("gets after the first take no lock: many threads hammering their own values") {
  constexpr int kThreads = 8, kIters = 100000;
  std::atomic<long> total{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      for (int n = 0; n < kIters; n++) {
        long *v = static_cast<long *>(weave_tls_get("test.storage:hammer", sizeof(long), nullptr, nullptr));
        if (v) ++*v;
      }
      total += *static_cast<long *>(weave_tls_get("test.storage:hammer", sizeof(long), nullptr, nullptr));
    });
  }
  for (auto &t : threads) t.join();
  CHECK(total.load() == static_cast<long>(kThreads) * kIters);
}

// ---- init and weave_storage_reset ------------------------------------------
// An init that resets the storage (itself, from a nested init, or on another
// thread while it runs) makes a value that belongs to no generation: the get
// returns NULL with WEAVE_E_STATE and frees it (valgrind_memcheck:test_storage
// checks that nothing is lost), and the next get makes a fresh one.

namespace {
constexpr size_t kBig = 4096;  // a leaked value shows as 4096 bytes under valgrind

bool reset_while_init_ran() { return last_error().find("reset while init ran") != std::string::npos; }

std::atomic<int> resetting_inits{0};
int init_resets(void *storage, void *) {
  resetting_inits++;
  static_cast<char *>(storage)[0] = 1;
  weave_storage_reset();
  return 0;
}

// Nested: the init of an outer key gets an inner key whose init resets.
struct nested_case {
  bool outer_static, inner_static;
  void *inner_result;
  bool inner_state;
};
nested_case *current_nested;
int outer_init(void *, void *) {
  nested_case *c = current_nested;
  c->inner_result = c->inner_static ? weave_static_get("test.storage:nested-inner-s", kBig, init_resets, nullptr)
                                    : weave_tls_get("test.storage:nested-inner-t", kBig, init_resets, nullptr);
  c->inner_state = reset_while_init_ran();
  return 0;
}
}  // namespace

TEST_CASE("an init that resets the storage on its own thread: NULL with WEAVE_E_STATE, and the next get is fresh") {
  for (bool is_static : {false, true}) {
    INFO((is_static ? "weave_static_get" : "weave_tls_get"));
    auto get = is_static ? weave_static_get : weave_tls_get;
    const char *key = is_static ? "test.storage:init-resets-s" : "test.storage:init-resets-t";
    resetting_inits = 0;
    CHECK(get(key, kBig, init_resets, nullptr) == nullptr);
    CHECK(reset_while_init_ran());
    CHECK(resetting_inits.load() == 1);
    // The next get makes a fresh value (no init: none resets), and keeps it.
    char *v = static_cast<char *>(get(key, kBig, nullptr, nullptr));
    REQUIRE(v != nullptr);
    CHECK(v[0] == 0);
    CHECK(get(key, kBig, init_resets, nullptr) == v);
    CHECK(resetting_inits.load() == 1);
  }
}

TEST_CASE("nested inits where the inner init resets: both gets return NULL with WEAVE_E_STATE") {
  for (bool outer_static : {false, true}) {
    for (bool inner_static : {false, true}) {
      INFO("outer " << (outer_static ? "static" : "tls") << ", inner " << (inner_static ? "static" : "tls"));
      nested_case c{outer_static, inner_static, reinterpret_cast<void *>(1), false};
      current_nested = &c;
      std::string outer_key = std::string("test.storage:nested-outer-") + (outer_static ? "s" : "t") +
                              (inner_static ? "s" : "t");
      void *outer = outer_static ? weave_static_get(outer_key.c_str(), kBig, outer_init, nullptr)
                                 : weave_tls_get(outer_key.c_str(), kBig, outer_init, nullptr);
      CHECK(c.inner_result == nullptr);
      CHECK(c.inner_state);
      CHECK(outer == nullptr);
      CHECK(reset_while_init_ran());
      // Both keys work afterwards, with stable values.
      void *o1 = outer_static ? weave_static_get(outer_key.c_str(), kBig, nullptr, nullptr)
                              : weave_tls_get(outer_key.c_str(), kBig, nullptr, nullptr);
      void *o2 = outer_static ? weave_static_get(outer_key.c_str(), kBig, nullptr, nullptr)
                              : weave_tls_get(outer_key.c_str(), kBig, nullptr, nullptr);
      CHECK(o1 != nullptr);
      CHECK(o1 == o2);
    }
  }
}

namespace {
std::atomic<int> overlap_phase{0};  // 1: init entered, 2: reset done
int init_waits_for_reset(void *storage, void *) {
  static_cast<char *>(storage)[0] = 1;
  overlap_phase = 1;
  while (overlap_phase.load() != 2) std::this_thread::yield();
  return 0;
}
}  // namespace

TEST_CASE("an init that overlaps a reset on another thread: NULL with WEAVE_E_STATE, its value freed") {
  for (bool is_static : {false, true}) {
    INFO((is_static ? "weave_static_get" : "weave_tls_get"));
    auto get = is_static ? weave_static_get : weave_tls_get;
    const char *key = is_static ? "test.storage:overlap-s" : "test.storage:overlap-t";
    overlap_phase = 0;
    void *during = reinterpret_cast<void *>(1);
    bool state = false;
    void *after = nullptr;
    void *again = nullptr;
    int after_first_byte = -1;
    std::thread t([&] {
      during = get(key, kBig, init_waits_for_reset, nullptr);
      state = reset_while_init_ran();
      after = get(key, kBig, nullptr, nullptr);
      again = get(key, kBig, nullptr, nullptr);
      if (after != nullptr) after_first_byte = static_cast<char *>(after)[0];  // (freed at thread exit)
    });
    while (overlap_phase.load() != 1) std::this_thread::yield();
    weave_storage_reset();
    overlap_phase = 2;
    t.join();
    CHECK(during == nullptr);
    CHECK(state);
    REQUIRE(after != nullptr);
    CHECK(after_first_byte == 0);  // fresh: not the overlapped value
    CHECK(again == after);
  }
}

// ---- no pthread keys left ------------------------------------------------------
// Hidden ([.]) until the per-thread context (Threads/ThreadContext.cs, which
// storage calls for weave_last_error and for its per-thread values) returns an
// error instead of ending the process when pthread_key_create fails; run it by
// name. Storage itself creates no pthread key.
TEST_CASE("storage calls when every pthread key is used up: they work, never an abort", "[no-keys]") {
  // The library reserves the keys it needs when it is loaded, so a process
  // that runs out of keys later (here, before this thread's first storage
  // call) loses nothing.
  std::vector<pthread_key_t> keys;
  pthread_key_t k;
  while (pthread_key_create(&k, nullptr) == 0) keys.push_back(k);
  void *tls = weave_tls_get("test.storage:no-keys", 8, nullptr, nullptr);
  void *st = weave_static_get("test.storage:no-keys-static", 8, nullptr, nullptr);
  int dtor = weave_tls_set_destructor("test.storage:no-keys", [](void *) {});
  int reset = weave_storage_reset();
  size_t used = keys.size();
  for (pthread_key_t key : keys) pthread_key_delete(key);
  CHECK(used > 0);
  CHECK(tls != nullptr);
  CHECK(st != nullptr);
  CHECK(dtor == 0);
  CHECK(reset >= 0);
}
