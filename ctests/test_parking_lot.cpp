// ft_weave.h section 3, "Parking lot": weave_park, weave_unpark,
// weave_unpark_all, weave_parking_lot_after_fork.
#include "test_util.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;
using ftw_test::sleep_ms;
using ftw_test::stats;
using ftw_test::wait_until;

namespace {

// Parks are counted after the waiter is queued, so "parks grew by n" means n
// threads are in the queue (or already woken). Each test case is its own
// process: nothing else parks meanwhile.
bool wait_parks(uint64_t base, uint64_t n) {
  return wait_until([&] { return stats().parks >= base + n; });
}

struct unpark_record {
  int calls = 0;
  void *park_arg = reinterpret_cast<void *>(1);
  int has_more = -1;
  void *arg = nullptr;
};

extern "C" void record_unpark(void *arg, void *park_arg, int has_more_waiters) {
  auto *r = static_cast<unpark_record *>(arg);
  r->calls++;
  r->arg = arg;
  r->park_arg = park_arg;
  r->has_more = has_more_waiters;
}

}  // namespace

TEST_CASE("park returns AGAIN at once when the value differs (sizes 1, 2, 4, 8)") {
  alignas(8) uint8_t b = 1;
  alignas(8) uint16_t h = 1;
  alignas(8) uint32_t w = 1;
  alignas(8) uint64_t d = 1;
  uint8_t eb = 2;
  uint16_t eh = 2;
  uint32_t ew = 2;
  uint64_t ed = 2;
  // Only the compared bytes count: a 64-bit value that differs in its top byte.
  uint64_t ed_high = 1 | (uint64_t(1) << 56);
  uint64_t parks = stats().parks;
  CHECK(weave_park(&b, &eb, 1, -1, nullptr, 0) == WEAVE_PARK_AGAIN);
  CHECK(weave_park(&h, &eh, 2, -1, nullptr, 0) == WEAVE_PARK_AGAIN);
  CHECK(weave_park(&w, &ew, 4, -1, nullptr, 0) == WEAVE_PARK_AGAIN);
  CHECK(weave_park(&d, &ed, 8, -1, nullptr, 0) == WEAVE_PARK_AGAIN);
  CHECK(weave_park(&d, &ed_high, 8, -1, nullptr, 0) == WEAVE_PARK_AGAIN);
  // Also with detach and a timeout.
  CHECK(weave_park(&w, &ew, 4, 1000000, nullptr, 1) == WEAVE_PARK_AGAIN);
  CHECK(stats().parks == parks);
}

