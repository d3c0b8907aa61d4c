// Thread-exit destructors (ft_weave.h section 2), on native pthreads.
//
// The first seven cases are ft_utils' weave tests (ft_utils/tests/test_weave.py
// with its _test_weave.c helpers) one for one; the rest go beyond ft_utils.
#include "weave_test.hpp"

#include <dlfcn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using ftw_test::run_pthread;

namespace {

// ---- ft_utils' _test_weave.c state: sentinels and counters ---------------
int value1 = 0x12345678;
int value2 = static_cast<int>(0x87654321u);
void *ptr1 = &value1;
void *ptr2 = &value2;

std::mutex state_mutex;
int destructor_called_1 = 0;
int destructor_called_2 = 0;
bool tls_check_1 = false;  // set when a destructor saw the wrong value
bool tls_check_2 = false;

void reset_state() {
  std::lock_guard<std::mutex> g(state_mutex);
  destructor_called_1 = destructor_called_2 = 0;
  tls_check_1 = tls_check_2 = false;
}

void destructor_add_1(void *addr) {
  std::lock_guard<std::mutex> g(state_mutex);
  if (addr == ptr1) destructor_called_1 += 1; else tls_check_1 = true;
}
void destructor_reset_1(void *addr) {
  std::lock_guard<std::mutex> g(state_mutex);
  if (addr == ptr1) destructor_called_1 = 100; else tls_check_1 = true;
}
void destructor_add_2(void *addr) {
  std::lock_guard<std::mutex> g(state_mutex);
  if (addr == ptr2) destructor_called_2 += 1; else tls_check_2 = true;
}

int called_1() {
  std::lock_guard<std::mutex> g(state_mutex);
  REQUIRE_FALSE(tls_check_1);
  return destructor_called_1;
}
int called_2() {
  std::lock_guard<std::mutex> g(state_mutex);
  REQUIRE_FALSE(tls_check_2);
  return destructor_called_2;
}

// The ft_utils test module's entry points, over the header-only helpers.
void register_destructor_1() { REQUIRE(_py_register_wvls_destructor(&ptr1, destructor_add_1) == 0); }
void register_destructor_2() { REQUIRE(_py_register_wvls_destructor(&ptr2, destructor_add_2) == 0); }
void register_destructor_reset_1() { REQUIRE(_py_register_wvls_destructor(&ptr1, destructor_reset_1) == 0); }
int unregister_destructor_1() {
  int unreg = -1;
  REQUIRE(_py_unregister_wvls_destructor(&ptr1, &unreg) == 0);
  return unreg;
}
int unregister_destructor_2() {
  int unreg = -1;
  REQUIRE(_py_unregister_wvls_destructor(&ptr2, &unreg) == 0);
  return unreg;
}

}  // namespace

// ---------------------------------------------------------------------------
// ft_utils' seven cases
// ---------------------------------------------------------------------------

TEST_CASE("ft_utils: register destructor 1", "[ft_utils]") {
  reset_state();
  run_pthread([] { register_destructor_1(); });
  CHECK(called_1() == 1);
}

TEST_CASE("ft_utils: unregister destructor 1", "[ft_utils]") {
  reset_state();
  register_destructor_1();
  CHECK(unregister_destructor_1() == 1);
  run_pthread([] {
    register_destructor_1();
    unregister_destructor_1();
  });
  CHECK(called_1() == 0);
}

TEST_CASE("ft_utils: register destructor 2", "[ft_utils]") {
  reset_state();
  run_pthread([] { register_destructor_2(); });
  CHECK(called_2() == 1);
}

TEST_CASE("ft_utils: unregister destructor 2", "[ft_utils]") {
  reset_state();
  register_destructor_2();
  register_destructor_2();
  unregister_destructor_2();
  unregister_destructor_2();
  CHECK(unregister_destructor_2() == 0);

  register_destructor_2();
  CHECK(unregister_destructor_2() == 1);
  CHECK(unregister_destructor_1() == 0);

  run_pthread([] {
    register_destructor_2();
    unregister_destructor_2();
  });
  CHECK(called_2() == 0);
}

