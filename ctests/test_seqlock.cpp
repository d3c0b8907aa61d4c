// ft_weave.h section 4, "Seqlock": sequence lock (CPython's _PySeqLock).
#include "weave_test.hpp"
#include "test_util.hpp"

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace ftw_test;
using Threads = thread_group;

uint32_t sequence_of(const weave_seqlock_t &s) { return __atomic_load_n(&s.sequence, __ATOMIC_ACQUIRE); }

}  // namespace

TEST_CASE("write sections move the sequence: odd while writing, +2 per write") {
  weave_seqlock_t s = {0};
  CHECK(weave_seqlock_begin_read(&s) == 0);
  weave_seqlock_lock_write(&s);
  CHECK(s.sequence == 1);
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 2);

  uint32_t seq = weave_seqlock_begin_read(&s);
  CHECK(seq == 2);
  CHECK(weave_seqlock_end_read(&s, seq) == 1);
  weave_seqlock_lock_write(&s);
  weave_seqlock_unlock_write(&s);
  CHECK(weave_seqlock_end_read(&s, seq) == 0);  // a write happened: retry
  CHECK(weave_seqlock_begin_read(&s) == 4);

  // The counter wraps around from odd 0xFFFFFFFF to 0.
  s.sequence = 0xFFFFFFFEu;
  weave_seqlock_lock_write(&s);
  CHECK(s.sequence == 0xFFFFFFFFu);
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 0);
}

TEST_CASE("abandon_write leaves the sequence as it was before the write") {
  weave_seqlock_t s = {0};
  weave_seqlock_lock_write(&s);
  CHECK(s.sequence == 1);
  weave_seqlock_abandon_write(&s);
  CHECK(s.sequence == 0);

  weave_seqlock_lock_write(&s);
  weave_seqlock_unlock_write(&s);
  uint32_t seq = weave_seqlock_begin_read(&s);
  CHECK(seq == 2);
  weave_seqlock_lock_write(&s);
  CHECK(s.sequence == 3);
  weave_seqlock_abandon_write(&s);
  CHECK(s.sequence == 2);
  CHECK(weave_seqlock_end_read(&s, seq) == 1);  // nothing was published: no retry
}

TEST_CASE("unlocking a seqlock that is not write-locked is refused and changes nothing") {
  weave_seqlock_t s = {0};
  prime_last_error("weave_seqlock");
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 0);
  CHECK(last_error_has("weave_seqlock_unlock_write: the seqlock is not write-locked"));
  CHECK(last_error_has("not write-locked"));

  s.sequence = 6;
  prime_last_error("weave_seqlock");
  weave_seqlock_abandon_write(&s);
  CHECK(s.sequence == 6);
  CHECK(last_error_has("weave_seqlock_abandon_write: the seqlock is not write-locked"));
  prime_last_error("weave_seqlock");
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 6);
  CHECK(last_error_has("not write-locked"));

  // Still usable afterwards.
  weave_seqlock_lock_write(&s);
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 8);
}

namespace waiting_reader {
weave_seqlock_t s;
std::atomic<bool> started, returned;
std::atomic<uint32_t> seen;
}  // namespace waiting_reader

TEST_CASE("begin_read waits while a write is in progress") {
  using namespace waiting_reader;
  s = weave_seqlock_t{0};
  started = returned = false;
  seen = 12345;
  weave_seqlock_lock_write(&s);
  Threads threads;
  threads.start([] {
    started = true;
    seen = weave_seqlock_begin_read(&s);
    returned = true;
  });
  while (!started.load()) sched_yield();
  usleep(30 * 1000);
  CHECK_FALSE(returned.load());
  weave_seqlock_unlock_write(&s);
  threads.join();
  CHECK(returned.load());
  CHECK(seen.load() == 2);
}

namespace torn {
weave_seqlock_t s;
uint64_t word_a, word_b;  // accessed with relaxed atomics: a torn read is not UB
std::atomic<bool> stop;
std::atomic<long> writes, abandons, good_reads, torn_reads, retries;
}  // namespace torn

