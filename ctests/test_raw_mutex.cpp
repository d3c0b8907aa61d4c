// ft_weave.h section 4, "Raw mutex": the word lock with an in-word stack of
// waiters (the parking lot's own bucket lock).
#include "lock_harness.hpp"
#include "test_util.hpp"

#include <atomic>
#include <string>

using ftw_test::native_thread;
using ftw_test::wait_until;

namespace {
uintptr_t word(const weave_raw_mutex_t &m) { return __atomic_load_n(&m.v, __ATOMIC_ACQUIRE); }
}  // namespace

TEST_CASE("raw mutex: 1 when locked, 0 when unlocked") {
  weave_raw_mutex_t m = {0};
  weave_raw_mutex_lock(&m);
  CHECK(word(m) == WEAVE_RAW_MUTEX_LOCKED);
  CHECK(weave_raw_mutex_unlock(&m) == 0);
  CHECK(word(m) == 0);
}

TEST_CASE("raw mutex: a waiter shows as (pointer | 1) and unlock wakes it") {
  weave_raw_mutex_t m = {0};
  std::atomic<int> got{0};
  std::atomic<int> worker_unlock{-1000};
  weave_raw_mutex_lock(&m);
  native_thread worker([&] {
    weave_raw_mutex_lock(&m);
    got = 1;
    worker_unlock = weave_raw_mutex_unlock(&m);
  });
  // The waiter spins briefly, then pushes its stack entry into the word.
  REQUIRE(wait_until([&] { return (word(m) & ~uintptr_t(WEAVE_RAW_MUTEX_LOCKED)) != 0; }));
  uintptr_t v = word(m);
  CHECK((v & WEAVE_RAW_MUTEX_LOCKED) == WEAVE_RAW_MUTEX_LOCKED);
  uintptr_t waiter = v & ~uintptr_t(WEAVE_RAW_MUTEX_LOCKED);
  CHECK(waiter != 0);
  CHECK(waiter % alignof(void *) == 0);  // an entry on the waiter's stack
  CHECK(got == 0);
  CHECK(weave_raw_mutex_unlock(&m) == 0);
  worker.join();
  CHECK(got == 1);
  CHECK(worker_unlock == 0);
  CHECK(word(m) == 0);
}

TEST_CASE("raw mutex: two waiters queue in arrival order and both get the lock, oldest first") {
  weave_raw_mutex_t m = {0};
  std::atomic<int> got{0};
  std::atomic<int> first_in{-1};
  weave_raw_mutex_lock(&m);
  uintptr_t first_waiter = 0;
  {
    native_thread a([&] {
      weave_raw_mutex_lock(&m);
      int expected = -1;
      first_in.compare_exchange_strong(expected, 0);
      got++;
      weave_raw_mutex_unlock(&m);
    });
    REQUIRE(wait_until([&] { return (word(m) & ~uintptr_t(3)) != 0; }));
    first_waiter = word(m) & ~uintptr_t(3);
    native_thread b([&] {
      weave_raw_mutex_lock(&m);
      int expected = -1;
      first_in.compare_exchange_strong(expected, 1);
      got++;
      weave_raw_mutex_unlock(&m);
    });
    // The second waiter is appended behind the first (the queue's head stays
    // in the word; an entry's first field links to the next). Read under the
    // queue lock's protocol: only once the queue-lock bit is clear.
    REQUIRE(wait_until([&] {
      uintptr_t w = __atomic_load_n(&m.v, __ATOMIC_ACQUIRE);
      return (w & 2) == 0 && __atomic_load_n(reinterpret_cast<uintptr_t *>(first_waiter), __ATOMIC_ACQUIRE) != 0;
    }));
    CHECK((word(m) & ~uintptr_t(3)) == first_waiter);
    CHECK((word(m) & 3) == 1);
    CHECK(weave_raw_mutex_unlock(&m) == 0);
  }
  CHECK(got == 2);
  CHECK(first_in == 0);  // FIFO: the older waiter is woken first (nobody else competes here)
  CHECK(word(m) == 0);
}

TEST_CASE("raw mutex: unlock of an unlocked mutex is WEAVE_E_NOT_OWNER, word unchanged") {
  weave_raw_mutex_t m = {0};
  CHECK(weave_raw_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(word(m) == 0);
  CHECK(std::string(weave_last_error()).find("not locked") != std::string::npos);
  CHECK(weave_raw_mutex_unlock_slow(&m) == WEAVE_E_NOT_OWNER);
  CHECK(word(m) == 0);
  weave_raw_mutex_lock(&m);
  CHECK(weave_raw_mutex_unlock(&m) == 0);
  CHECK(weave_raw_mutex_unlock(&m) == WEAVE_E_NOT_OWNER);
  CHECK(word(m) == 0);
}

TEST_CASE("raw mutex: NULL") {
  ftw_test::run_pthread([] {
    weave_raw_mutex_lock(nullptr);
    CHECK(std::string(weave_last_error()).find("NULL") != std::string::npos);
  });
  ftw_test::run_pthread([] {
    weave_raw_mutex_lock_slow(nullptr);
    CHECK(std::string(weave_last_error()).find("NULL") != std::string::npos);
  });
  CHECK(weave_raw_mutex_unlock(nullptr) == WEAVE_E_INVALID);
  CHECK(weave_raw_mutex_unlock_slow(nullptr) == WEAVE_E_INVALID);
}

TEST_CASE("raw mutex: counter: 5 threads x 10000") {
  ftw_test::check_lock_harness<weave_raw_mutex_t>({1, 5, 1, 10000});
}

FTW_LOCK_HARNESS_CASES(weave_raw_mutex_t, "[raw_mutex]")
