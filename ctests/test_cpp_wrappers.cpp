// include/ft_weave.hpp: the C++17 RAII types with the standard library's
// guards, condition_variable_any, timed locks, and the documented errors.
//
// ft_weave.hpp comes first, so that it is checked to compile on its own
// (with -Wall -Wextra -pedantic -Werror, as every suite).
#include <ft_weave.hpp>

#include "weave_test.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

template <class T>
constexpr bool pinned = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                        !std::is_move_constructible_v<T> && !std::is_move_assignable_v<T>;
static_assert(pinned<ft_weave::mutex> && pinned<ft_weave::recursive_mutex> && pinned<ft_weave::raw_mutex> &&
              pinned<ft_weave::rw_mutex> && pinned<ft_weave::condition_variable> && pinned<ft_weave::event> &&
              pinned<ft_weave::once_flag> && pinned<ft_weave::critical_section> &&
              pinned<ft_weave::critical_section2> && pinned<ft_weave::seqlock>);
// BasicLockable's unlock must not throw (guards call it from destructors).
static_assert(noexcept(std::declval<ft_weave::mutex &>().unlock()));
static_assert(noexcept(std::declval<ft_weave::rw_mutex &>().unlock_shared()));
// Layout: the wrappers are exactly their C structs (shareable with C code).
static_assert(sizeof(ft_weave::mutex) == sizeof(weave_mutex_t));
static_assert(sizeof(ft_weave::rw_mutex) == sizeof(weave_rwmutex_t));
static_assert(sizeof(ft_weave::condition_variable) == sizeof(weave_cond_t));

// Constant-initialised at namespace scope (constexpr constructors).
ft_weave::mutex g_mutex;
ft_weave::once_flag g_once;

// Runs `threads` std::threads that each add 1 to a shared counter `per` times
// under `lock_one()`; returns the final count.
template <class Body>
long hammer(int threads, int per, Body body) {
  long counter = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < per; ++i) body(counter);
    });
  }
  for (auto &th : pool) th.join();
  return counter;
}

}  // namespace

TEST_CASE("mutex with lock_guard and unique_lock: 4 threads x 20000 increments lose none") {
  ft_weave::mutex m;
  long n = hammer(4, 20000, [&](long &c) {
    std::lock_guard<ft_weave::mutex> g(m);
    ++c;
  });
  REQUIRE(n == 80000);
  n = hammer(4, 20000, [&](long &c) {
    std::unique_lock<ft_weave::mutex> g(m);
    ++c;
  });
  REQUIRE(n == 80000);
  REQUIRE_FALSE(m.is_locked());
  std::lock_guard<ft_weave::mutex> g(g_mutex);
  REQUIRE(g_mutex.is_locked());
}

TEST_CASE("std::scoped_lock over two mutexes taken in opposite orders does not deadlock") {
  ft_weave::mutex a, b;
  long x = 0;
  std::thread t1([&] {
    for (int i = 0; i < 20000; ++i) {
      std::scoped_lock g(a, b);
      ++x;
    }
  });
  std::thread t2([&] {
    for (int i = 0; i < 20000; ++i) {
      std::scoped_lock g(b, a);
      ++x;
    }
  });
  t1.join();
  t2.join();
  REQUIRE(x == 40000);
  REQUIRE_FALSE(a.is_locked());
  REQUIRE_FALSE(b.is_locked());
}

TEST_CASE("scoped_lock mixes lock types: mutex, recursive_mutex, raw_mutex, rw_mutex") {
  ft_weave::mutex m;
  ft_weave::recursive_mutex r;
  ft_weave::raw_mutex w;
  ft_weave::rw_mutex rw;
  long n = hammer(3, 5000, [&](long &c) {
    std::scoped_lock g(m, r, w, rw);
    ++c;
  });
  REQUIRE(n == 15000);
  REQUIRE(w.try_lock());
  REQUIRE_FALSE(w.try_lock());
  w.unlock();
}

