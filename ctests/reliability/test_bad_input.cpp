// Bad input to every exported function: NULL, misaligned addresses where the
// API forbids them, negative and huge timeouts, unlock by non-owners, unknown
// flags, empty and 10,000-byte storage keys. Each call must return its
// documented error (or record it in weave_last_error() for void functions)
// and the process must go on.
//
// The sweep is table-driven: BAD_INPUT(name) both registers an entry and
// becomes its own Catch2 (so CTest) test, and "every export has an entry"
// compares the table with ctests/exported_symbols.txt, read at run time. A new
// export without an entry here fails that test.
//
// Every entry calls the *exported* symbol, looked up with dlsym: for the
// header's static inline functions that is the exported copy FFIs use, which
// C code including the header would otherwise never reach.
#include "test_util.hpp"

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>

#ifndef FTW_EXPORTED_SYMBOLS_FILE
#error "FTW_EXPORTED_SYMBOLS_FILE must name ctests/exported_symbols.txt"
#endif

using ftw_test::native_thread;
using ftw_test::sleep_ms;
using ftw_test::wait_until;

namespace {

std::map<std::string, void (*)()> &entries() {
  static std::map<std::string, void (*)()> table;
  return table;
}

bool register_entry(const char *name, void (*fn)()) {
  entries()[name] = fn;
  return true;
}

// The exported symbol `name`, typed like the header's declaration.
template <class F>
F *exported(const char *name) {
  void *p = dlsym(RTLD_DEFAULT, name);
  INFO("dlsym(" << name << ")");
  REQUIRE(p != nullptr);
  return reinterpret_cast<F *>(p);
}
#define EXPORTED(fn) exported<decltype(fn)>(#fn)

std::string last_error() { return weave_last_error(); }

// Records a known message ("weave_stats: out is NULL") so that a later check
// sees whether the call under test recorded its own.
void mark_last_error() {
  REQUIRE(weave_stats(nullptr) == WEAVE_E_INVALID);
  REQUIRE(last_error().find("weave_stats") != std::string::npos);
}

bool last_error_has(const char *text) { return last_error().find(text) != std::string::npos; }

const int64_t kHugeTimeouts[] = {INT64_MAX, INT64_MAX - 1, INT64_C(1) << 62};
const int64_t kNegativeTimeouts[] = {-1, -5, INT64_MIN, INT64_MIN + 1};

// Runs wake() every millisecond on another thread until wait() returned, and
// returns wait()'s result. Retrying the wake makes the outcome independent of
// who runs first; the 10 s bound only keeps a broken build from hanging.
int wait_with_waker(const std::function<int()> &wait, const std::function<void()> &wake) {
  std::atomic<int> done{0};
  native_thread waker([&] {
    int64_t deadline = ftw_test::now_ns() + INT64_C(10) * 1000000000;
    sleep_ms(5);
    while (done.load() == 0 && ftw_test::now_ns() < deadline) {
      wake();
      sleep_ms(1);
    }
  });
  int rc = wait();
  done = 1;
  waker.join();
  return rc;
}

void never_called_destructor(void *) {}
int once_ok(void *) { return 0; }
int once_bad_result(void *) { return 7; }

}  // namespace

#define BAD_INPUT(fn)                                                                       \
  static void bad_input_##fn();                                                             \
  [[maybe_unused]] static const bool registered_##fn = register_entry(#fn, &bad_input_##fn); \
  TEST_CASE("bad input: " #fn) { bad_input_##fn(); }                                       \
  static void bad_input_##fn()

TEST_CASE("every exported function has a bad-input entry, and every entry is exported") {
  std::ifstream in(FTW_EXPORTED_SYMBOLS_FILE);
  REQUIRE(in.good());
  std::set<std::string> exports;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') {
      exports.insert(line);
    }
  }
  REQUIRE(exports.size() > 50);
  for (const auto &name : exports) {
    INFO("exported function without a BAD_INPUT entry in test_bad_input.cpp: " << name);
    CHECK(entries().count(name) == 1);
  }
  for (const auto &entry : entries()) {
    INFO("BAD_INPUT entry for a name that exported_symbols.txt does not list: " << entry.first);
    CHECK(exports.count(entry.first) == 1);
    CHECK(dlsym(RTLD_DEFAULT, entry.first.c_str()) != nullptr);
  }
}

// ---- 1. Conventions: no input to get wrong, except weave_strerror's code ----

BAD_INPUT(weave_strerror) {
  auto f = EXPORTED(weave_strerror);
  for (int code : {INT_MIN, INT_MIN + 1, -100, -108, -1, 1, 42, INT_MAX}) {
    INFO("code " << code);
    REQUIRE(f(code) != nullptr);
    CHECK(std::string(f(code)) == "unknown ft_weave error code");
  }
  CHECK(std::string(f(0)) == "success");
  for (int code = WEAVE_E_DEADLOCK; code <= WEAVE_E_INVALID; ++code) {
    CHECK(std::string(f(code)) != "unknown ft_weave error code");
  }
}

BAD_INPUT(weave_last_error) {
  // Takes nothing; never NULL, also on a thread whose first call it is.
  REQUIRE(EXPORTED(weave_last_error)() != nullptr);
  std::atomic<int> fresh_ok{0};
  auto f = EXPORTED(weave_last_error);
  native_thread([&] { fresh_ok = f() != nullptr && f()[0] == '\0'; }).join();
  CHECK(fresh_ok == 1);
}

BAD_INPUT(weave_thread_id) { CHECK(EXPORTED(weave_thread_id)() == weave_thread_id()); }

BAD_INPUT(weave_version) { CHECK(std::string(EXPORTED(weave_version)()) == FT_WEAVE_VERSION_STRING); }

BAD_INPUT(weave_abi_version) { CHECK(EXPORTED(weave_abi_version)() == FT_WEAVE_ABI_VERSION); }

// ---- 2. Thread-exit destructors --------------------------------------------

