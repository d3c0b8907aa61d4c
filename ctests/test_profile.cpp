// ft_weave.h, "Diagnostics: contention profile": the weave_profile_* API, what
// it records for each lock kind, and that a hot lock comes out on top.
// Built with ENABLE_EXPORTS (-rdynamic) so that dladdr names this program's
// functions. Each TEST_CASE runs in its own process (catch_discover_tests).
#include "test_util.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;
using ftw_test::sleep_ms;

namespace {

std::vector<weave_profile_row_t> rows() {
  int n = weave_profile_rows(nullptr, 0);
  REQUIRE(n >= 0);
  std::vector<weave_profile_row_t> out(size_t(n) + 8);
  int again = weave_profile_rows(out.data(), out.size());
  REQUIRE(again >= n);
  out.resize(size_t(std::min<int>(again, int(out.size()))));
  return out;
}

struct per_lock {
  uint64_t count = 0, total_ns = 0, max_ns = 0;
};

std::map<uintptr_t, per_lock> by_lock(const std::vector<weave_profile_row_t> &rs) {
  std::map<uintptr_t, per_lock> m;
  for (const auto &r : rs) {
    per_lock &p = m[r.lock_address];
    p.count += r.count;
    p.total_ns += r.total_ns;
    p.max_ns = std::max(p.max_ns, r.max_ns);
  }
  return m;
}

std::string symbol(uintptr_t pc) {
  Dl_info info;
  if (pc == 0 || dladdr(reinterpret_cast<void *>(pc - 1), &info) == 0 || info.dli_sname == nullptr) {
    return "";
  }
  return info.dli_sname;
}

// Holds a lock for `ns` asleep: the waiters then park whatever the machine's
// load (with a busy hold on 2 loaded cores the threads mostly run one after
// the other, and a waiter's spinning is enough).
void hold_for(int64_t ns) { ftw_test::sleep_ns(ns); }

weave_mutex_t hot = {0, 0};
weave_mutex_t cold = {0, 0};

}  // namespace

// Named functions outside the anonymous namespace and not inlined, so that
// the wait and release sites can be checked by name.
extern "C" __attribute__((noinline)) void profile_test_hot_section(void) {
  weave_mutex_lock(&hot);
  hold_for(200000);
  weave_mutex_unlock(&hot);
}

extern "C" __attribute__((noinline)) void profile_test_cold_section(void) {
  weave_mutex_lock(&cold);
  hold_for(200000);
  weave_mutex_unlock(&cold);
}

TEST_CASE("profile: misuse gets documented codes and messages") {
  CHECK(weave_profile_write("/tmp/never.pb.gz") == WEAVE_E_STATE);
  CHECK(std::string(weave_last_error()).find("never started") != std::string::npos);
  CHECK(weave_profile_stop() == WEAVE_E_STATE);
  CHECK(std::string(weave_last_error()).find("not running") != std::string::npos);
  CHECK(weave_profile_rows(nullptr, 0) == 0);
  CHECK(weave_profile_rows(nullptr, 3) == WEAVE_E_INVALID);
  CHECK(weave_profile_set_rate(0) == WEAVE_E_INVALID);
  CHECK(weave_profile_set_rate(-5) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find(">= 1") != std::string::npos);

  REQUIRE(weave_profile_start() == 0);
  CHECK(weave_profile_start() == WEAVE_E_STATE);
  CHECK(std::string(weave_last_error()).find("already running") != std::string::npos);
  CHECK(weave_profile_write(nullptr) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("NULL") != std::string::npos);
  CHECK(weave_profile_write("") == WEAVE_E_INVALID);
  CHECK(weave_profile_write("/nonexistent-dir-ftw/x.pb.gz") == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("cannot write") != std::string::npos);
  CHECK(weave_profile_stop() == 0);
  CHECK(weave_profile_stop() == WEAVE_E_STATE);
  // Stopped: writing what was recorded is still allowed.
  char path[] = "/tmp/ftw_profile_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  CHECK(weave_profile_write(path) == 0);
  FILE *f = fopen(path, "rb");
  REQUIRE(f != nullptr);
  unsigned char magic[2] = {0, 0};
  CHECK(fread(magic, 1, 2, f) == 2);
  fclose(f);
  unlink(path);
  CHECK(magic[0] == 0x1f);  // gzip
  CHECK(magic[1] == 0x8b);
}