TEST_CASE("timed locks: try_lock_for and try_lock_until fail after their time while another thread holds the mutex") {
  ft_weave::mutex m;
  ft_weave::recursive_mutex r;
  ft_weave::event held, release;
  std::thread owner([&] {
    std::scoped_lock g(m, r);
    held.set();
    release.wait();
  });
  held.wait();
  REQUIRE_FALSE(m.try_lock());
  auto t0 = clock_type::now();
  REQUIRE_FALSE(m.try_lock_for(30ms));
  REQUIRE(clock_type::now() - t0 >= 30ms);
  t0 = clock_type::now();
  REQUIRE_FALSE(m.try_lock_until(std::chrono::system_clock::now() + 20ms));
  REQUIRE(clock_type::now() - t0 >= 19ms);  // system_clock may tick coarser
  REQUIRE_FALSE(r.try_lock());
  t0 = clock_type::now();
  REQUIRE_FALSE(r.try_lock_for(20ms));
  REQUIRE(clock_type::now() - t0 >= 20ms);
  REQUIRE_FALSE(std::unique_lock<ft_weave::mutex>(m, 1ms).owns_lock());  // TimedLockable constructor
  // A past deadline and a zero duration are one attempt.
  REQUIRE_FALSE(m.try_lock_until(clock_type::now() - 1s));
  REQUIRE_FALSE(m.try_lock_for(0s));

  // Released while a timed lock waits: it gets the mutex.
  std::thread late([&] {
    std::this_thread::sleep_for(20ms);
    release.set();
  });
  REQUIRE(m.try_lock_for(10s));
  REQUIRE(r.try_lock_until(clock_type::now() + 10s));
  r.unlock();
  m.unlock();
  late.join();
  owner.join();
  // Durations too long for int64_t nanoseconds mean "forever" (not a negative timeout).
  REQUIRE(m.try_lock_for(std::chrono::hours::max()));
  m.unlock();
  REQUIRE(m.try_lock_for(std::chrono::duration<double>(1e30)));
  m.unlock();
}

TEST_CASE("recursive_mutex: the owner re-enters, others cannot, unlock_checked refuses a non-owner") {
  ft_weave::recursive_mutex r;
  {
    std::lock_guard<ft_weave::recursive_mutex> a(r);
    std::unique_lock<ft_weave::recursive_mutex> b(r);
    REQUIRE(r.try_lock());
    REQUIRE(r.is_locked_by_current_thread());
    bool other = true;
    std::thread([&] { other = r.try_lock(); }).join();
    REQUIRE_FALSE(other);
    r.unlock();
  }
  REQUIRE_FALSE(r.is_locked_by_current_thread());
  // Not the owner: unlock() changes nothing, unlock_checked() throws.
  r.unlock();
  try {
    r.unlock_checked();
    FAIL("unlock_checked of an unowned recursive_mutex did not throw");
  } catch (const std::system_error &e) {
    REQUIRE(e.code() == ft_weave::make_error_code(WEAVE_E_NOT_OWNER));
    REQUIRE(std::string(e.code().category().name()) == "ft_weave");
  }
  REQUIRE(r.try_lock());
  r.unlock_checked();
}

TEST_CASE("unlock of an unlocked mutex: unlock() leaves it unlocked, unlock_checked() throws WEAVE_E_NOT_OWNER") {
  ft_weave::mutex m;
  m.unlock();  // documented: no effect, recorded in weave_last_error()
  REQUIRE(std::string(weave_last_error()).size() > 0);
  REQUIRE_FALSE(m.is_locked());
  REQUIRE(m.try_lock());  // still a working mutex
  m.unlock_checked();
  try {
    m.unlock_checked();
    FAIL("unlock_checked of an unlocked mutex did not throw");
  } catch (const std::system_error &e) {
    REQUIRE(e.code().value() == WEAVE_E_NOT_OWNER);
    REQUIRE(&e.code().category() == &ft_weave::error_category());
    REQUIRE(std::string(e.what()).find("not locked") != std::string::npos);
    REQUIRE(e.code().message() == weave_strerror(WEAVE_E_NOT_OWNER));
  }
  ft_weave::raw_mutex w;
  REQUIRE_THROWS_AS(w.unlock_checked(), std::system_error);
  ft_weave::rw_mutex rw;
  REQUIRE_THROWS_AS(rw.unlock_checked(), std::system_error);
  REQUIRE_THROWS_AS(rw.unlock_shared_checked(), std::system_error);
}