BAD_INPUT(weave_register_destructor) {
  auto f = EXPORTED(weave_register_destructor);
  void *var = nullptr;
  CHECK(f(nullptr, never_called_destructor) == WEAVE_E_INVALID);
  CHECK(f(&var, nullptr) == WEAVE_E_INVALID);
  CHECK(f(nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_register_destructor"));
  CHECK(weave_run_thread_destructors() == 0);  // nothing was stored
}

BAD_INPUT(weave_unregister_destructor) {
  auto f = EXPORTED(weave_unregister_destructor);
  void *var = nullptr;
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  CHECK(f(&var) == 0);  // never registered
}

BAD_INPUT(weave_run_thread_destructors) {
  // No input; with nothing registered it runs nothing, here and on a fresh thread.
  auto f = EXPORTED(weave_run_thread_destructors);
  CHECK(f() == 0);
  std::atomic<int> rc{-1000};
  native_thread([&] { rc = f(); }).join();
  CHECK(rc == 0);
}

BAD_INPUT(register_wvls_destructor) {
  auto f = EXPORTED(register_wvls_destructor);
  void *var = nullptr;
  mark_last_error();
  f(nullptr, never_called_destructor);
  CHECK(last_error_has("var is NULL"));
  mark_last_error();
  f(&var, nullptr);
  CHECK(last_error_has("destructor is NULL"));
  CHECK(weave_run_thread_destructors() == 0);
}

BAD_INPUT(unregister_wvls_destructor) {
  auto f = EXPORTED(unregister_wvls_destructor);
  void *var = nullptr;
  CHECK(f(nullptr) == 0);  // ft_utils has no error value
  CHECK(f(&var) == 0);
}

BAD_INPUT(_py_register_wvls_destructor) {
  auto f = EXPORTED(_py_register_wvls_destructor);
  void *var = nullptr;
  mark_last_error();
  CHECK(f(nullptr, never_called_destructor) == 1);
  CHECK(last_error_has("var is NULL"));
  CHECK(f(&var, nullptr) == 1);
  CHECK(weave_run_thread_destructors() == 0);
}

BAD_INPUT(_py_unregister_wvls_destructor) {
  auto f = EXPORTED(_py_unregister_wvls_destructor);
  void *var = nullptr;
  int unregistered = 5;
  // As ft_utils: unregistering NULL is no failure (nothing is registered for it).
  CHECK(f(nullptr, &unregistered) == 0);
  CHECK(unregistered == 0);
  CHECK(f(nullptr, nullptr) == 0);
  CHECK(f(&var, nullptr) == 0);  // NULL out-parameter is allowed
  CHECK(f(&var, &unregistered) == 0);
  CHECK(unregistered == 0);
}

BAD_INPUT(wvls_key_create) {
  CHECK(EXPORTED(wvls_key_create)(nullptr, never_called_destructor) == EINVAL);
  CHECK(EXPORTED(wvls_key_create)(nullptr, nullptr) == EINVAL);
}

BAD_INPUT(wvls_key_delete) {
  auto f = EXPORTED(wvls_key_delete);
  CHECK(f(0xFFFFFFFFu) == EINVAL);
  wvls_key_t key;
  REQUIRE(wvls_key_create(&key, nullptr) == 0);
  CHECK(f(key) == 0);
  CHECK(f(key) == EINVAL);  // deleted twice
}

BAD_INPUT(wvls_set_value) {
  auto f = EXPORTED(wvls_set_value);
  int x = 0;
  CHECK(f(0xFFFFFFFFu, &x) == EINVAL);
  CHECK(f(0xFFFFFFFFu, nullptr) == EINVAL);
}

BAD_INPUT(wvls_get_value) { CHECK(EXPORTED(wvls_get_value)(0xFFFFFFFFu) == nullptr); }

// ---- 3. Parking lot ----------------------------------------------------------

BAD_INPUT(weave_park) {
  auto f = EXPORTED(weave_park);
  alignas(16) uint8_t buf[32] = {0};
  uint64_t zero = 0;
  CHECK(f(nullptr, &zero, 1, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(f(buf, nullptr, 1, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(f(nullptr, nullptr, 8, -1, nullptr, 1) == WEAVE_E_INVALID);
  for (size_t size : {size_t(0), size_t(3), size_t(6), size_t(16), SIZE_MAX}) {
    INFO("size " << size);
    CHECK(f(buf, &zero, size, -1, nullptr, 0) == WEAVE_E_INVALID);
  }
  // Misaligned for its size (the API forbids it: the value is read atomically).
  for (size_t size : {size_t(2), size_t(4), size_t(8)}) {
    for (size_t offset = 1; offset < size; ++offset) {
      INFO("size " << size << " offset " << offset);
      CHECK(f(buf + offset, &zero, size, -1, nullptr, 0) == WEAVE_E_INVALID);
      CHECK(last_error_has("aligned"));
    }
  }
  // Every timeout with a value that differs: AGAIN at once, whatever the timeout.
  uint64_t one = 1;
  for (int64_t t : {INT64_MIN, int64_t(-1), int64_t(0), INT64_MAX}) {
    CHECK(f(buf, &one, 8, t, nullptr, 0) == WEAVE_PARK_AGAIN);
  }
  // Timeout 0 with a matching value: TIMEOUT without sleeping.
  CHECK(f(buf, &zero, 8, 0, nullptr, 0) == WEAVE_PARK_TIMEOUT);
  // Negative and huge timeouts mean "no deadline": the wait ends with the wake,
  // not with an early TIMEOUT (an overflowing deadline computation would).
  // Any non-zero detach is "detach".
  for (int64_t t : {INT64_MIN, int64_t(-7), INT64_MAX, INT64_MAX - 1}) {
    INFO("timeout " << t);
    alignas(8) uint64_t word = 1;
    int rc = wait_with_waker([&] { return f(&word, &one, 8, t, nullptr, -1); },
                             [&] {
                               __atomic_store_n(&word, 0, __ATOMIC_RELEASE);
                               weave_unpark_all(&word);
                             });
    CHECK((rc == WEAVE_PARK_OK || rc == WEAVE_PARK_AGAIN));
  }
}

namespace {
std::atomic<int> unpark_callback_calls{0};
void count_unpark_callback(void *, void *, int) { unpark_callback_calls++; }
}  // namespace

BAD_INPUT(weave_unpark) {
  auto f = EXPORTED(weave_unpark);
  CHECK(f(nullptr, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(f(nullptr, count_unpark_callback, nullptr) == WEAVE_E_INVALID);
  CHECK(unpark_callback_calls == 0);  // refused before the callback
  CHECK(last_error_has("weave_unpark"));
  // Any address is fine, also one nobody ever parked on or a misaligned one.
  alignas(8) char buf[16];
  CHECK(f(buf + 3, count_unpark_callback, nullptr) == 0);
  CHECK(unpark_callback_calls == 1);
}

BAD_INPUT(weave_unpark_all) {
  auto f = EXPORTED(weave_unpark_all);
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_unpark_all"));
  char c;
  CHECK(f(&c) == 0);
}

namespace {
void *no_thread_state() { return nullptr; }
int no_gil_check() { return 0; }
void *save_nothing() { return nullptr; }
void restore_nothing(void *) {}
int no_pending_calls() { return 0; }
}  // namespace

BAD_INPUT(weave_set_python_api) {
  auto f = EXPORTED(weave_set_python_api);
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_set_python_api"));
  // Each required function missing in turn: refused, nothing stored.
  for (int missing = 0; missing < 4; missing++) {
    weave_python_api_t api = {no_thread_state, nullptr, save_nothing, restore_nothing, no_pending_calls};
    if (missing == 0) api.thread_state_get = nullptr;
    if (missing == 1) api.save_thread = nullptr;
    if (missing == 2) api.restore_thread = nullptr;
    if (missing == 3) api.make_pending_calls = nullptr;
    ftw_test::prime_last_error("weave_set_python_api");
    CHECK(f(&api) == WEAVE_E_INVALID);
    CHECK(last_error_has("weave_set_python_api"));
  }
  // A complete set (no thread state attached, so nothing is ever released):
  // accepted, once and again, and detached waits still work.
  weave_python_api_t api = {no_thread_state, no_gil_check, save_nothing, restore_nothing, no_pending_calls};
  CHECK(f(&api) == 0);
  CHECK(f(&api) == 0);
  uint8_t b = 1, e = 1;
  CHECK(weave_park(&b, &e, 1, 1000000, nullptr, 1) == WEAVE_PARK_TIMEOUT);
}

namespace {
void set_string_nothing(void *, const char *) {}
int some_type;
}  // namespace

BAD_INPUT(weave_set_python_errors) {
  auto f = EXPORTED(weave_set_python_errors);
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_set_python_errors"));
  // Each member missing in turn: refused. (A complete set is not handed
  // over here: it would be kept for the rest of this process.)
  for (int missing = 0; missing < 4; missing++) {
    weave_python_errors_t errors = {set_string_nothing, &some_type, &some_type, &some_type};
    if (missing == 0) errors.set_string = nullptr;
    if (missing == 1) errors.value_error = nullptr;
    if (missing == 2) errors.memory_error = nullptr;
    if (missing == 3) errors.runtime_error = nullptr;
    ftw_test::prime_last_error("weave_set_python_errors");
    CHECK(f(&errors) == WEAVE_E_INVALID);
    CHECK(last_error_has("weave_set_python_errors"));
  }
}

BAD_INPUT(weave_parking_lot_after_fork) {
  // Takes nothing; only for a fork child. There, calling it twice is harmless
  // and the lot keeps working.
  auto f = EXPORTED(weave_parking_lot_after_fork);
  pid_t pid = ftw_test::fork_quiesced();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    f();
    f();
    uint8_t b = 1, e = 1;
    int rc = weave_park(&b, &e, 1, 1000000, nullptr, 0) == WEAVE_PARK_TIMEOUT ? 0 : 1;
    _exit(rc);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ---- 4. Locks: mutex ---------------------------------------------------------

namespace {

void check_mutex_lock_null(void (*lock)(weave_mutex_t *)) {
  mark_last_error();
  lock(nullptr);
  CHECK(last_error_has("weave_mutex_lock: mutex is NULL"));
}

void check_mutex_unlock(int (*unlock)(weave_mutex_t *)) {
  CHECK(unlock(nullptr) == WEAVE_E_INVALID);
  weave_mutex_t m = {0};
  CHECK(unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(mutex_state(m) == 0);
  set_mutex_state(m, MUTEX_STATE_PARKED);  // unlocked with waiters: still not owned
  CHECK(unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(mutex_state(m) == MUTEX_STATE_PARKED);
  // Unlock by a thread that did not lock it: allowed (no owner is recorded,
  // as in CPython), documented to return 0.
  set_mutex_state(m, 0);
  native_thread([&] { weave_mutex_lock(&m); }).join();
  CHECK(unlock(&m) == 0);
  CHECK(mutex_state(m) == 0);
}

}  // namespace

BAD_INPUT(weave_mutex_lock) { check_mutex_lock_null(EXPORTED(weave_mutex_lock)); }
BAD_INPUT(weave_mutex_lock_slow) { check_mutex_lock_null(EXPORTED(weave_mutex_lock_slow)); }
BAD_INPUT(weave_mutex_unlock) { check_mutex_unlock(EXPORTED(weave_mutex_unlock)); }
BAD_INPUT(weave_mutex_unlock_slow) { check_mutex_unlock(EXPORTED(weave_mutex_unlock_slow)); }

BAD_INPUT(weave_mutex_unlock_wake) {
  auto f = EXPORTED(weave_mutex_unlock_wake);
  mark_last_error();
  f(nullptr);
  CHECK(last_error_has("weave_mutex_unlock: mutex is NULL"));
  // Called on a mutex nobody waits for (locked or not): changes nothing but
  // a stale _parked, and never touches _locked.
  weave_mutex_t m = {0};
  f(&m);
  CHECK(mutex_state(m) == 0);
  weave_mutex_lock(&m);
  f(&m);
  CHECK(mutex_state(m) == WEAVE_MUTEX_LOCKED);
  CHECK(weave_mutex_unlock(&m) == 0);
  CHECK(mutex_state(m) == 0);
}

BAD_INPUT(weave_mutex_trylock) {
  auto f = EXPORTED(weave_mutex_trylock);
  CHECK(f(nullptr) == 0);
  weave_mutex_t m = {0};
  CHECK(f(&m) == 1);
  CHECK(f(&m) == 0);
  CHECK(weave_mutex_unlock(&m) == 0);
}

BAD_INPUT(weave_mutex_is_locked) { CHECK(EXPORTED(weave_mutex_is_locked)(nullptr) == 0); }

BAD_INPUT(weave_mutex_lock_timed) {
  auto f = EXPORTED(weave_mutex_lock_timed);
  weave_mutex_t m = {0};
  CHECK(f(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(f(nullptr, -1, WEAVE_LOCK_DETACH) == WEAVE_E_INVALID);
  for (int flags : {8, 16, -1, INT_MIN, INT_MAX, WEAVE_LOCK_ALL_FLAGS + 1}) {
    INFO("flags " << flags);
    CHECK(f(&m, 0, flags) == WEAVE_E_INVALID);
    CHECK(last_error_has("unknown flags"));
    CHECK(mutex_state(m) == 0);
  }
  // Negative and huge timeouts on a free mutex: acquired at once.
  for (int64_t t : {INT64_MIN, int64_t(-1), INT64_MAX}) {
    CHECK(f(&m, t, WEAVE_LOCK_ALL_FLAGS) == WEAVE_LOCK_ACQUIRED);
    CHECK(weave_mutex_unlock(&m) == 0);
  }
  // On a held mutex: they wait for the unlock instead of failing early.
  for (int64_t t : {INT64_MIN, INT64_MAX, INT64_MAX - 1}) {
    INFO("timeout " << t);
    weave_mutex_lock(&m);
    std::atomic<int> rc{-1000};
    native_thread waiter([&] {
      rc = f(&m, t, WEAVE_LOCK_DETACH);
      if (rc == WEAVE_LOCK_ACQUIRED) weave_mutex_unlock(&m);
    });
    sleep_ms(10);
    CHECK(rc == -1000);  // still waiting
    CHECK(weave_mutex_unlock(&m) == 0);
    waiter.join();
    CHECK(rc == WEAVE_LOCK_ACQUIRED);
    CHECK(mutex_state(m) == 0);
  }
}

// ---- Raw mutex ---------------------------------------------------------------

namespace {
void check_raw_lock_null(void (*lock)(weave_raw_mutex_t *)) {
  mark_last_error();
  lock(nullptr);
  CHECK(last_error_has("weave_raw_mutex_lock: mutex is NULL"));
}
void check_raw_unlock(int (*unlock)(weave_raw_mutex_t *)) {
  CHECK(unlock(nullptr) == WEAVE_E_INVALID);
  weave_raw_mutex_t m = {0};
  CHECK(unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(m.v == 0);
}
}  // namespace

BAD_INPUT(weave_raw_mutex_lock) { check_raw_lock_null(EXPORTED(weave_raw_mutex_lock)); }
BAD_INPUT(weave_raw_mutex_lock_slow) { check_raw_lock_null(EXPORTED(weave_raw_mutex_lock_slow)); }
BAD_INPUT(weave_raw_mutex_unlock) { check_raw_unlock(EXPORTED(weave_raw_mutex_unlock)); }
BAD_INPUT(weave_raw_mutex_unlock_slow) { check_raw_unlock(EXPORTED(weave_raw_mutex_unlock_slow)); }

// ---- Statistics ----------------------------------------------------------------

BAD_INPUT(weave_stats) {
  CHECK(EXPORTED(weave_stats)(nullptr) == WEAVE_E_INVALID);
  weave_stats_t s;
  CHECK(EXPORTED(weave_stats)(&s) == 0);
}

// ---- Event -----------------------------------------------------------------------

namespace {
void check_event_timeouts(int (*wait)(weave_event_t *, int64_t, int)) {
  CHECK(wait(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(wait(nullptr, -1, 1) == WEAVE_E_INVALID);
  CHECK(wait(nullptr, INT64_MAX, 1) == WEAVE_E_INVALID);
  weave_event_t e = {0};
  CHECK(wait(&e, 0, 0) == 0);
  for (int64_t t : {INT64_MIN, int64_t(-3), INT64_MAX, INT64_MAX - 1}) {
    INFO("timeout " << t);
    weave_event_t evt = {0};
    CHECK(wait_with_waker([&] { return wait(&evt, t, 5); }, [&] { weave_event_notify(&evt); }) == 1);
  }
}
}  // namespace

BAD_INPUT(weave_event_notify) {
  mark_last_error();
  EXPORTED(weave_event_notify)(nullptr);
  CHECK(last_error_has("weave_event_notify: event is NULL"));
}

BAD_INPUT(weave_event_wait_slow) { check_event_timeouts(EXPORTED(weave_event_wait_slow)); }
BAD_INPUT(weave_event_wait_timed) { check_event_timeouts(EXPORTED(weave_event_wait_timed)); }
BAD_INPUT(weave_event_is_set) { CHECK(EXPORTED(weave_event_is_set)(nullptr) == 0); }

BAD_INPUT(weave_event_wait) {
  mark_last_error();
  EXPORTED(weave_event_wait)(nullptr);  // returns, does not wait forever
  CHECK(last_error_has("weave_event_wait: event is NULL"));
}

// ---- Once ------------------------------------------------------------------------

namespace {
void check_once(int (*call)(weave_once_t *, weave_once_fn *, void *)) {
  weave_once_t o = {0};
  CHECK(call(nullptr, once_ok, nullptr) == WEAVE_E_INVALID);
  CHECK(call(&o, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(call(nullptr, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(o.v == 0);
  CHECK(call(&o, once_bad_result, nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("neither 0 nor -1"));
  CHECK(o.v == 0);  // reset: a later call runs again
  CHECK(call(&o, once_ok, nullptr) == 0);
  CHECK(o.v == WEAVE_ONCE_DONE);
}
}  // namespace

BAD_INPUT(weave_once_call) { check_once(EXPORTED(weave_once_call)); }
BAD_INPUT(weave_once_call_slow) { check_once(EXPORTED(weave_once_call_slow)); }

// ---- RW mutex --------------------------------------------------------------------

namespace {
void check_rw_lock_null(void (*lock)(weave_rwmutex_t *), const char *message) {
  mark_last_error();
  lock(nullptr);
  CHECK(last_error_has(message));
}
void check_rw_runlock(int (*runlock)(weave_rwmutex_t *)) {
  CHECK(runlock(nullptr) == WEAVE_E_INVALID);
  weave_rwmutex_t rw = {0};
  CHECK(runlock(&rw) == WEAVE_E_NOT_OWNER);  // nobody holds it
  CHECK(rw.bits == 0);
  weave_rwmutex_lock(&rw);
  CHECK(runlock(&rw) == WEAVE_E_NOT_OWNER);  // a writer holds it
  CHECK(rw.bits == WEAVE_RWMUTEX_WRITE_LOCKED);
  CHECK(weave_rwmutex_unlock(&rw) == 0);
}
void check_rw_unlock(int (*unlock)(weave_rwmutex_t *)) {
  CHECK(unlock(nullptr) == WEAVE_E_INVALID);
  weave_rwmutex_t rw = {0};
  CHECK(unlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(rw.bits == 0);
  weave_rwmutex_rlock(&rw);
  CHECK(unlock(&rw) == WEAVE_E_NOT_OWNER);  // read-locked, not write-locked
  CHECK(rw.bits == WEAVE_RWMUTEX_ONE_READER);
  CHECK(weave_rwmutex_runlock(&rw) == 0);
}
}  // namespace

BAD_INPUT(weave_rwmutex_rlock) { check_rw_lock_null(EXPORTED(weave_rwmutex_rlock), "weave_rwmutex_rlock: rwmutex is NULL"); }
BAD_INPUT(weave_rwmutex_rlock_slow) {
  check_rw_lock_null(EXPORTED(weave_rwmutex_rlock_slow), "weave_rwmutex_rlock: rwmutex is NULL");
}
BAD_INPUT(weave_rwmutex_lock) { check_rw_lock_null(EXPORTED(weave_rwmutex_lock), "weave_rwmutex_lock: rwmutex is NULL"); }
BAD_INPUT(weave_rwmutex_lock_slow) {
  check_rw_lock_null(EXPORTED(weave_rwmutex_lock_slow), "weave_rwmutex_lock: rwmutex is NULL");
}
BAD_INPUT(weave_rwmutex_runlock) { check_rw_runlock(EXPORTED(weave_rwmutex_runlock)); }
BAD_INPUT(weave_rwmutex_runlock_slow) { check_rw_runlock(EXPORTED(weave_rwmutex_runlock_slow)); }
BAD_INPUT(weave_rwmutex_unlock) { check_rw_unlock(EXPORTED(weave_rwmutex_unlock)); }
BAD_INPUT(weave_rwmutex_unlock_slow) { check_rw_unlock(EXPORTED(weave_rwmutex_unlock_slow)); }
// No argument to get wrong: the same non-NULL table on every call, from any thread.
BAD_INPUT(weave__rwmutex_readers) {
  weave__rwmutex_slot_t *table = EXPORTED(weave__rwmutex_readers)();
  CHECK(table != nullptr);
  CHECK(EXPORTED(weave__rwmutex_readers)() == table);
}

namespace {
void check_rw_timed(int (*f)(weave_rwmutex_t *, int64_t, int), const char *null_message, bool write) {
  CHECK(f(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(last_error_has(null_message));
  CHECK(f(nullptr, -1, WEAVE_LOCK_DETACH) == WEAVE_E_INVALID);
  weave_rwmutex_t rw = {0};
  for (int flags : {8, 16, -1, INT_MIN, INT_MAX, WEAVE_LOCK_ALL_FLAGS + 1}) {
    INFO("flags " << flags);
    CHECK(f(&rw, 0, flags) == WEAVE_E_INVALID);
    CHECK(last_error_has("unknown flags"));
    CHECK(rw.bits == 0);
  }
  // Negative and huge timeouts on a free lock: acquired at once.
  for (int64_t t : {INT64_MIN, int64_t(-1), int64_t(0), INT64_MAX}) {
    INFO("timeout " << t);
    CHECK(f(&rw, t, WEAVE_LOCK_ALL_FLAGS) == WEAVE_LOCK_ACQUIRED);
    CHECK((write ? weave_rwmutex_unlock(&rw) : weave_rwmutex_runlock(&rw)) == 0);
  }
  CHECK(rw.bits == 0);
}
}  // namespace

BAD_INPUT(weave_rwmutex_rlock_timed) {
  check_rw_timed(EXPORTED(weave_rwmutex_rlock_timed), "weave_rwmutex_rlock_timed: rwmutex is NULL", false);
}
BAD_INPUT(weave_rwmutex_lock_timed) {
  check_rw_timed(EXPORTED(weave_rwmutex_lock_timed), "weave_rwmutex_lock_timed: rwmutex is NULL", true);
}

// ---- Seqlock ---------------------------------------------------------------------

BAD_INPUT(weave_seqlock_lock_write) {
  mark_last_error();
  EXPORTED(weave_seqlock_lock_write)(nullptr);
  CHECK(last_error_has("weave_seqlock_lock_write: seqlock is NULL"));
}

namespace {
void check_seqlock_finish(void (*finish)(weave_seqlock_t *), const char *name) {
  mark_last_error();
  finish(nullptr);
  CHECK(last_error_has((std::string(name) + ": seqlock is NULL").c_str()));
  weave_seqlock_t s = {6};
  mark_last_error();
  finish(&s);  // not write-locked: refused, sequence unchanged
  CHECK(last_error_has("not write-locked"));
  CHECK(s.sequence == 6);
}
}  // namespace

BAD_INPUT(weave_seqlock_unlock_write) {
  check_seqlock_finish(EXPORTED(weave_seqlock_unlock_write), "weave_seqlock_unlock_write");
}
BAD_INPUT(weave_seqlock_abandon_write) {
  check_seqlock_finish(EXPORTED(weave_seqlock_abandon_write), "weave_seqlock_abandon_write");
}

namespace {
void check_seqlock_begin_read(uint32_t (*begin)(weave_seqlock_t *)) {
  mark_last_error();
  CHECK(begin(nullptr) == 0);
  CHECK(last_error_has("weave_seqlock_begin_read: seqlock is NULL"));
}
}  // namespace

BAD_INPUT(weave_seqlock_begin_read) { check_seqlock_begin_read(EXPORTED(weave_seqlock_begin_read)); }
BAD_INPUT(weave_seqlock_begin_read_slow) { check_seqlock_begin_read(EXPORTED(weave_seqlock_begin_read_slow)); }

BAD_INPUT(weave_seqlock_end_read) {
  auto f = EXPORTED(weave_seqlock_end_read);
  CHECK(f(nullptr, 0) == 0);
  CHECK(f(nullptr, UINT32_MAX) == 0);
  weave_seqlock_t s = {4};
  CHECK(f(&s, 2) == 0);  // a sequence it never had
  CHECK(f(&s, 4) == 1);
}

BAD_INPUT(weave_seqlock_after_fork) {
  auto f = EXPORTED(weave_seqlock_after_fork);
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  weave_seqlock_t s = {8};
  CHECK(f(&s) == 0);  // no write in progress: nothing to reset
  CHECK(s.sequence == 8);
}

// ---- Recursive mutex ---------------------------------------------------------------

namespace {
void check_recursive_lock_null(void (*lock)(weave_recursive_mutex_t *)) {
  mark_last_error();
  lock(nullptr);
  CHECK(last_error_has("weave_recursive_mutex_lock: mutex is NULL"));
}
void check_recursive_unlock(int (*unlock)(weave_recursive_mutex_t *)) {
  CHECK(unlock(nullptr) == WEAVE_E_INVALID);
  weave_recursive_mutex_t m = {};
  CHECK(unlock(&m) == WEAVE_E_NOT_OWNER);
  // Unlock by a thread that does not own it: refused, the owner keeps it.
  std::atomic<int> stage{0};
  native_thread owner([&] {
    weave_recursive_mutex_lock(&m);
    weave_recursive_mutex_lock(&m);
    stage = 1;
    wait_until([&] { return stage.load() == 2; });
    weave_recursive_mutex_unlock(&m);
    weave_recursive_mutex_unlock(&m);
  });
  REQUIRE(wait_until([&] { return stage.load() == 1; }));
  CHECK(unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(last_error_has("does not own"));
  CHECK(weave_mutex_is_locked(&m.mutex) == 1);
  CHECK(m.level == 1);
  stage = 2;
  owner.join();
  CHECK(mutex_state(m.mutex) == 0);
  CHECK(m.thread == 0);
}
}  // namespace

BAD_INPUT(weave_recursive_mutex_lock) { check_recursive_lock_null(EXPORTED(weave_recursive_mutex_lock)); }
BAD_INPUT(weave_recursive_mutex_lock_slow) { check_recursive_lock_null(EXPORTED(weave_recursive_mutex_lock_slow)); }
BAD_INPUT(weave_recursive_mutex_unlock) { check_recursive_unlock(EXPORTED(weave_recursive_mutex_unlock)); }
BAD_INPUT(weave_recursive_mutex_unlock_slow) { check_recursive_unlock(EXPORTED(weave_recursive_mutex_unlock_slow)); }

BAD_INPUT(weave_recursive_mutex_is_locked_by_current_thread) {
  auto f = EXPORTED(weave_recursive_mutex_is_locked_by_current_thread);
  CHECK(f(nullptr) == 0);
  weave_recursive_mutex_t m = {};
  CHECK(f(&m) == 0);
}

BAD_INPUT(weave_recursive_mutex_lock_timed) {
  auto f = EXPORTED(weave_recursive_mutex_lock_timed);
  weave_recursive_mutex_t m = {};
  CHECK(f(nullptr, 0, 0) == WEAVE_E_INVALID);
  for (int flags : {8, -1, INT_MIN, INT_MAX}) {
    CHECK(f(&m, 0, flags) == WEAVE_E_INVALID);
    CHECK(last_error_has("unknown flags"));
  }
  CHECK(mutex_state(m.mutex) == 0);
  for (int64_t t : {INT64_MIN, INT64_MAX}) {
    INFO("timeout " << t);
    weave_recursive_mutex_lock(&m);
    CHECK(f(&m, t, 0) == WEAVE_LOCK_ACQUIRED);  // the owner re-enters at once
    CHECK(weave_recursive_mutex_unlock(&m) == 0);
    std::atomic<int> rc{-1000};
    native_thread waiter([&] {
      rc = f(&m, t, WEAVE_LOCK_DETACH);
      if (rc == WEAVE_LOCK_ACQUIRED) weave_recursive_mutex_unlock(&m);
    });
    sleep_ms(10);
    CHECK(rc == -1000);
    CHECK(weave_recursive_mutex_unlock(&m) == 0);
    waiter.join();
    CHECK(rc == WEAVE_LOCK_ACQUIRED);
    CHECK(mutex_state(m.mutex) == 0);
  }
}

// ---- Condition variable -------------------------------------------------------------

BAD_INPUT(weave_cond_wait) {
  auto f = EXPORTED(weave_cond_wait);
  weave_cond_t c = {0};
  weave_mutex_t m = {0};
  CHECK(f(nullptr, &m, 0) == WEAVE_E_INVALID);
  CHECK(f(&c, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(f(nullptr, nullptr, -1) == WEAVE_E_INVALID);
  for (int64_t t : {int64_t(0), int64_t(-1), INT64_MAX}) {
    CHECK(f(&c, &m, t) == WEAVE_E_NOT_OWNER);  // the mutex is not locked
    CHECK(mutex_state(m) == 0);
  }
  weave_mutex_lock(&m);
  CHECK(f(&c, &m, 0) == 0);  // timeout 0: no wait, the mutex is still held
  CHECK(weave_mutex_is_locked(&m) == 1);
  weave_mutex_unlock(&m);
  for (int64_t t : {INT64_MIN, int64_t(-9), INT64_MAX, INT64_MAX - 1}) {
    INFO("timeout " << t);
    std::atomic<int> flag{0};
    int rc = wait_with_waker(
        [&] {
          weave_mutex_lock(&m);
          int r = 0;
          while (flag.load() == 0 && r >= 0) {
            r = f(&c, &m, t);
          }
          weave_mutex_unlock(&m);
          return r;
        },
        [&] {
          weave_mutex_lock(&m);
          flag = 1;
          weave_cond_signal(&c);
          weave_mutex_unlock(&m);
        });
    CHECK(rc == 1);
    CHECK(mutex_state(m) == 0);
  }
}

BAD_INPUT(weave_cond_signal) {
  CHECK(EXPORTED(weave_cond_signal)(nullptr) == WEAVE_E_INVALID);
  weave_cond_t c = {0};
  CHECK(EXPORTED(weave_cond_signal)(&c) == 0);
}

BAD_INPUT(weave_cond_broadcast) {
  CHECK(EXPORTED(weave_cond_broadcast)(nullptr) == WEAVE_E_INVALID);
  weave_cond_t c = {0};
  CHECK(EXPORTED(weave_cond_broadcast)(&c) == 0);
}

// ---- 5. Critical sections -------------------------------------------------------------

BAD_INPUT(weave_critical_section_begin) {
  auto f = EXPORTED(weave_critical_section_begin);
  weave_critical_section_t c;
  weave_mutex_t m = {0};
  mark_last_error();
  f(nullptr, &m);
  CHECK(last_error_has("weave_critical_section_begin"));
  mark_last_error();
  f(&c, nullptr);
  CHECK(last_error_has("weave_critical_section_begin"));
  CHECK(mutex_state(m) == 0);
}

BAD_INPUT(weave_critical_section_end) {
  auto f = EXPORTED(weave_critical_section_end);
  mark_last_error();
  f(nullptr);
  CHECK(last_error_has("weave_critical_section_end"));
  // A zeroed section looks like a re-entry (no mutex recorded): ending it
  // changes nothing, with or without an active section.
  weave_critical_section_t zeroed = {};
  f(&zeroed);
  weave_mutex_t a = {0}, b = {0};
  weave_critical_section_t only;
  weave_critical_section_begin(&only, &a);
  f(&zeroed);
  CHECK(mutex_state(a) == WEAVE_MUTEX_LOCKED);
  f(&only);
  CHECK(mutex_state(a) == 0);
  weave_critical_section_t outer, inner;
  weave_critical_section_begin(&outer, &a);
  weave_critical_section_begin(&inner, &b);
  mark_last_error();
  f(&outer);  // not the innermost: ended anyway (a released), with an error
  CHECK(last_error_has("not the innermost"));
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == WEAVE_MUTEX_LOCKED);
  f(&inner);
  CHECK(mutex_state(b) == 0);
  mark_last_error();
  f(&outer);  // a second end: refused, nothing changes
  CHECK(last_error_has("already ended"));
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
}

BAD_INPUT(weave_critical_section2_begin) {
  auto f = EXPORTED(weave_critical_section2_begin);
  weave_critical_section2_t c;
  weave_mutex_t m = {0};
  for (int i = 0; i < 4; ++i) {
    mark_last_error();
    f(i & 1 ? &c : nullptr, i & 2 ? &m : nullptr, nullptr);
    CHECK(last_error_has("weave_critical_section2_begin"));
  }
  mark_last_error();
  f(nullptr, &m, &m);
  CHECK(last_error_has("weave_critical_section2_begin"));
  CHECK(mutex_state(m) == 0);
}

BAD_INPUT(weave_critical_section2_end) {
  auto f = EXPORTED(weave_critical_section2_end);
  mark_last_error();
  f(nullptr);
  CHECK(last_error_has("weave_critical_section2_end"));
  weave_critical_section2_t zeroed = {};
  f(&zeroed);  // as a re-entry: changes nothing
  // Ending a two-mutex section that is not the innermost: ended anyway
  // (both its mutexes released), with an error; the inner one is unchanged.
  weave_mutex_t a = {0}, b = {0}, c = {0};
  weave_critical_section2_t outer;
  weave_critical_section_t inner;
  weave_critical_section2_begin(&outer, &a, &b);
  weave_critical_section_begin(&inner, &c);
  mark_last_error();
  f(&outer);
  CHECK(last_error_has("not the innermost"));
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
  CHECK(mutex_state(c) == WEAVE_MUTEX_LOCKED);
  weave_critical_section_end(&inner);
  mark_last_error();
  f(&outer);  // a second end: refused, nothing changes
  CHECK(last_error_has("already ended"));
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
  CHECK(mutex_state(c) == 0);
}

BAD_INPUT(weave_critical_section_suspend_all) {
  // No input; with no section active it does nothing, twice.
  EXPORTED(weave_critical_section_suspend_all)();
  EXPORTED(weave_critical_section_suspend_all)();
  weave_mutex_t m = {0};
  WEAVE_BEGIN_CRITICAL_SECTION(&m);
  CHECK(mutex_state(m) == WEAVE_MUTEX_LOCKED);
  WEAVE_END_CRITICAL_SECTION();
  CHECK(mutex_state(m) == 0);
}

BAD_INPUT(weave_critical_section_resume) {
  // No input; with nothing suspended it does nothing.
  EXPORTED(weave_critical_section_resume)();
  weave_mutex_t m = {0};
  WEAVE_BEGIN_CRITICAL_SECTION(&m);
  EXPORTED(weave_critical_section_resume)();  // not suspended: stays locked once
  CHECK(mutex_state(m) == WEAVE_MUTEX_LOCKED);
  WEAVE_END_CRITICAL_SECTION();
  CHECK(mutex_state(m) == 0);
}

// ---- 6. Cross-library storage -------------------------------------------------------------

namespace {

// NULL, empty, one byte too long, and 10,000 bytes.
void check_bad_keys(const std::function<bool(const char *)> &refused) {
  std::string too_long(WEAVE_STORAGE_KEY_MAX + 1, 'k');
  std::string huge(10000, 'k');
  CHECK(refused(nullptr));
  CHECK(last_error_has("key is NULL"));
  CHECK(refused(""));
  CHECK(last_error_has("key is empty"));
  CHECK(refused(too_long.c_str()));
  CHECK(last_error_has("longer than 1024"));
  CHECK(refused(huge.c_str()));
  CHECK(last_error_has("longer than 1024"));
}

using get_fn = void *(const char *, size_t, weave_storage_init_fn *, void *);

void check_get(get_fn *get, const char *kind) {
  check_bad_keys([&](const char *key) { return get(key, 8, nullptr, nullptr) == nullptr; });
  std::string k = std::string("bad_input.") + kind + ":ok";
  CHECK(get(k.c_str(), 0, nullptr, nullptr) == nullptr);  // size 0
  CHECK(last_error_has("size is 0"));
  // A key of exactly WEAVE_STORAGE_KEY_MAX bytes is fine.
  std::string longest(WEAVE_STORAGE_KEY_MAX, kind[0]);
  void *p = get(longest.c_str(), 16, nullptr, nullptr);
  CHECK(p != nullptr);
  CHECK(get(longest.c_str(), 16, nullptr, nullptr) == p);
  CHECK(get(longest.c_str(), 17, nullptr, nullptr) == nullptr);  // size mismatch
  CHECK(last_error_has("size"));
  // A size no allocator can satisfy: NULL (out of memory), and the key still works.
  std::string big = std::string("bad_input.") + kind + ":huge";
  CHECK(get(big.c_str(), SIZE_MAX, nullptr, nullptr) == nullptr);
  CHECK(get(big.c_str(), SIZE_MAX, nullptr, nullptr) == nullptr);
}

}  // namespace

BAD_INPUT(weave_tls_get) {
  check_get(EXPORTED(weave_tls_get), "tls");
  // A key first used as a static is not a thread-local.
  REQUIRE(weave_static_get("bad_input.tls:static", 4, nullptr, nullptr) != nullptr);
  CHECK(EXPORTED(weave_tls_get)("bad_input.tls:static", 4, nullptr, nullptr) == nullptr);
}

BAD_INPUT(weave_static_get) {
  check_get(EXPORTED(weave_static_get), "static");
  REQUIRE(weave_tls_get("bad_input.static:tls", 4, nullptr, nullptr) != nullptr);
  CHECK(EXPORTED(weave_static_get)("bad_input.static:tls", 4, nullptr, nullptr) == nullptr);
}

BAD_INPUT(weave_tls_set_destructor) {
  auto f = EXPORTED(weave_tls_set_destructor);
  check_bad_keys([&](const char *key) { return f(key, never_called_destructor) == WEAVE_E_INVALID; });
  CHECK(f("bad_input.dtor:ok", nullptr) == WEAVE_E_INVALID);
  REQUIRE(weave_static_get("bad_input.dtor:static", 4, nullptr, nullptr) != nullptr);
  CHECK(f("bad_input.dtor:static", never_called_destructor) == WEAVE_E_MISMATCH);
}

BAD_INPUT(weave_storage_reset) {
  // No input; with nothing stored it drops nothing, and storage works after.
  auto f = EXPORTED(weave_storage_reset);
  CHECK(f() == 0);
  CHECK(f() == 0);
  CHECK(weave_tls_get("bad_input.reset:k", 4, nullptr, nullptr) != nullptr);
  CHECK(f() == 1);
}

// ---- Diagnostics: contention profile ----------------------------------------

BAD_INPUT(weave_profile_start) {
  // Twice: the second is refused while the first runs.
  REQUIRE(EXPORTED(weave_profile_start)() == 0);
  CHECK(EXPORTED(weave_profile_start)() == WEAVE_E_STATE);
  CHECK(last_error_has("already running"));
  CHECK(weave_profile_stop() == 0);
}

BAD_INPUT(weave_profile_stop) {
  CHECK(EXPORTED(weave_profile_stop)() == WEAVE_E_STATE);
  CHECK(last_error_has("not running"));
}

BAD_INPUT(weave_profile_write) {
  auto write = EXPORTED(weave_profile_write);
  CHECK(write("/tmp/ftw-never-started.pb.gz") == WEAVE_E_STATE);
  CHECK(last_error_has("never started"));
  REQUIRE(weave_profile_start() == 0);
  CHECK(write(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("NULL"));
  CHECK(write("") == WEAVE_E_INVALID);
  CHECK(write("/nonexistent-ftw-dir/p.pb.gz") == WEAVE_E_INVALID);
  CHECK(last_error_has("cannot write"));
  CHECK(write("/") == WEAVE_E_INVALID);  // a directory
  CHECK(weave_profile_stop() == 0);
}

BAD_INPUT(weave_profile_rows) {
  auto rows = EXPORTED(weave_profile_rows);
  CHECK(rows(nullptr, 0) == 0);
  CHECK(rows(nullptr, 1) == WEAVE_E_INVALID);
  CHECK(rows(nullptr, SIZE_MAX) == WEAVE_E_INVALID);
  CHECK(last_error_has("NULL"));
  weave_profile_row_t one;
  CHECK(rows(&one, 1) == 0);
}

BAD_INPUT(weave_profile_set_rate) {
  auto set_rate = EXPORTED(weave_profile_set_rate);
  for (int n : {0, -1, INT_MIN}) {
    mark_last_error();
    CHECK(set_rate(n) == WEAVE_E_INVALID);
    CHECK(last_error_has(">= 1"));
  }
  int previous = set_rate(INT_MAX);
  CHECK(previous >= 1);
  CHECK(set_rate(previous) == INT_MAX);
}

// ---- Diagnostics: debug mode -------------------------------------------------
// With debug mode off (these run without FT_WEAVE_DEBUG), the weave_debug_*
// lock operations that -DFT_WEAVE_DEBUG routes to behave as the inline
// functions they replace.

BAD_INPUT(weave_debug_set) {
  auto f = EXPORTED(weave_debug_set);
  for (int flags : {32, 64, -1, INT_MIN, INT_MAX, WEAVE_DEBUG_FAIL_ON_CYCLE, WEAVE_DEBUG_WATCHDOG}) {
    INFO("flags " << flags);
    CHECK(f(flags, nullptr, nullptr) == WEAVE_E_INVALID);
    CHECK(last_error_has("weave_debug_set"));
  }
  CHECK(weave_debug_flags() == 0);
  CHECK(f(0, nullptr, nullptr) == 0);
}

BAD_INPUT(weave_debug_flags) { CHECK(EXPORTED(weave_debug_flags)() == 0); }

BAD_INPUT(weave_debug_check_deadlocks) { CHECK(EXPORTED(weave_debug_check_deadlocks)() == 0); }

BAD_INPUT(weave_mutex_assert_held) {
  auto f = EXPORTED(weave_mutex_assert_held);
  CHECK(f(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_mutex_assert_held: mutex is NULL"));
  weave_mutex_t m = {0};
  CHECK(f(&m) == WEAVE_E_NOT_OWNER);
  weave_mutex_lock(&m);
  CHECK(f(&m) == 0);  // no owner recorded with debug mode off: locked is all it can check
  CHECK(weave_mutex_unlock(&m) == 0);
}

BAD_INPUT(weave_debug_mutex_lock) { check_mutex_lock_null(EXPORTED(weave_debug_mutex_lock)); }
BAD_INPUT(weave_debug_mutex_unlock) { check_mutex_unlock(EXPORTED(weave_debug_mutex_unlock)); }
BAD_INPUT(weave_debug_mutex_trylock) {
  auto f = EXPORTED(weave_debug_mutex_trylock);
  CHECK(f(nullptr) == 0);
  weave_mutex_t m = {0};
  CHECK(f(&m) == 1);
  CHECK(f(&m) == 0);
  CHECK(weave_mutex_unlock(&m) == 0);
}
BAD_INPUT(weave_debug_recursive_mutex_lock) { check_recursive_lock_null(EXPORTED(weave_debug_recursive_mutex_lock)); }
BAD_INPUT(weave_debug_recursive_mutex_unlock) { check_recursive_unlock(EXPORTED(weave_debug_recursive_mutex_unlock)); }
BAD_INPUT(weave_debug_rwmutex_rlock) {
  check_rw_lock_null(EXPORTED(weave_debug_rwmutex_rlock), "weave_rwmutex_rlock: rwmutex is NULL");
}
BAD_INPUT(weave_debug_rwmutex_lock) {
  check_rw_lock_null(EXPORTED(weave_debug_rwmutex_lock), "weave_rwmutex_lock: rwmutex is NULL");
}
BAD_INPUT(weave_debug_rwmutex_runlock) { check_rw_runlock(EXPORTED(weave_debug_rwmutex_runlock)); }
BAD_INPUT(weave_debug_rwmutex_unlock) { check_rw_unlock(EXPORTED(weave_debug_rwmutex_unlock)); }