TEST_CASE("profile: of two locks the hot one comes out on top with plausible counts") {
  REQUIRE(weave_profile_set_rate(1) >= 1);
  REQUIRE(weave_profile_start() == 0);
  constexpr int threads = 4;
  constexpr int rounds = 100;
  std::atomic<uint64_t> hot_calls{0};
  int64_t start = now_ns();
  {
    std::vector<std::unique_ptr<native_thread>> workers;
    for (int t = 0; t < threads; t++) {
      workers.emplace_back(new native_thread([&] {
        for (int i = 0; i < rounds; i++) {
          profile_test_hot_section();
          hot_calls++;
          if (i % 20 == 0) {
            profile_test_cold_section();
          }
        }
      }));
    }
  }
  int64_t elapsed = now_ns() - start;
  REQUIRE(weave_profile_stop() == 0);

  auto rs = rows();
  REQUIRE(!rs.empty());
  auto locks = by_lock(rs);
  REQUIRE(locks.count(uintptr_t(&hot)) == 1);
  const per_lock &h = locks[uintptr_t(&hot)];
  // Hot on top: by total wait and by count.
  for (const auto &kv : locks) {
    if (kv.first != uintptr_t(&hot)) {
      CHECK(kv.second.total_ns < h.total_ns);
      CHECK(kv.second.count < h.count);
    }
  }
  // Plausible: 4 threads on a 200 us sleeping section park often (a share
  // of the 400 acquisitions; barging takes the rest); a wait is at most one
  // acquisition; time adds up to at most threads * elapsed.
  CHECK(h.count >= uint64_t(rounds / 4));
  CHECK(h.count <= hot_calls.load());
  CHECK(h.max_ns <= h.total_ns);
  CHECK(h.total_ns >= h.count * 10000);  // a parked wait here lasts more than 10 us
  CHECK(h.total_ns <= uint64_t(threads) * uint64_t(elapsed));
  if (locks.count(uintptr_t(&cold)) == 1) {
    CHECK(locks[uintptr_t(&cold)].count <= uint64_t(threads * (rounds / 20)));
  }
  // Sites: the waiting call and the releasing call, in this program's
  // functions (not inside the library).
  for (const auto &r : rs) {
    if (r.lock_address == uintptr_t(&hot)) {
      CHECK(symbol(r.wait_site) == "profile_test_hot_section");
      CHECK(symbol(r.release_site) == "profile_test_hot_section");
      CHECK(r.wait_site != r.release_site);
    }
  }
}

TEST_CASE("profile: off records nothing, a restart starts empty") {
  REQUIRE(weave_profile_set_rate(1) >= 1);
  auto contend = [] {
    native_thread a([] {
      for (int i = 0; i < 100; i++) {
        profile_test_hot_section();
      }
    });
    native_thread b([] {
      for (int i = 0; i < 100; i++) {
        profile_test_hot_section();
      }
    });
  };
  contend();
  CHECK(weave_profile_rows(nullptr, 0) == 0);  // never started
  REQUIRE(weave_profile_start() == 0);
  contend();
  REQUIRE(weave_profile_stop() == 0);
  auto first = by_lock(rows());
  REQUIRE(first.count(uintptr_t(&hot)) == 1);
  uint64_t recorded = first[uintptr_t(&hot)].count;
  CHECK(recorded > 0);
  contend();  // stopped: nothing added
  CHECK(by_lock(rows())[uintptr_t(&hot)].count == recorded);
  REQUIRE(weave_profile_start() == 0);  // starts empty
  CHECK(weave_profile_rows(nullptr, 0) == 0);
  REQUIRE(weave_profile_stop() == 0);
}