TEST_CASE("rw_mutex is SharedTimedLockable: timed write and read locks give up and succeed") {
  ft_weave::rw_mutex rw;
  {
    std::shared_lock<ft_weave::rw_mutex> r(rw);
    bool writer = true;
    std::chrono::steady_clock::duration waited{};
    std::thread([&] {
      auto t0 = std::chrono::steady_clock::now();
      writer = rw.try_lock_for(20ms);
      waited = std::chrono::steady_clock::now() - t0;
    }).join();
    REQUIRE_FALSE(writer);
    REQUIRE(waited >= 20ms);
    // The writer that gave up left nothing behind: a reader still gets in.
    std::thread([&] {
      std::shared_lock<ft_weave::rw_mutex> r2(rw, 20ms);
      writer = r2.owns_lock();
    }).join();
    REQUIRE(writer);
  }
  {
    std::unique_lock<ft_weave::rw_mutex> w(rw, std::chrono::steady_clock::now() + 1s);
    REQUIRE(w.owns_lock());
    bool reader = true;
    std::thread([&] { reader = rw.try_lock_shared_until(std::chrono::steady_clock::now() + 20ms); }).join();
    REQUIRE_FALSE(reader);
  }
  // Free again: both forms succeed at once.
  REQUIRE(rw.try_lock_shared_for(0ms));
  rw.unlock_shared();
  REQUIRE(rw.try_lock_until(std::chrono::steady_clock::now()));
  rw.unlock();
}

TEST_CASE("rw_mutex with std::shared_lock: readers share, a writer excludes") {
  ft_weave::rw_mutex rw;
  {
    std::shared_lock<ft_weave::rw_mutex> r1(rw);
    std::shared_lock<ft_weave::rw_mutex> r2(rw, std::try_to_lock);
    REQUIRE(r2.owns_lock());
    bool reader = false, writer = true;
    std::thread([&] {
      std::shared_lock<ft_weave::rw_mutex> r3(rw, std::try_to_lock);
      reader = r3.owns_lock();
      writer = rw.try_lock();
    }).join();
    REQUIRE(reader);
    REQUIRE_FALSE(writer);
  }
  {
    std::unique_lock<ft_weave::rw_mutex> w(rw);
    bool reader = true;
    std::thread([&] { reader = rw.try_lock_shared(); }).join();
    REQUIRE_FALSE(reader);
  }
  // Two readers inside at the same time: each waits (bounded) for the other.
  std::atomic<int> inside{0};
  std::atomic<bool> both{true};
  auto read = [&] {
    std::shared_lock<ft_weave::rw_mutex> r(rw);
    inside.fetch_add(1);
    auto deadline = clock_type::now() + 5s;
    while (inside.load() < 2 && clock_type::now() < deadline) std::this_thread::yield();
    if (inside.load() < 2) both = false;
  };
  std::thread a(read), b(read);
  a.join();
  b.join();
  REQUIRE(both);
  // Writers and readers: every increment under the write lock is seen whole.
  long value = 0;
  std::atomic<bool> torn{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::lock_guard<ft_weave::rw_mutex> w(rw);
        value += 2;
      }
    });
    pool.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::shared_lock<ft_weave::rw_mutex> r(rw);
        if (value % 2 != 0) torn = true;
      }
    });
  }
  for (auto &th : pool) th.join();
  REQUIRE(value == 20000);
  REQUIRE_FALSE(torn);
}

TEST_CASE("condition_variable: producer/consumer with predicate waits, 2 x 2 threads, 20000 items") {
  ft_weave::mutex m;
  ft_weave::condition_variable nonempty;
  long items = 0, consumed = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        {
          std::lock_guard<ft_weave::mutex> g(m);
          ++items;
        }
        nonempty.notify_one();  // outside the mutex: documented to work
      }
    });
    pool.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        std::unique_lock<ft_weave::mutex> g(m);
        nonempty.wait(g, [&] { return items > 0; });
        --items;
        ++consumed;
      }
    });
  }
  for (auto &th : pool) th.join();
  REQUIRE(consumed == 20000);
  REQUIRE(items == 0);
}