TEST_CASE("park refuses bad sizes, misaligned addresses and NULL with WEAVE_E_INVALID") {
  alignas(16) uint8_t buf[32] = {0};
  uint8_t zero[16] = {0};
  for (size_t size : {size_t(0), size_t(3), size_t(5), size_t(16), size_t(7), size_t(64)}) {
    INFO("size " << size);
    CHECK(weave_park(buf, zero, size, 0, nullptr, 0) == WEAVE_E_INVALID);
    CHECK(std::string(weave_last_error()).find("address_size") != std::string::npos);
  }
  CHECK(weave_park(buf + 1, zero, 2, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(std::string(weave_last_error()).find("aligned") != std::string::npos);
  CHECK(weave_park(buf + 2, zero, 4, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_park(buf + 4, zero, 8, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_park(buf + 1, zero, 1, 0, nullptr, 0) == WEAVE_PARK_TIMEOUT);  // any byte is aligned
  CHECK(weave_park(buf + 2, zero, 2, 0, nullptr, 0) == WEAVE_PARK_TIMEOUT);
  CHECK(weave_park(nullptr, zero, 1, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_park(buf, nullptr, 1, 0, nullptr, 0) == WEAVE_E_INVALID);
  CHECK(weave_unpark(nullptr, nullptr, nullptr) == WEAVE_E_INVALID);
  CHECK(weave_unpark_all(nullptr) == WEAVE_E_INVALID);
}

TEST_CASE("park with timeout 0 returns TIMEOUT without sleeping") {
  uint32_t w = 7;
  uint32_t e = 7;
  uint64_t parks = stats().parks;
  int64_t t0 = now_ns();
  for (int i = 0; i < 1000; i++) {
    REQUIRE(weave_park(&w, &e, 4, 0, nullptr, 0) == WEAVE_PARK_TIMEOUT);
  }
  int64_t elapsed = now_ns() - t0;
  CHECK(stats().parks == parks);
  CHECK(elapsed < 500000000);  // 1000 checks; a single real sleep would be visible in parks
}

TEST_CASE("park with 5 ms returns TIMEOUT after about 5 ms") {
  uint8_t b = 1;
  uint8_t e = 1;
  uint64_t parks = stats().parks;
  int64_t t0 = now_ns();
  CHECK(weave_park(&b, &e, 1, 5000000, nullptr, 0) == WEAVE_PARK_TIMEOUT);
  int64_t elapsed = now_ns() - t0;
  CHECK(elapsed >= 5000000);
  CHECK(elapsed < 1000000000);
  CHECK(stats().parks == parks + 1);
  // The timed-out waiter left the queue: nobody is woken.
  CHECK(weave_unpark(&b, nullptr, nullptr) == 0);
}

TEST_CASE("unpark with no waiter returns 0 and still runs the callback (NULL, 0)") {
  uint8_t b = 0;
  unpark_record r;
  CHECK(weave_unpark(&b, record_unpark, &r) == 0);
  CHECK(r.calls == 1);
  CHECK(r.arg == &r);
  CHECK(r.park_arg == nullptr);
  CHECK(r.has_more == 0);
  CHECK(weave_unpark(&b, nullptr, nullptr) == 0);  // fn may be NULL
  CHECK(weave_unpark_all(&b) == 0);
}

TEST_CASE("waiters on one address wake in FIFO order; the callback sees park_arg and has_more") {
  constexpr int kWaiters = 3;
  alignas(4) uint32_t word = 5;
  uint32_t expected = 5;
  int tags[kWaiters] = {100, 101, 102};
  std::atomic<int> results[kWaiters];
  std::atomic<int> woken_order[kWaiters];
  std::atomic<int> woken_count{0};
  for (int i = 0; i < kWaiters; i++) {
    results[i] = -1000;
    woken_order[i] = -1;
  }
  std::vector<std::unique_ptr<native_thread>> threads;
  uint64_t parks = stats().parks;
  for (int i = 0; i < kWaiters; i++) {
    threads.emplace_back(new native_thread([&, i] {
      results[i] = weave_park(&word, &expected, 4, -1, &tags[i], 0);
      woken_order[woken_count.fetch_add(1)] = i;
    }));
    // The next one starts only once this one is queued: a known order.
    REQUIRE(wait_parks(parks, uint64_t(i) + 1));
  }
  const int expected_more[kWaiters] = {1, 1, 0};
  for (int i = 0; i < kWaiters; i++) {
    INFO("unpark " << i);
    unpark_record r;
    CHECK(weave_unpark(&word, record_unpark, &r) == 1);
    CHECK(r.calls == 1);
    CHECK(r.park_arg == &tags[i]);
    CHECK(r.has_more == expected_more[i]);
    REQUIRE(wait_until([&] { return woken_count.load() == i + 1; }));
    CHECK(woken_order[i] == i);
    CHECK(results[i] == WEAVE_PARK_OK);
  }
  for (auto &t : threads) {
    t->join();
  }
  unpark_record r;
  CHECK(weave_unpark(&word, record_unpark, &r) == 0);
  CHECK(r.park_arg == nullptr);
}

TEST_CASE("unpark_all wakes every waiter of one address and none of its neighbour") {
  // Two adjacent bytes of one array: they may share a bucket, and waiters of
  // one must never be taken for waiters of the other.
  uint8_t bytes[2] = {1, 1};
  uint8_t expected = 1;
  std::atomic<int> woken_a{0};
  std::atomic<int> woken_b{0};
  std::atomic<int> not_ok{0};
  std::vector<std::unique_ptr<native_thread>> threads;
  uint64_t parks = stats().parks;
  for (int i = 0; i < 5; i++) {
    bool on_a = i % 2 == 0;  // 3 on bytes[0], 2 on bytes[1], interleaved in the queue
    threads.emplace_back(new native_thread([&, on_a] {
      int rc = weave_park(on_a ? &bytes[0] : &bytes[1], &expected, 1, -1, nullptr, 0);
      if (rc != WEAVE_PARK_OK) {
        not_ok++;
      }
      (on_a ? woken_a : woken_b)++;
    }));
    REQUIRE(wait_parks(parks, uint64_t(i) + 1));
  }
  unpark_record r;
  CHECK(weave_unpark_all(&bytes[0]) == 3);
  REQUIRE(wait_until([&] { return woken_a.load() == 3; }));
  sleep_ms(20);
  CHECK(woken_b == 0);  // still parked
  // The neighbour's first waiter is still queued and is the only one left with a successor.
  CHECK(weave_unpark(&bytes[1], record_unpark, &r) == 1);
  CHECK(r.has_more == 1);
  CHECK(weave_unpark_all(&bytes[1]) == 1);
  for (auto &t : threads) {
    t->join();
  }
  CHECK(woken_b == 2);
  CHECK(not_ok == 0);
  CHECK(weave_unpark_all(&bytes[0]) == 0);
  CHECK(weave_unpark_all(&bytes[1]) == 0);
}

TEST_CASE("park/unpark storm: every wake is consumed exactly once") {
  // Parkers park with short timeouts while unparkers race them. A wake that a
  // waker reports (unpark's 1, unpark_all's count) must be the OK return of
  // exactly one parker, even when it races that parker's timeout.
  constexpr int kParkers = 6;
  constexpr int kParksEach = 400;
  constexpr int kUnparkers = 2;
  uint8_t slots[4] = {0, 0, 0, 0};  // adjacent addresses, all "0 = keep sleeping"
  uint8_t expected = 0;
  std::atomic<long> ok{0};
  std::atomic<long> timeouts{0};
  std::atomic<long> others{0};
  std::atomic<long> reported{0};
  std::atomic<int> parkers_done{0};
  std::vector<std::unique_ptr<native_thread>> threads;
  int64_t t0 = now_ns();
  for (int p = 0; p < kParkers; p++) {
    threads.emplace_back(new native_thread([&, p] {
      for (int i = 0; i < kParksEach; i++) {
        uint8_t *addr = &slots[(p + i) % 4];
        int64_t timeout = 50000 + 50000 * ((p * 7 + i) % 5);  // 50..250 us
        int rc = weave_park(addr, &expected, 1, timeout, nullptr, 0);
        if (rc == WEAVE_PARK_OK) {
          ok++;
        } else if (rc == WEAVE_PARK_TIMEOUT) {
          timeouts++;
        } else {
          others++;
        }
      }
      parkers_done++;
    }));
  }
  for (int u = 0; u < kUnparkers; u++) {
    threads.emplace_back(new native_thread([&, u] {
      long mine = 0;
      unsigned i = u;
      while (parkers_done.load() < kParkers) {
        uint8_t *addr = &slots[i % 4];
        int rc = (i % 16 == 0) ? weave_unpark_all(addr) : weave_unpark(addr, nullptr, nullptr);
        if (rc > 0) {
          mine += rc;
        }
        if (i % 3 == 0) {
          sched_yield();
        }
        i++;
      }
      reported += mine;
    }));
  }
  for (auto &t : threads) {
    t->join();
  }
  int64_t elapsed = now_ns() - t0;
  INFO("ok " << ok << ", timeouts " << timeouts << ", reported " << reported);
  CHECK(others == 0);
  CHECK(ok + timeouts == long(kParkers) * kParksEach);
  CHECK(ok == reported);
  CHECK(elapsed < 60LL * 1000000000);
  for (auto &s : slots) {
    CHECK(weave_unpark_all(&s) == 0);
  }
}

TEST_CASE("ping-pong with jittered replies: wakes that find the waiter polling, announcing or asleep are never lost") {
  // Two threads pass a turn back and forth through one word, each parking on
  // it until the other flips it. A waiter first polls its wait word for a
  // budget that grows while its wakes come soon and shrinks when they come
  // late, and a waker skips the futex wake while the waiter has not announced
  // its sleep. The replies wait 0 to 120 us, chosen so that wakes land before,
  // during and after the waiter's poll and while the budget grows and shrinks.
  // A lost wake would leave a thread parked with the turn its own: the 2 s
  // timeout turns that into a failure (both threads stop) instead of a hang.
  constexpr uint32_t kRounds = 6000;
  alignas(8) static uint32_t turn;
  turn = 0;
  std::atomic<long> lost{0};
  std::atomic<long> errors{0};
  auto player = [&](uint32_t me) {
    uint32_t seed = 0x9E3779B9u * (me + 1);
    for (uint32_t i = 0; i < kRounds && lost.load() == 0; i++) {
      uint32_t v;
      while (((v = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) & 1u) != me) {
        int rc = weave_park(&turn, &v, sizeof v, 2000000000LL, nullptr, 0);
        if (rc == WEAVE_PARK_TIMEOUT) {
          lost++;  // the other thread sees it and stops too
          return;
        } else if (rc != WEAVE_PARK_OK && rc != WEAVE_PARK_AGAIN) {
          errors++;
        }
      }
      seed = seed * 1664525u + 1013904223u;
      uint32_t pick = seed >> 24;  // 0..255
      int64_t delay = pick < 96 ? 0 : pick < 192 ? (pick - 96) * 200 : (pick - 192) * 1900;  // 0, <19 us, <120 us
      for (int64_t end = now_ns() + delay; now_ns() < end;) {
      }
      __atomic_store_n(&turn, v + 1, __ATOMIC_RELEASE);
      if (weave_unpark(&turn, nullptr, nullptr) < 0) {
        errors++;
      }
    }
  };
  int64_t t0 = now_ns();
  native_thread a([&] { player(0); });
  native_thread b([&] { player(1); });
  a.join();
  b.join();
  INFO("lost " << lost << ", errors " << errors << ", " << (now_ns() - t0) / 1000000 << " ms");
  CHECK(lost == 0);
  CHECK(errors == 0);
  CHECK(turn == 2 * kRounds);
  CHECK(weave_unpark_all(&turn) == 0);
}

TEST_CASE("detach without CPython in the process is a no-op") {
  uint64_t word = 9;
  uint64_t expected = 9;
  CHECK(weave_park(&word, &expected, 8, 1000000, nullptr, 1) == WEAVE_PARK_TIMEOUT);
  std::atomic<int> rc{-1000};
  uint64_t parks = stats().parks;
  native_thread waiter([&] { rc = weave_park(&word, &expected, 8, -1, &word, 1); });
  REQUIRE(wait_parks(parks, 1));
  unpark_record r;
  CHECK(weave_unpark(&word, record_unpark, &r) == 1);
  CHECK(r.park_arg == &word);
  waiter.join();
  CHECK(rc == WEAVE_PARK_OK);
  // And a mutex's plain lock, which parks with detach.
  weave_mutex_t m = {0};
  weave_mutex_lock(&m);
  parks = stats().parks;
  native_thread locker([&] {
    weave_mutex_lock(&m);
    weave_mutex_unlock(&m);
  });
  REQUIRE(wait_parks(parks, 1));
  CHECK(weave_mutex_unlock(&m) == 0);
  locker.join();
  CHECK(mutex_state(m) == 0);
}

// ---- fork -------------------------------------------------------------------

namespace {

// Runs in the fork child, where only the forking thread exists. No Catch2
// here: the exit code says which step failed.
int child_after_fork(uint8_t *parked_on, weave_mutex_t *held) {
  weave_parking_lot_after_fork();  // already run by pthread_atfork; again is harmless
  weave_parking_lot_after_fork();
  // The parent's waiters do not exist here and must not be "woken".
  if (weave_unpark_all(parked_on) != 0) return 10;
  if (weave_unpark(held, nullptr, nullptr) != 0) return 11;
  // Park and time out on the same address and bucket.
  uint8_t expected = *parked_on;
  if (weave_park(parked_on, &expected, 1, 1000000, nullptr, 0) != WEAVE_PARK_TIMEOUT) return 12;
  // The inherited mutex is locked with has_parked, by a thread that is gone.
  // This mutex records no owner, so the child may release it: the slow path
  // finds an empty queue and clears the byte.
  if (mutex_state(*held) != 3) return 13;
  if (weave_mutex_unlock(held) != 0) return 14;
  if (mutex_state(*held) != 0) return 15;
  // Locks work, contended, with a thread started in the child.
  weave_mutex_t fresh = {0};
  struct shared_t {
    weave_mutex_t *a;
    weave_mutex_t *b;
    long counter;
    uint8_t flag;
  } s{held, &fresh, 0, 0};
  weave_mutex_lock(held);
  pthread_t t;
  if (pthread_create(
          &t, nullptr,
          [](void *p) -> void * {
            auto *sh = static_cast<shared_t *>(p);
            for (int i = 0; i < 2000; i++) {
              weave_mutex_lock(sh->a);
              sh->counter++;
              weave_mutex_unlock(sh->a);
              weave_mutex_lock(sh->b);
              weave_mutex_unlock(sh->b);
            }
            // Park until the forking thread flips the flag.
            uint8_t zero = 0;
            while (__atomic_load_n(&sh->flag, __ATOMIC_ACQUIRE) == 0) {
              weave_park(&sh->flag, &zero, 1, -1, nullptr, 0);
            }
            return nullptr;
          },
          &s) != 0) {
    return 16;
  }
  ftw_test::sleep_ms(5);  // let the child's thread block on `held`
  for (int i = 0; i < 2000; i++) {
    if (i > 0) {
      weave_mutex_lock(held);
    }
    s.counter++;
    weave_mutex_unlock(held);
  }
  ftw_test::sleep_ms(2);
  __atomic_store_n(&s.flag, 1, __ATOMIC_RELEASE);
  weave_unpark_all(&s.flag);
  pthread_join(t, nullptr);
  if (s.counter != 4000) return 17;
  if (mutex_state(*held) != 0 || mutex_state(fresh) != 0) return 18;
  return 0;
}

}  // namespace

TEST_CASE("after fork the child can park, unpark and lock, whatever the parent's threads held") {
  uint8_t parked_on = 1;
  uint8_t expected = 1;
  weave_mutex_t held = {0};
  std::atomic<int> holder_has_it{0};
  std::atomic<int> release_holder{0};
  std::atomic<int> park_rc[2];
  park_rc[0] = park_rc[1] = -1000;
  uint64_t parks = stats().parks;

  // Two threads parked on `parked_on`.
  native_thread p0([&] { park_rc[0] = weave_park(&parked_on, &expected, 1, -1, nullptr, 0); });
  native_thread p1([&] { park_rc[1] = weave_park(&parked_on, &expected, 1, -1, nullptr, 0); });
  REQUIRE(wait_parks(parks, 2));
  // One thread holds `held`; another is parked waiting for it.
  native_thread holder([&] {
    weave_mutex_lock(&held);
    holder_has_it = 1;
    while (release_holder.load() == 0) {
      ftw_test::sleep_ms(1);
    }
    weave_mutex_unlock(&held);
  });
  REQUIRE(wait_until([&] { return holder_has_it.load() == 1; }));
  native_thread waiter([&] {
    weave_mutex_lock(&held);
    weave_mutex_unlock(&held);
  });
  REQUIRE(wait_parks(parks, 3));
  REQUIRE(mutex_state(held) == 3);

  // Fork from yet another thread (not the main thread).
  std::atomic<int> child_status{-1};
  std::atomic<int> fork_errno{0};
  native_thread forker([&] {
    pid_t pid = ftw_test::fork_quiesced();
    if (pid == 0) {
      _exit(child_after_fork(&parked_on, &held));
    }
    if (pid < 0) {
      fork_errno = errno;
      return;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      child_status = WEXITSTATUS(status);
    } else {
      child_status = 1000 + status;
    }
  });
  forker.join();
  CHECK(fork_errno == 0);
  CHECK(child_status == 0);

  // The parent is unaffected: its waiters are still queued and wake normally.
  CHECK(weave_unpark_all(&parked_on) == 2);
  release_holder = 1;
  p0.join();
  p1.join();
  holder.join();
  waiter.join();
  CHECK(park_rc[0] == WEAVE_PARK_OK);
  CHECK(park_rc[1] == WEAVE_PARK_OK);
  CHECK(mutex_state(held) == 0);
}

// ---- table growth ----------------------------------------------------------

namespace {

// Bytes of this process's mappings the kernel wipes at fork (VmFlags "wf"
// in /proc/self/smaps): the lot's tables, its per-process page and the
// storage registry's words. A grown table adds its size here.
long wipe_on_fork_bytes() {
  FILE *f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) {
    return -1;
  }
  long total = 0, size_kb = 0;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long kb = 0;
    if (std::sscanf(line, "Size: %ld kB", &kb) == 1) {
      size_kb = kb;
    } else if (std::strncmp(line, "VmFlags:", 8) == 0 && std::strstr(line, " wf") != nullptr) {
      total += size_kb * 1024;
    }
  }
  std::fclose(f);
  return total;
}

// Child after the growth: the parent's 800 waiters do not exist here, and
// the grown table (same size, zeroed by the kernel) works with threads.
int child_after_growth(uint32_t *parent_words, int nwords) {
  for (int i = 0; i < nwords; i += 97) {
    if (weave_unpark_all(&parent_words[i]) != 0) return 20;
  }
  struct shared_t {
    uint32_t words[64];
    std::atomic<int> done;
  } s{};
  pthread_t t[4];
  for (auto &th : t) {
    if (pthread_create(
            &th, nullptr,
            [](void *p) -> void * {
              auto *sh = static_cast<shared_t *>(p);
              for (int i = 0; i < 64; i++) {
                uint32_t zero = 0;
                while (__atomic_load_n(&sh->words[i], __ATOMIC_ACQUIRE) == 0) {
                  weave_park(&sh->words[i], &zero, 4, -1, nullptr, 0);
                }
              }
              sh->done.fetch_add(1);
              return nullptr;
            },
            &s) != 0) {
      return 21;
    }
  }
  for (int i = 0; i < 64; i++) {
    ftw_test::sleep_ms(1);
    __atomic_store_n(&s.words[i], 1, __ATOMIC_RELEASE);
    weave_unpark_all(&s.words[i]);
  }
  for (auto &th : t) {
    pthread_join(th, nullptr);
  }
  return s.done.load() == 4 ? 0 : 22;
}

}  // namespace

TEST_CASE("the table grows while 800 threads are parked: no waiter is lost or woken twice, and a fork child works") {
  // 800 threads each park on 10 of 8,000 words, one after the other. The
  // lot grows its table (1,024 buckets) to about three buckets per queued
  // thread while earlier threads sleep in it, so the growth moves parked
  // waiters; every one must then be found by exactly its own address.
  const int threads = 800, per_thread = 10;
  const int nwords = threads * per_thread;
  std::unique_ptr<uint32_t[]> words(new uint32_t[nwords]());
  auto w = [&](int t, int k) { return &words[k * threads + t]; };
  std::atomic<int> finished{0};
  std::atomic<int> bad{0};
  long wf_before = wipe_on_fork_bytes();
  uint64_t parks = stats().parks;
  std::vector<std::unique_ptr<native_thread>> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back(new native_thread([&, t] {
      for (int k = 0; k < per_thread; k++) {
        uint32_t zero = 0;
        while (__atomic_load_n(w(t, k), __ATOMIC_ACQUIRE) == 0) {
          int rc = weave_park(w(t, k), &zero, 4, -1, nullptr, 0);
          if (rc != WEAVE_PARK_OK && rc != WEAVE_PARK_AGAIN) {
            bad++;
          }
        }
      }
      finished++;
    }));
  }
  // Round 0: every thread is queued on its first word.
  REQUIRE(wait_parks(parks, threads));
  long wf_after = wipe_on_fork_bytes();
  INFO("wipe-on-fork bytes before " << wf_before << ", after " << wf_after);
  CHECK(wf_after >= wf_before + 2048L * 64);  // at least one grown table (2,048 buckets or more)

  // A fork child of a process with a grown table and 800 parked threads.
  pid_t pid = ftw_test::fork_quiesced();
  if (pid == 0) {
    _exit(child_after_growth(words.get(), nwords));
  }
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  // Each round-0 waiter is found under its own address exactly once, in an
  // order unrelated to the order of parking (neighbours in the table).
  int woke = 0;
  for (int i = 0; i < threads; i++) {
    int t = (int)((uint64_t)i * 7919 % threads);
    __atomic_store_n(w(t, 0), 1, __ATOMIC_RELEASE);
    woke += weave_unpark(w(t, 0), nullptr, nullptr);
  }
  CHECK(woke == threads);
  // Rounds 1..9 race the wakes with the parks (and with further growth).
  native_thread second_waker([&] {
    for (int k = 1; k < per_thread; k += 2) {
      for (int t = 0; t < threads; t++) {
        __atomic_store_n(w(t, k), 1, __ATOMIC_RELEASE);
        weave_unpark_all(w(t, k));
      }
    }
  });
  for (int k = 2; k < per_thread; k += 2) {
    for (int t = threads - 1; t >= 0; t--) {
      __atomic_store_n(w(t, k), 1, __ATOMIC_RELEASE);
      weave_unpark_all(w(t, k));
    }
  }
  second_waker.join();
  REQUIRE(wait_until([&] { return finished.load() == threads; }, 60000));
  for (auto &t : pool) {
    t->join();
  }
  CHECK(bad == 0);
  for (int i = 0; i < nwords; i += 13) {
    CHECK(weave_unpark_all(&words[i]) == 0);
  }
}

// ---- issue 11: nothing of the library runs inside fork(); no lookup of ----
// ---- CPython from a waiting path -------------------------------------------

namespace {

// Runs fn in a fork child and waits at most timeout_ms for it. Returns its
// exit code, 1000 + the signal that ended it, or -1 when it did not finish
// in time (it is then killed: a deadlocked process cannot clean up).
int in_child(int (*fn)(), int timeout_ms) {
  pid_t pid = ftw_test::fork_quiesced();
  if (pid == 0) {
    _exit(fn());
  }
  REQUIRE(pid > 0);
  int64_t deadline = now_ns() + int64_t(timeout_ms) * 1000000;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
    }
    if (now_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    sleep_ms(2);
  }
}

// Polls (at most 5 s) until bit 1 (has parked) of the mutex is set.
bool someone_parked_on(const weave_mutex_t *m) {
  for (int i = 0; i < 5000; i++) {
    if ((mutex_state(*m) & MUTEX_STATE_PARKED) != 0) return true;
    sleep_ms(1);
  }
  return false;
}

namespace dlopen_case {
weave_mutex_t plugin_lock, contended;
std::atomic<int> step;
void *handle;

void *holder(void *) {
  weave_mutex_lock(&plugin_lock);
  step = 1;
  if (!someone_parked_on(&plugin_lock)) _exit(20);  // the plugin's constructor waits
  // The library used to look CPython up again at most once a second, from
  // the detached sleep below: wait past that window.
  sleep_ms(1100);
  weave_mutex_lock(&contended);  // contended: sleeps with detach
  weave_mutex_unlock(&contended);
  weave_mutex_unlock(&plugin_lock);
  return nullptr;
}

void *loader(void *) {
  handle = dlopen(FTW_DLOPEN_LOCK_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  return nullptr;
}

int run() {
  char text[32];
  std::snprintf(text, sizeof text, "%p", static_cast<void *>(&plugin_lock));
  setenv("FTW_DLOPEN_LOCK", text, 1);
  weave_mutex_lock(&contended);
  pthread_t a, b;
  if (pthread_create(&a, nullptr, holder, nullptr) != 0) return 21;
  while (step.load() == 0) sleep_ms(1);
  if (pthread_create(&b, nullptr, loader, nullptr) != 0) return 22;
  // The holder goes to sleep on `contended` while the loader, inside
  // dlopen (holding the loader's lock), waits in the constructor for the
  // holder's lock. A dlsym on the holder's sleep path would block on the
  // loader's lock forever.
  if (!someone_parked_on(&contended)) return 23;
  sleep_ms(20);
  weave_mutex_unlock(&contended);
  pthread_join(a, nullptr);
  pthread_join(b, nullptr);
  if (handle == nullptr) return 24;
  return 0;
}
}  // namespace dlopen_case

}  // namespace

TEST_CASE("a detached sleep while a thread in dlopen waits for the sleeper's lock: no deadlock") {
  // Issue 11, finding 11: the sleeper looked CPython up with dlsym from its
  // sleep path; dlsym waits for the loader's lock, which the dlopen()ing
  // thread holds while its constructor waits for the sleeper's lock.
  int rc = in_child(dlopen_case::run, 20000);
  INFO("child result " << rc << " (-1: deadlocked and killed)");
  CHECK(rc == 0);
}

namespace {
namespace fork_case {

std::atomic<bool> stop{false};
std::atomic<bool> pause_contenders{false};
uint8_t parked_on[4] = {1, 1, 1, 1};
weave_mutex_t hot[2];
weave_cond_t never_signalled;
weave_mutex_t cond_mutex;
sigset_t forker_mask;

// In the child: the mask the forking thread had must be intact. The .NET
// runtime changes it when it attaches a thread (it unblocks its activation
// signal), which the old C# atfork handler did inside fork() for a thread
// that had never called the library.
bool mask_unchanged() {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  for (int sig = 1; sig < SIGRTMAX; sig++) {
    if (sigismember(&now, sig) != sigismember(&forker_mask, sig)) return false;
  }
  return true;
}

struct Shared {
  weave_mutex_t m;
  weave_raw_mutex_t raw;
  weave_recursive_mutex_t rec;
  weave_rwmutex_t rw;
  weave_event_t ev;
  weave_once_t once;
  weave_cond_t cond;
  weave_seqlock_t seq;
  long counter;
  int ready;
};

int once_fn(void *arg) {
  ++*static_cast<long *>(arg);
  return 0;
}

void *child_worker(void *p) {
  auto *s = static_cast<Shared *>(p);
  for (int i = 0; i < 2000; i++) {
    weave_mutex_lock(&s->m);
    s->counter++;
    weave_mutex_unlock(&s->m);
    weave_raw_mutex_lock(&s->raw);
    weave_raw_mutex_unlock(&s->raw);
    weave_rwmutex_rlock(&s->rw);
    weave_rwmutex_runlock(&s->rw);
  }
  weave_mutex_lock(&s->m);
  s->ready = 1;
  weave_cond_broadcast(&s->cond);
  weave_mutex_unlock(&s->m);
  weave_event_wait(&s->ev);
  return nullptr;
}

// The child's use of every primitive, with one thread of its own. Exit code
// = the first step that failed.
int child_uses_every_primitive() {
  if (!mask_unchanged()) return 30;
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  // The parent's waiters and bucket-lock holders do not exist here.
  for (auto &b : parked_on) {
    if (weave_unpark_all(&b) != 0) return 31;
  }
  uint8_t one = 1;
  if (weave_park(&parked_on[0], &one, 1, 1000000, nullptr, 1) != WEAVE_PARK_TIMEOUT) return 32;
  // The hot mutexes may have been held (and has-parked) at fork by threads
  // that are gone; no owner is recorded, so the child may release them.
  for (auto &m : hot) {
    if (mutex_state(m) != 0 && weave_mutex_unlock(&m) != 0) return 33;
    if (mutex_state(m) != 0) return 34;
  }
  Shared s{};
  weave_mutex_lock(&s.m);
  pthread_t t;
  if (pthread_create(&t, nullptr, child_worker, &s) != 0) return 35;
  ftw_test::sleep_ms(2);
  for (int i = 0; i < 2000; i++) {
    if (i > 0) weave_mutex_lock(&s.m);
    s.counter++;
    weave_mutex_unlock(&s.m);
    weave_raw_mutex_lock(&s.raw);
    weave_raw_mutex_unlock(&s.raw);
    weave_rwmutex_lock(&s.rw);
    weave_rwmutex_unlock(&s.rw);
  }
  weave_mutex_lock(&s.m);
  while (s.ready == 0) {
    weave_cond_wait(&s.cond, &s.m, -1);
  }
  weave_mutex_unlock(&s.m);
  if (s.counter != 4000) return 36;
  weave_recursive_mutex_lock(&s.rec);
  weave_recursive_mutex_lock(&s.rec);
  if (weave_recursive_mutex_unlock(&s.rec) != 0 || weave_recursive_mutex_unlock(&s.rec) != 0) return 37;
  long runs = 0;
  if (weave_once_call(&s.once, once_fn, &runs) != 0 || weave_once_call(&s.once, once_fn, &runs) != 0 || runs != 1) return 38;
  weave_seqlock_lock_write(&s.seq);
  weave_seqlock_unlock_write(&s.seq);
  uint32_t seq = weave_seqlock_begin_read(&s.seq);
  if (!weave_seqlock_end_read(&s.seq, seq)) return 39;
  weave_critical_section_t cs;
  weave_critical_section_begin(&cs, &s.m);
  weave_critical_section_end(&cs);
  weave_event_notify(&s.ev);
  pthread_join(t, nullptr);
  if (mutex_state(s.m) != 0 || s.raw.v != 0 || s.rw.bits != 0 || mutex_state(s.rec.mutex) != 0) return 40;
  weave_stats_t st;
  if (weave_stats(&st) != 0) return 41;
  return 0;
}

}  // namespace fork_case
}  // namespace

// Issue 11, finding 12: no library code may run inside fork() (the C# atfork
// handler attached a forking thread that had never called the library to the
// .NET runtime, in the child), and the child still gets an empty lot.
TEST_CASE("fork from a thread new to the library while others park and contend: the child uses every primitive") {
  using namespace fork_case;
#if defined(__SANITIZE_ADDRESS__)
  const int rounds = 3;  // each fork waits for the process to be quiet (fork_quiesced)
#else
  const int rounds = 30;
#endif
  stop = false;
  std::vector<std::unique_ptr<native_thread>> threads;
  uint64_t parks = stats().parks;
  // Parked on several addresses (several buckets), for the whole test.
  for (auto &b : parked_on) {
    threads.emplace_back(new native_thread([&b] {
      uint8_t expected = 1;
      while (__atomic_load_n(&b, __ATOMIC_ACQUIRE) == 1) weave_park(&b, &expected, 1, -1, nullptr, 0);
    }));
  }
  REQUIRE(wait_parks(parks, 4));
  // And contention: bucket locks of the hot mutexes are taken all the time.
  for (int i = 0; i < 3; i++) {
    threads.emplace_back(new native_thread([i] {
      while (!stop.load()) {
        if (pause_contenders.load()) {
          sleep_ms(1);
          continue;
        }
        weave_mutex_t *m = &hot[i % 2];
        weave_mutex_lock(m);
        weave_mutex_unlock(m);
      }
    }));
  }
  // A condition waiter too (queued in another bucket).
  threads.emplace_back(new native_thread([] {
    weave_mutex_lock(&cond_mutex);
    while (!stop.load()) weave_cond_wait(&never_signalled, &cond_mutex, 1000000);
    weave_mutex_unlock(&cond_mutex);
  }));
  ftw_test::sleep_ms(20);

  std::vector<int> results;
  // The forking thread never calls the library (native_thread, fork and
  // waitpid only).
  native_thread forker([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_sigmask(SIG_BLOCK, nullptr, &forker_mask);
    for (int r = 0; r < rounds; r++) {
#if defined(__SANITIZE_ADDRESS__)
      pause_contenders = true;
#endif
      pid_t pid = ftw_test::fork_quiesced();
      pause_contenders = false;
      if (pid == 0) {
        _exit(child_uses_every_primitive());
      }
      if (pid < 0) {
        results.push_back(2000 + errno);
        continue;
      }
      int64_t deadline = now_ns() + int64_t(10000) * 1000000;
      int status = 0;
      int result = -1;
      while (now_ns() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
          result = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
          break;
        }
        ftw_test::sleep_ms(1);
      }
      if (result == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
      results.push_back(result);
    }
  });
  forker.join();
  stop = true;
  for (auto &b : parked_on) {
    __atomic_store_n(&b, 0, __ATOMIC_RELEASE);
    weave_unpark_all(&b);
  }
  threads.clear();  // joins
  REQUIRE(int(results.size()) == rounds);
  for (int r = 0; r < rounds; r++) {
    INFO("round " << r << ": child result " << results[r]
                  << " (0 ok, -1 hung, 30 the fork ran library code, 1000+n signal n)");
    CHECK(results[r] == 0);
  }
}

namespace {
namespace fake_python {
int fake_state;  // its address stands for an attached PyThreadState
std::atomic<int> saves{0}, restores{0}, bad_restores{0}, other_calls{0};
void *get_state() { return &fake_state; }
void *save() {
  saves++;
  return &fake_state;
}
void restore(void *state) {
  restores++;
  if (state != &fake_state) bad_restores++;
}
int pending() { return 0; }
void *other_get() {
  other_calls++;
  return nullptr;
}
}  // namespace fake_python
}  // namespace

TEST_CASE("weave_set_python_api: detached waits release and restore through the functions handed over") {
  // No CPython in this process: the load-time lookup found nothing, so
  // detach was a no-op until the functions are handed over.
  using namespace fake_python;
  uint8_t b = 1, e = 1;
  CHECK(weave_park(&b, &e, 1, 1000000, nullptr, 1) == WEAVE_PARK_TIMEOUT);
  weave_python_api_t api = {get_state, nullptr, save, restore, pending};
  REQUIRE(weave_set_python_api(&api) == 0);
  CHECK(weave_park(&b, &e, 1, 1000000, nullptr, 1) == WEAVE_PARK_TIMEOUT);
  CHECK(saves.load() == 1);
  CHECK(restores.load() == 1);
  CHECK(weave_park(&b, &e, 1, 1000000, nullptr, 0) == WEAVE_PARK_TIMEOUT);  // no detach asked
  CHECK(saves.load() == 1);
  // The first set is kept for the life of the process.
  weave_python_api_t other = {other_get, nullptr, save, restore, pending};
  CHECK(weave_set_python_api(&other) == 0);
  CHECK(weave_park(&b, &e, 1, 1000000, nullptr, 1) == WEAVE_PARK_TIMEOUT);
  CHECK(other_calls.load() == 0);
  CHECK(saves.load() == 2);
  CHECK(restores.load() == 2);
  CHECK(bad_restores.load() == 0);
}