TEST_CASE("profile: sampling records 1 in N and scales the counts back") {
  REQUIRE(weave_profile_set_rate(4) == 1);
  REQUIRE(weave_profile_start() == 0);
  {
    native_thread a([] {
      for (int i = 0; i < 300; i++) {
        profile_test_hot_section();
      }
    });
    native_thread b([] {
      for (int i = 0; i < 300; i++) {
        profile_test_hot_section();
      }
    });
  }
  REQUIRE(weave_profile_stop() == 0);
  auto rs = rows();
  uint64_t total = 0;
  for (const auto &r : rs) {
    CHECK(r.count % 4 == 0);
    total += r.count;
  }
  CHECK(total > 0);
  CHECK(total >= 4 * 10);
  CHECK(total <= 600 + 4 * 4);  // scaled: about the waits, not 4x them
  CHECK(weave_profile_set_rate(1) == 4);
}

// Each lock kind: one thread holds the lock for a while, another waits for it.
template <typename HoldLock, typename HoldUnlock, typename WaitLock, typename WaitUnlock>
uint64_t waits_recorded(uintptr_t address, HoldLock hold_lock, HoldUnlock hold_unlock, WaitLock wait_lock,
                        WaitUnlock wait_unlock) {
  REQUIRE(weave_profile_set_rate(1) >= 1);
  REQUIRE(weave_profile_start() == 0);
  for (int round = 0; round < 5; round++) {
    std::atomic<int> holding{0};
    native_thread holder([&] {
      hold_lock();
      holding = 1;
      sleep_ms(50);  // long enough for the waiter to start and park on a loaded machine
      hold_unlock();
    });
    REQUIRE(ftw_test::wait_until([&] { return holding.load() == 1; }));
    native_thread waiter([&] {
      wait_lock();
      wait_unlock();
    });
  }
  REQUIRE(weave_profile_stop() == 0);
  return by_lock(rows())[address].count;
}

template <typename Lock, typename Unlock>
uint64_t waits_recorded(uintptr_t address, Lock lock, Unlock unlock) {
  return waits_recorded(address, lock, unlock, lock, unlock);
}

TEST_CASE("profile: every lock kind records its waits") {
  SECTION("weave_mutex_lock_timed") {
    static weave_mutex_t m = {0, 0};
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_mutex_lock_timed(&m, 10000000000LL, WEAVE_LOCK_DETACH); },
              [] { weave_mutex_unlock(&m); }) >= 3);
  }
  SECTION("recursive mutex") {
    static weave_recursive_mutex_t m = {};
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_recursive_mutex_lock(&m); }, [] { weave_recursive_mutex_unlock(&m); }) >= 3);
  }
  SECTION("raw mutex") {
    static weave_raw_mutex_t m = {0};
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_raw_mutex_lock(&m); }, [] { weave_raw_mutex_unlock(&m); }) >= 3);
  }
  SECTION("rwmutex, writer waits for a writer") {
    static weave_rwmutex_t m = {};
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_rwmutex_lock(&m); }, [] { weave_rwmutex_unlock(&m); }) >= 3);
  }
  SECTION("rwmutex, reader waits for a writer") {
    static weave_rwmutex_t m = {};
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_rwmutex_lock(&m); }, [] { weave_rwmutex_unlock(&m); },
              [] { weave_rwmutex_rlock(&m); }, [] { weave_rwmutex_runlock(&m); }) >= 3);
  }
  SECTION("critical section") {
    static weave_mutex_t m = {0, 0};
    static thread_local weave_critical_section_t cs;
    CHECK(waits_recorded(
              uintptr_t(&m), [] { weave_critical_section_begin(&cs, &m); }, [] { weave_critical_section_end(&cs); }) >= 3);
  }
}