TEST_CASE("condition_variable timed waits: timeout status, predicate result, notify_all wakes every waiter") {
  ft_weave::mutex m;
  ft_weave::condition_variable cv;
  std::unique_lock<ft_weave::mutex> g(m);
  auto t0 = clock_type::now();
  REQUIRE(cv.wait_for(g, 20ms) == std::cv_status::timeout);
  REQUIRE(clock_type::now() - t0 >= 20ms);
  REQUIRE(g.owns_lock());
  REQUIRE(m.is_locked());
  REQUIRE_FALSE(cv.wait_for(g, 10ms, [] { return false; }));
  REQUIRE(cv.wait_until(g, std::chrono::system_clock::now() - 1s) == std::cv_status::timeout);
  REQUIRE(cv.wait_until(g, clock_type::now() + 1s, [] { return true; }));
  g.unlock();

  int go = 0, woke = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&] {
      std::unique_lock<ft_weave::mutex> l(m);
      if (cv.wait_for(l, 20s, [&] { return go != 0; })) ++woke;
    });
  }
  // Let them wait (or not: a waiter that arrives late sees go at once).
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard<ft_weave::mutex> l(m);
    go = 1;
  }
  cv.notify_all();
  for (auto &th : pool) th.join();
  REQUIRE(woke == 4);

  // Waiting without holding the mutex is an error, not undefined behaviour.
  std::unique_lock<ft_weave::mutex> none(m, std::defer_lock);
  REQUIRE_THROWS_AS(cv.wait_for(none, 1ms), std::system_error);
  try {
    cv.wait(none);
  } catch (const std::system_error &e) {
    REQUIRE(e.code().value() == WEAVE_E_NOT_OWNER);
  }
}

TEST_CASE("std::condition_variable_any with ft_weave::mutex and ft_weave::recursive_mutex") {
  ft_weave::mutex m;
  std::condition_variable_any cv;
  int stage = 0;
  std::thread t([&] {
    std::unique_lock<ft_weave::mutex> l(m);
    cv.wait(l, [&] { return stage == 1; });
    stage = 2;
    cv.notify_all();
  });
  {
    std::lock_guard<ft_weave::mutex> l(m);
    stage = 1;
  }
  cv.notify_all();
  {
    std::unique_lock<ft_weave::mutex> l(m);
    REQUIRE(cv.wait_for(l, 20s, [&] { return stage == 2; }));
  }
  t.join();

  ft_weave::recursive_mutex r;
  std::unique_lock<ft_weave::recursive_mutex> l(r);
  auto t0 = clock_type::now();
  REQUIRE(cv.wait_for(l, 15ms) == std::cv_status::timeout);
  REQUIRE(clock_type::now() - t0 >= 15ms);
  REQUIRE(r.is_locked_by_current_thread());
}

TEST_CASE("event: wait_for times out unset, then returns true once set by another thread") {
  ft_weave::event e;
  REQUIRE_FALSE(e.is_set());
  auto t0 = clock_type::now();
  REQUIRE_FALSE(e.wait_for(20ms));
  REQUIRE(clock_type::now() - t0 >= 20ms);
  REQUIRE_FALSE(e.wait_until(std::chrono::system_clock::now() + 5ms));
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    e.set();
  });
  REQUIRE(e.wait_for(20s));
  t.join();
  e.wait();
  REQUIRE(e.is_set());
  REQUIRE(e.wait_until(clock_type::now() - 1s));  // set: true even with a past deadline
}

TEST_CASE("call_once: an exception reaches the caller and resets the flag, the next caller runs, then none again") {
  ft_weave::once_flag flag;
  int runs = 0;
  REQUIRE_THROWS_AS(ft_weave::call_once(flag,
                                        [&] {
                                          ++runs;
                                          throw std::runtime_error("first try fails");
                                        }),
                    std::runtime_error);
  REQUIRE_FALSE(flag.is_done());
  try {
    ft_weave::call_once(flag, [&] {
      ++runs;
      throw std::length_error("second");
    });
    FAIL("no exception");
  } catch (const std::length_error &e) {
    REQUIRE(std::string(e.what()) == "second");  // the very exception object type and message
  }
  ft_weave::call_once(flag, [&](int add) { runs += add; }, 10);
  REQUIRE(flag.is_done());
  ft_weave::call_once(flag, [&] { runs += 1000; });
  REQUIRE(runs == 12);
  ft_weave::call_once(g_once, [] {});
  REQUIRE(g_once.is_done());
}

TEST_CASE("call_once: a recursive call on the same flag throws WEAVE_E_DEADLOCK instead of hanging") {
  ft_weave::once_flag flag;
  int inner = 0;
  bool deadlock = false;
  REQUIRE_THROWS_AS(ft_weave::call_once(flag,
                                        [&] {
                                          try {
                                            ft_weave::call_once(flag, [&] { ++inner; });
                                          } catch (const std::system_error &e) {
                                            deadlock = e.code().value() == WEAVE_E_DEADLOCK;
                                            throw;
                                          }
                                        }),
                    std::system_error);
  REQUIRE(deadlock);
  REQUIRE(inner == 0);
  REQUIRE_FALSE(flag.is_done());
}