TEST_CASE("ft_utils: unregister destructor 1 of 1,2,1,2", "[ft_utils]") {
  reset_state();
  register_destructor_1();
  register_destructor_2();
  unregister_destructor_2();
  unregister_destructor_1();
  CHECK(unregister_destructor_2() == 0);

  run_pthread([] {
    register_destructor_1();
    register_destructor_2();
    register_destructor_1();
    register_destructor_2();
    unregister_destructor_1();
  });
  CHECK(called_2() == 2);
  CHECK(called_1() == 0);
}

TEST_CASE("ft_utils: destructors run in registration order", "[ft_utils]") {
  reset_state();
  run_pthread([] {
    register_destructor_1();
    register_destructor_1();
    register_destructor_reset_1();
  });
  // add, add, then reset to 100: 100, not 102.
  CHECK(called_1() == 100);
}

TEST_CASE("ft_utils: ten threads, ten calls", "[ft_utils]") {
  reset_state();
  std::vector<pthread_t> threads(10);
  for (auto &t : threads) {
    REQUIRE(pthread_create(&t, nullptr, [](void *) -> void * {
      register_destructor_1();
      return nullptr;
    }, nullptr) == 0);
  }
  for (auto &t : threads) REQUIRE(pthread_join(t, nullptr) == 0);
  CHECK(called_1() == 10);
}

// ---------------------------------------------------------------------------
// Beyond ft_utils
// ---------------------------------------------------------------------------

namespace {

weave_local void *t_slot;   // a real thread-local slot per thread
weave_local void *t_slot_b;

std::mutex seen_mutex;
std::vector<void *> seen;   // values the recording destructor was called with
std::vector<std::string> order;

void record_value(void *value) {
  std::lock_guard<std::mutex> g(seen_mutex);
  seen.push_back(value);
}
void record_a(void *) { std::lock_guard<std::mutex> g(seen_mutex); order.push_back("a"); }
void record_b(void *) { std::lock_guard<std::mutex> g(seen_mutex); order.push_back("b"); }

void clear_seen() {
  std::lock_guard<std::mutex> g(seen_mutex);
  seen.clear();
  order.clear();
}

}  // namespace

TEST_CASE("weave_local slots: each thread's own value reaches its destructor") {
  clear_seen();
  static int marks[4];
  std::vector<pthread_t> threads(4);
  for (int i = 0; i < 4; i++) {
    REQUIRE(pthread_create(&threads[i], nullptr, [](void *arg) -> void * {
      t_slot = arg;  // this thread's own copy of t_slot
      REQUIRE(weave_register_destructor(&t_slot, record_value) == 0);
      return nullptr;
    }, &marks[i]) == 0);
  }
  for (auto &t : threads) REQUIRE(pthread_join(t, nullptr) == 0);
  std::lock_guard<std::mutex> g(seen_mutex);
  REQUIRE(seen.size() == 4);
  for (int i = 0; i < 4; i++) {
    CHECK(std::count(seen.begin(), seen.end(), static_cast<void *>(&marks[i])) == 1);
  }
}

TEST_CASE("NULL values are passed through to the destructor") {
  clear_seen();
  run_pthread([] {
    t_slot = nullptr;
    REQUIRE(weave_register_destructor(&t_slot, record_value) == 0);
  });
  std::lock_guard<std::mutex> g(seen_mutex);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == nullptr);
}

TEST_CASE("the value is read at exit, not at registration") {
  clear_seen();
  static int first, second;
  run_pthread([] {
    t_slot = &first;
    REQUIRE(weave_register_destructor(&t_slot, record_value) == 0);
    t_slot = &second;
  });
  std::lock_guard<std::mutex> g(seen_mutex);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == &second);
}

TEST_CASE("destructors run on pthread_exit as on return") {
  clear_seen();
  static int mark;
  run_pthread([] {
    t_slot = &mark;
    REQUIRE(weave_register_destructor(&t_slot, record_value) == 0);
  }, /*use_pthread_exit=*/true);
  std::lock_guard<std::mutex> g(seen_mutex);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == &mark);
}

TEST_CASE("order across variables is registration order") {
  clear_seen();
  run_pthread([] {
    REQUIRE(weave_register_destructor(&t_slot, record_b) == 0);
    REQUIRE(weave_register_destructor(&t_slot_b, record_a) == 0);
    REQUIRE(weave_register_destructor(&t_slot, record_a) == 0);
  });
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(order == std::vector<std::string>{"b", "a", "a"});
}