TEST_CASE("readers never accept a torn two-word value while a writer keeps updating") {
  using namespace torn;
  s = weave_seqlock_t{0};
  word_a = word_b = 0;
  stop = false;
  writes = abandons = good_reads = torn_reads = retries = 0;

  Threads threads;
  threads.start([] {
    uint64_t n = 0;
    long published = 0, abandoned = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      weave_seqlock_lock_write(&s);
      if (n % 5 == 4) {
        // Nothing to change after all: give the sequence back.
        weave_seqlock_abandon_write(&s);
        abandoned++;
        abandons.store(abandoned, std::memory_order_relaxed);  // progress, for the main loop
        n++;
        continue;
      }
      uint64_t v = ++n;
      __atomic_store_n(&word_a, v, __ATOMIC_RELAXED);
      for (int spin = 0; spin < 50; spin++) {
        __atomic_signal_fence(__ATOMIC_SEQ_CST);  // a window between the two stores
      }
      __atomic_store_n(&word_b, v, __ATOMIC_RELAXED);
      weave_seqlock_unlock_write(&s);
      published++;
      writes.store(published, std::memory_order_relaxed);
    }
    writes = published;
    abandons = abandoned;
  });
  for (int r = 0; r < 2; r++) {
    threads.start([] {
      long good = 0, bad = 0, again = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        uint32_t seq = weave_seqlock_begin_read(&s);
        uint64_t a = __atomic_load_n(&word_a, __ATOMIC_RELAXED);
        uint64_t b = __atomic_load_n(&word_b, __ATOMIC_RELAXED);
        if (!weave_seqlock_end_read(&s, seq)) {
          again++;
          continue;
        }
        if (a == b) {
          good++;
        } else {
          bad++;
        }
      }
      good_reads.fetch_add(good);
      torn_reads.fetch_add(bad);
      retries.fetch_add(again);
    });
  }
  // At least 300 ms, and on until the writer has both published and abandoned
  // a few times: under valgrind, which runs one thread at a time, the writer
  // may not get scheduled at all within 300 ms. Bounded at 30 s.
  auto t0 = Clock::now();
  while ((ms_since(t0) < 300 || writes.load() < 1 || abandons.load() < 1) && ms_since(t0) < 30000) {
    usleep(10 * 1000);
  }
  stop = true;
  threads.join();

  INFO("retries: " << retries.load() << ", writes: " << writes.load());
  CHECK(torn_reads.load() == 0);
  CHECK(good_reads.load() > 0);
  CHECK(writes.load() > 0);
  CHECK(abandons.load() > 0);
  // Each published write moved it by 2; each abandoned one by 0.
  CHECK(sequence_of(s) == static_cast<uint32_t>(2 * writes.load()));
}

TEST_CASE("after_fork resets a write left in progress by another thread") {
  weave_seqlock_t even = {0};
  even.sequence = 4;
  CHECK(weave_seqlock_after_fork(&even) == 0);
  CHECK(even.sequence == 4);

  static weave_seqlock_t s;
  s = weave_seqlock_t{0};
  s.sequence = 6;
  weave_seqlock_lock_write(&s);  // "another thread" in the child's view
  REQUIRE(s.sequence == 7);
  fflush(nullptr);
  pid_t pid = ftw_test::fork_quiesced();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int status = 0;
    if (weave_seqlock_after_fork(&s) != 1) status |= 1;
    if (sequence_of(s) != 0) status |= 2;
    if (weave_seqlock_after_fork(&s) != 0) status |= 4;
    weave_seqlock_lock_write(&s);
    weave_seqlock_unlock_write(&s);
    if (weave_seqlock_begin_read(&s) != 2) status |= 8;
    _exit(status);
  }
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  // The parent's write is still in progress and finishes normally.
  CHECK(s.sequence == 7);
  weave_seqlock_unlock_write(&s);
  CHECK(s.sequence == 8);
}

TEST_CASE("the exported copies of begin_read and end_read behave as the inline ones") {
  auto begin_read = exported<uint32_t(weave_seqlock_t *)>("weave_seqlock_begin_read");
  auto end_read = exported<int(weave_seqlock_t *, uint32_t)>("weave_seqlock_end_read");
  weave_seqlock_t s = {0};
  uint32_t seq = begin_read(&s);
  CHECK(seq == 0);
  CHECK(end_read(&s, seq) == 1);
  weave_seqlock_lock_write(&s);
  CHECK(end_read(&s, seq) == 0);
  weave_seqlock_unlock_write(&s);
  CHECK(end_read(&s, seq) == 0);
  CHECK(begin_read(&s) == 2);
  CHECK(end_read(&s, 2) == 1);
  CHECK(end_read(nullptr, 0) == 0);
  prime_last_error("weave_seqlock");
  CHECK(begin_read(nullptr) == 0);
  CHECK(last_error_has("weave_seqlock_begin_read: seqlock is NULL"));
}

TEST_CASE("seqlock functions reject NULL and the process goes on") {
  prime_last_error("weave_seqlock");
  weave_seqlock_lock_write(nullptr);
  CHECK(last_error_has("weave_seqlock_lock_write: seqlock is NULL"));
  prime_last_error("weave_seqlock");
  weave_seqlock_unlock_write(nullptr);
  CHECK(last_error_has("weave_seqlock_unlock_write: seqlock is NULL"));
  prime_last_error("weave_seqlock");
  weave_seqlock_abandon_write(nullptr);
  CHECK(last_error_has("weave_seqlock_abandon_write: seqlock is NULL"));
  prime_last_error("weave_seqlock");
  CHECK(weave_seqlock_begin_read_slow(nullptr) == 0);
  CHECK(last_error_has("seqlock is NULL"));
  prime_last_error("weave_seqlock");
  CHECK(weave_seqlock_begin_read(nullptr) == 0);
  CHECK(last_error_has("seqlock is NULL"));
  CHECK(weave_seqlock_end_read(nullptr, 0) == 0);
  CHECK(weave_seqlock_after_fork(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_seqlock_after_fork: seqlock is NULL"));
}