TEST_CASE("call_once: concurrent callers while the first throws: exactly one later callable completes") {
  ft_weave::once_flag flag;
  std::atomic<int> completed{0}, thrown{0}, attempts{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&] {
      try {
        ft_weave::call_once(flag, [&] {
          // The first two runs throw; whoever runs third succeeds.
          int n = attempts.fetch_add(1);
          std::this_thread::sleep_for(5ms);
          if (n < 2) throw std::runtime_error("fail");
          completed.fetch_add(1);
        });
      } catch (const std::runtime_error &) {
        thrown.fetch_add(1);
      }
    });
  }
  for (auto &th : pool) th.join();
  REQUIRE(completed == 1);
  REQUIRE(thrown == 2);
  REQUIRE(attempts == 3);
}

TEST_CASE("critical_section and critical_section2 lock and unlock their mutexes, opposite orders do not deadlock") {
  ft_weave::mutex a, b;
  {
    ft_weave::critical_section cs(a);
    REQUIRE(a.is_locked());
    ft_weave::critical_section again(a);  // re-entry on the innermost's mutex locks nothing
    REQUIRE(a.is_locked());
  }
  REQUIRE_FALSE(a.is_locked());
  {
    ft_weave::critical_section2 cs2(b, a);
    REQUIRE(a.is_locked());
    REQUIRE(b.is_locked());
  }
  REQUIRE_FALSE(a.is_locked());
  REQUIRE_FALSE(b.is_locked());
  {
    ft_weave::critical_section2 same(b, b);  // the same mutex twice is locked once
    REQUIRE(b.is_locked());
  }
  REQUIRE_FALSE(b.is_locked());
  // Nested sections in opposite orders: the inner begin suspends the outer
  // section while it blocks, so both threads finish.
  // (The outer section's mutex may be released while inside the inner one:
  // the count is atomic, the test is about finishing.)
  std::atomic<long> x{0};
  auto run = [&](ft_weave::mutex &first, ft_weave::mutex &second) {
    for (int i = 0; i < 5000; ++i) {
      ft_weave::critical_section outer(first);
      ft_weave::critical_section inner(second);
      x.fetch_add(1);
    }
  };
  std::thread t1([&] { run(a, b); }), t2([&] { run(b, a); });
  t1.join();
  t2.join();
  REQUIRE(x == 10000);
}

TEST_CASE("seqlock: lock_guard writers and read() never return a torn pair") {
  ft_weave::seqlock s;
  long pair[2] = {0, 0};
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0}, reads{0};
  std::thread writer([&] {
    for (long i = 1; i <= 20000; ++i) {
      std::lock_guard<ft_weave::seqlock> g(s);
      __atomic_store_n(&pair[0], i, __ATOMIC_RELAXED);
      __atomic_store_n(&pair[1], -i, __ATOMIC_RELAXED);
    }
    stop = true;
  });
  std::thread reader([&] {
    while (!stop.load()) {
      auto copy = s.read([&] {
        return std::make_pair(__atomic_load_n(&pair[0], __ATOMIC_RELAXED), __atomic_load_n(&pair[1], __ATOMIC_RELAXED));
      });
      if (copy.first != -copy.second) torn.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  writer.join();
  reader.join();
  REQUIRE(torn == 0);
  REQUIRE(s.read([&] { return pair[0]; }) == 20000);
  // abandon() puts the sequence back: a read started before stays valid.
  uint32_t seq = s.begin_read();
  s.lock();
  s.abandon();
  REQUIRE(s.end_read(seq));
  s.lock();
  s.unlock();
  REQUIRE_FALSE(s.end_read(seq));
}

TEST_CASE("native handles share the lock with C code") {
  ft_weave::mutex m;
  weave_mutex_lock(m.native_handle());
  REQUIRE_FALSE(m.try_lock());
  REQUIRE(weave_mutex_unlock(m.native_handle()) == 0);
  ft_weave::event e;
  weave_event_notify(e.native_handle());
  REQUIRE(e.is_set());
}