namespace {
constexpr int kChurnThreads = 10000;
constexpr int kChurnRegistrations = 4;
std::atomic<int> churn_counts[kChurnThreads];
weave_local void *t_churn[kChurnRegistrations];

void churn_destructor(void *value) {
  auto index = reinterpret_cast<std::uintptr_t>(value);
  if (index >= 1 && index <= kChurnThreads) {
    churn_counts[index - 1].fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

TEST_CASE("10,000 short-lived threads with 4 registrations each: 40,000 calls, none lost or doubled",
          "[churn]") {
  for (auto &c : churn_counts) c.store(0);
  constexpr int kBatch = 16;  // threads alive at once
  auto start = std::chrono::steady_clock::now();
  for (int base = 0; base < kChurnThreads; base += kBatch) {
    pthread_t threads[kBatch];
    for (int j = 0; j < kBatch; j++) {
      std::uintptr_t id = static_cast<std::uintptr_t>(base + j + 1);
      REQUIRE(pthread_create(&threads[j], nullptr, [](void *arg) -> void * {
        for (int r = 0; r < kChurnRegistrations; r++) {
          t_churn[r] = arg;
          if (weave_register_destructor(&t_churn[r], churn_destructor) != 0) return nullptr;
        }
        return nullptr;
      }, reinterpret_cast<void *>(id)) == 0);
    }
    for (auto &t : threads) REQUIRE(pthread_join(t, nullptr) == 0);
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  long total = 0;
  int wrong = 0;
  for (auto &c : churn_counts) {
    int n = c.load();
    total += n;
    if (n != kChurnRegistrations) wrong++;
  }
  CHECK(total == 40000L);
  CHECK(wrong == 0);
  // Not a speed target (those live in bench/): a bound so a hang shows up as a failure.
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count() < 60);
}

TEST_CASE("concurrent registration and unregistration from 8 threads") {
  static std::atomic<long> calls{0};
  static std::atomic<bool> go{false};
  calls = 0;
  go = false;
  constexpr int kThreads = 8, kVars = 64, kRounds = 50;
  std::vector<pthread_t> threads(kThreads);
  for (auto &t : threads) {
    REQUIRE(pthread_create(&t, nullptr, [](void *) -> void * {
      static weave_local void *vars[kVars];
      while (!go.load()) std::this_thread::yield();
      auto count = [](void *) { calls.fetch_add(1); };
      for (int round = 0; round < kRounds; round++) {
        for (int v = 0; v < kVars; v++) {
          if (weave_register_destructor(&vars[v], count) != 0) return nullptr;
        }
        // Remove the odd variables again: every registration of each goes.
        for (int v = 1; v < kVars; v += 2) {
          if (weave_unregister_destructor(&vars[v]) != 1) return nullptr;
        }
      }
      return nullptr;
    }, nullptr) == 0);
  }
  go = true;
  for (auto &t : threads) REQUIRE(pthread_join(t, nullptr) == 0);
  // Each thread keeps kRounds registrations of each even variable.
  CHECK(calls.load() == static_cast<long>(kThreads) * (kVars / 2) * kRounds);
}

TEST_CASE("weave_run_thread_destructors runs and clears the main thread's registrations") {
  clear_seen();
  static int a, b, c;
  void *va = &a, *vb = &b, *vc = &c;
  REQUIRE(weave_register_destructor(&va, record_value) == 0);
  REQUIRE(weave_register_destructor(&vb, record_value) == 0);
  REQUIRE(weave_register_destructor(&vc, record_value) == 0);
  REQUIRE(weave_unregister_destructor(&vb) == 1);
  CHECK(weave_run_thread_destructors() == 2);
  CHECK(weave_run_thread_destructors() == 0);
  {
    std::lock_guard<std::mutex> g(seen_mutex);
    CHECK(seen == std::vector<void *>{&a, &c});
  }
  // The thread can register again afterwards.
  REQUIRE(weave_register_destructor(&va, record_value) == 0);
  CHECK(weave_run_thread_destructors() == 1);
}

TEST_CASE("a fork child registers destructors and runs threads that do") {
  // Warm the library up in the parent first, as a real program would.
  void *warm = nullptr;
  REQUIRE(weave_register_destructor(&warm, record_value) == 0);
  REQUIRE(weave_unregister_destructor(&warm) == 1);

  pid_t pid = ftw_test::fork_quiesced();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    static std::atomic<int> child_calls{0};
    auto count = [](void *) { child_calls.fetch_add(1); };
    void *main_var = nullptr;
    if (weave_register_destructor(&main_var, count) != 0) _exit(10);
    pthread_t threads[4];
    for (auto &t : threads) {
      if (pthread_create(&t, nullptr, [](void *) -> void * {
            auto inner = [](void *) { child_calls.fetch_add(1); };
            weave_register_destructor(&t_slot, inner);
            weave_register_destructor(&t_slot_b, inner);
            return nullptr;
          }, nullptr) != 0) _exit(11);
    }
    for (auto &t : threads) pthread_join(t, nullptr);
    if (child_calls.load() != 8) _exit(12);
    if (weave_run_thread_destructors() != 1) _exit(13);
    _exit(child_calls.load() == 9 ? 0 : 14);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ---------------------------------------------------------------------------
// Destructors that register and unregister destructors
// ---------------------------------------------------------------------------

namespace {
std::atomic<int> chain_runs{0};
std::atomic<int> chain_refused{0};
weave_local void *t_chain;

void chain_destructor(void *) {
  chain_runs.fetch_add(1);
  int rc = weave_register_destructor(&t_chain, chain_destructor);
  if (rc == WEAVE_E_STATE) chain_refused.fetch_add(1);
}

std::atomic<int> unregister_rc{-1000};
void unregister_b_destructor(void *) { unregister_rc = weave_unregister_destructor(&t_slot_b); }
// Registers record_b for t_slot_b and unregisters it again, from a destructor.
void register_then_unregister_b(void *) {
  weave_register_destructor(&t_slot_b, record_b);
  unregister_rc = weave_unregister_destructor(&t_slot_b);
}

std::atomic<int> nested_run_result{0};
void nested_run_destructor(void *) { nested_run_result = weave_run_thread_destructors(); }
}  // namespace

TEST_CASE("a destructor may register more: bounded rounds, the excess refused, not lost") {
  chain_runs = 0;
  chain_refused = 0;
  run_pthread([] { REQUIRE(weave_register_destructor(&t_chain, chain_destructor) == 0); });
  CHECK(chain_runs.load() == WEAVE_DESTRUCTOR_ROUNDS);
  CHECK(chain_refused.load() == 1);
}

// As ft_utils, whose teardown takes the thread's whole list before the first
// destructor runs: the registrations of a running teardown are no longer the
// thread's, so a destructor's unregister does not see them.
TEST_CASE("a destructor's unregister does not reach the teardown's pending entries: 0, and they run") {
  clear_seen();
  unregister_rc = -1000;
  run_pthread([] {
    REQUIRE(weave_register_destructor(&t_slot, unregister_b_destructor) == 0);
    REQUIRE(weave_register_destructor(&t_slot_b, record_b) == 0);
    REQUIRE(weave_register_destructor(&t_slot, record_a) == 0);
  });
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(unregister_rc.load() == 0);
  CHECK(order == std::vector<std::string>{"b", "a"});
}

TEST_CASE("the same from weave_run_thread_destructors") {
  clear_seen();
  unregister_rc = -1000;
  run_pthread([] {
    REQUIRE(weave_register_destructor(&t_slot, unregister_b_destructor) == 0);
    REQUIRE(weave_register_destructor(&t_slot_b, record_b) == 0);
    CHECK(weave_run_thread_destructors() == 2);
    CHECK(unregister_rc.load() == 0);
  });
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(order == std::vector<std::string>{"b"});
}

TEST_CASE("a destructor may unregister what a destructor registered in the same teardown") {
  clear_seen();
  unregister_rc = -1000;
  run_pthread([] { REQUIRE(weave_register_destructor(&t_slot, register_then_unregister_b) == 0); });
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(unregister_rc.load() == 1);
  CHECK(order.empty());
}

TEST_CASE("weave_run_thread_destructors from inside a destructor is refused") {
  nested_run_result = 0;
  run_pthread([] { REQUIRE(weave_register_destructor(&t_slot, nested_run_destructor) == 0); });
  CHECK(nested_run_result.load() == WEAVE_E_STATE);
}

namespace {
std::atomic<int> late_register_rc{0};
std::atomic<int> late_unregister_rc{0};
// A C++ thread_local destructor runs before every pthread key destructor, so
// before the thread's ft_weave teardown: what it registers still runs.
struct LateRegistrar {
  ~LateRegistrar() {
    static weave_local void *late;
    late = reinterpret_cast<void *>(5);
    late_register_rc = weave_register_destructor(&late, record_value);
    late_unregister_rc = weave_unregister_destructor(&late);
    late_register_rc = late_register_rc + weave_register_destructor(&late, record_value);
  }
};
}  // namespace

TEST_CASE("a thread_local destructor may register: the registration runs at the thread's teardown") {
  clear_seen();
  late_register_rc = -1;
  late_unregister_rc = -1;
  run_pthread([] {
    (void)weave_thread_id();  // the runtime attaches the thread here
    REQUIRE(weave_register_destructor(&t_slot, record_a) == 0);
    static thread_local LateRegistrar registrar;  // destroyed before the teardown
    (void)&registrar;
  });
  CHECK(late_register_rc.load() == 0);
  CHECK(late_unregister_rc.load() == 1);
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(order == std::vector<std::string>{"a"});
  CHECK(seen == std::vector<void *>{reinterpret_cast<void *>(5)});
}

namespace {
std::atomic<int> storage_registration_rc{1};
void record_late(void *) {
  std::lock_guard<std::mutex> g(seen_mutex);
  order.push_back("late");
}
// A storage value's destructor runs in the thread's teardown, after the
// thread-exit destructors: what it registers must still run (or be refused).
void storage_destructor_registering(void *) {
  static weave_local void *late;
  storage_registration_rc = weave_register_destructor(&late, record_late);
}
}  // namespace

TEST_CASE("a storage value's destructor may register a destructor at thread exit: it runs, not lost") {
  clear_seen();
  REQUIRE(weave_tls_set_destructor("ftw.test.destructors:registers", storage_destructor_registering) == 0);
  run_pthread([] {
    REQUIRE(weave_tls_get("ftw.test.destructors:registers", 8, nullptr, nullptr) != nullptr);
    REQUIRE(weave_register_destructor(&t_slot, record_a) == 0);
  });
  CHECK(storage_registration_rc.load() == 0);
  std::lock_guard<std::mutex> g(seen_mutex);
  CHECK(order == std::vector<std::string>{"a", "late"});
}

// ---------------------------------------------------------------------------
// Ordering against pthread keys, and the wvls_key_* wrappers
// ---------------------------------------------------------------------------

namespace {
wvls_key_t order_key;
std::atomic<int> key_destructor_value{0};
std::atomic<int> key_destructor_lock_rc{-1};
weave_mutex_t key_destructor_mutex;
// Key destructors run before the thread's teardown and while the runtime still
// has the thread attached: they may call the library.
void key_destructor(void *value) {
  key_destructor_value = static_cast<int>(reinterpret_cast<std::intptr_t>(value));
  key_destructor_lock_rc = weave_mutex_lock_timed(&key_destructor_mutex, 1000000, WEAVE_LOCK_DONT_DETACH);
  if (key_destructor_lock_rc == WEAVE_LOCK_ACQUIRED) {
    weave_mutex_unlock(&key_destructor_mutex);
  }
  std::lock_guard<std::mutex> g(seen_mutex);
  order.push_back("key");
}
}  // namespace

TEST_CASE("wvls keys: create, set, get, delete; key destructors run before weave destructors and may call the library") {
  clear_seen();
  REQUIRE(wvls_key_create(&order_key, key_destructor) == 0);
  CHECK(wvls_get_value(order_key) == nullptr);
  REQUIRE(wvls_set_value(order_key, reinterpret_cast<void *>(7)) == 0);
  CHECK(wvls_get_value(order_key) == reinterpret_cast<void *>(7));
  REQUIRE(wvls_set_value(order_key, nullptr) == 0);

  run_pthread([] {
    REQUIRE(wvls_set_value(order_key, reinterpret_cast<void *>(42)) == 0);
    REQUIRE(weave_register_destructor(&t_slot, record_a) == 0);
  });
  CHECK(key_destructor_value.load() == 42);
  CHECK(key_destructor_lock_rc.load() == WEAVE_LOCK_ACQUIRED);
  {
    std::lock_guard<std::mutex> g(seen_mutex);
    CHECK(order == std::vector<std::string>{"key", "a"});
  }
  CHECK(wvls_key_delete(order_key) == 0);
  CHECK(wvls_key_create(nullptr, nullptr) == EINVAL);
}

// ---------------------------------------------------------------------------
// Bad input: error codes and messages, nothing stored, no abort
// ---------------------------------------------------------------------------

namespace {
void never_called(void *) { FAIL("a destructor from a refused registration ran"); }
}

TEST_CASE("bad input to the destructor API") {
  void *var = nullptr;
  CHECK(weave_register_destructor(nullptr, never_called) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("var is NULL") != std::string::npos);
  CHECK(weave_register_destructor(&var, nullptr) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("destructor is NULL") != std::string::npos);
  CHECK(weave_unregister_destructor(nullptr) == WEAVE_E_INVALID);
  CHECK(weave_unregister_destructor(&var) == 0);

  // ft_utils names: no error value to return, no crash, nothing stored.
  register_wvls_destructor(nullptr, never_called);
  register_wvls_destructor(&var, nullptr);
  CHECK(unregister_wvls_destructor(nullptr) == 0);
  CHECK(_py_register_wvls_destructor(nullptr, never_called) == 1);
  // As ft_utils: unregistering NULL is no failure; nothing was registered.
  int unreg = 5;
  CHECK(_py_unregister_wvls_destructor(nullptr, &unreg) == 0);
  CHECK(unreg == 0);
  CHECK(_py_unregister_wvls_destructor(nullptr, nullptr) == 0);
  CHECK(_py_unregister_wvls_destructor(&var, nullptr) == 0);

  // Nothing was stored by any refused call.
  CHECK(weave_run_thread_destructors() == 0);

  // The same on a fresh thread whose first call is a bad one.
  run_pthread([] {
    CHECK(weave_register_destructor(nullptr, never_called) == WEAVE_E_INVALID);
    CHECK(std::string(weave_last_error()).find("var is NULL") != std::string::npos);
  });
}

TEST_CASE("compatibility names behave as the weave_ names") {
  reset_state();
  run_pthread([] {
    register_wvls_destructor(&ptr1, destructor_add_1);
    register_wvls_destructor(&ptr2, destructor_add_2);
    CHECK(unregister_wvls_destructor(&ptr2) == 1);
    CHECK(unregister_wvls_destructor(&ptr2) == 0);
  });
  CHECK(called_1() == 1);
  CHECK(called_2() == 0);
}

TEST_CASE("the exported copies of the _py_ helpers behave as the inline ones") {
  using RegisterFn = int (*)(void **, wvls_destructor_t);
  using UnregisterFn = int (*)(void **, int *);
  void *reg = dlsym(RTLD_DEFAULT, "_py_register_wvls_destructor");
  void *unreg = dlsym(RTLD_DEFAULT, "_py_unregister_wvls_destructor");
  REQUIRE(reg != nullptr);
  REQUIRE(unreg != nullptr);
  RegisterFn do_register;
  UnregisterFn do_unregister;
  std::memcpy(&do_register, &reg, sizeof reg);
  std::memcpy(&do_unregister, &unreg, sizeof unreg);

  reset_state();
  void *var = ptr1;
  CHECK(do_register(nullptr, destructor_add_1) == 1);
  CHECK(do_register(&var, destructor_add_1) == 0);
  int unregistered = -1;
  CHECK(do_unregister(&var, &unregistered) == 0);
  CHECK(unregistered == 1);
  CHECK(do_unregister(&var, nullptr) == 0);
  unregistered = -1;
  CHECK(do_unregister(nullptr, &unregistered) == 0);
  CHECK(unregistered == 0);
  CHECK(weave_run_thread_destructors() == 0);
}
