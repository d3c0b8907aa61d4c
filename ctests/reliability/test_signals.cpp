// Signals: every waiting primitive while its waiters are hit by signals whose
// handler was installed without SA_RESTART, as CPython installs its own (so a
// Ctrl-C in a Python program whose threads wait in ft_weave is the same case).
// Every futex wait inside the library then returns EINTR: the wait must
// either continue or return its documented status (WEAVE_PARK_INTR,
// WEAVE_LOCK_INTR), and the primitive's state must stay intact.
//
// Each storm case runs many native threads on one primitive while a storm
// thread sends SIGUSR1 to each of them in turn until they are done. Checks:
// the protected counters are exact, the lock words are back to their idle
// value, every status is a documented one, and nothing hangs: a watchdog
// ends the process with a message (exit 124) if a case does not finish in
// time, so a hang fails the test instead of running into CTest's TIMEOUT.
//
// The word lock (weave_raw_mutex_t, the parking lot's bucket lock under every
// other primitive, and the storage registry's lock) is where an interrupted
// wait corrupted the lock (issue 11, finding 1): a waiter whose stack entry
// was still linked into the lock word took EINTR for a wake.
#include "lock_harness.hpp"
#include "test_util.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using ftw_test::native_thread;
using ftw_test::now_ns;
using ftw_test::sleep_ms;
using ftw_test::sleep_ns;
using ftw_test::thread_group;
using ftw_test::wait_until;

namespace {

// ---- the handler ------------------------------------------------------------

std::atomic<uint64_t> g_handled{0};

void on_sigusr1(int) {
  // Lock-free atomic: async-signal-safe.
  g_handled.fetch_add(1, std::memory_order_relaxed);
}

// SIGUSR1 with sa_flags 0: no SA_RESTART, so an interrupted futex wait
// returns EINTR to the library instead of being restarted by the kernel.
void install_handler() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  REQUIRE(sigaction(SIGUSR1, &sa, nullptr) == 0);
}

// ---- the watchdog -----------------------------------------------------------

// Ends the process (exit 124, with what was still running) if it is not
// destroyed within `seconds`. Threads stuck in a corrupted lock cannot be
// joined or cancelled; only ending the process bounds the test.
class watchdog {
 public:
  watchdog(std::string what, int seconds, std::function<std::string()> progress = {})
      : what_(std::move(what)), progress_(std::move(progress)) {
    thread_.reset(new native_thread([this, seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
        std::string p = progress_ ? progress_() : std::string();
        std::fprintf(stderr, "test_signals watchdog: \"%s\" did not finish within %d s (%s): hang\n",
                     what_.c_str(), seconds, p.c_str());
        std::fflush(stderr);
        _exit(124);
      }
    }));
  }
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_->join();
  }

 private:
  std::string what_;
  std::function<std::string()> progress_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::unique_ptr<native_thread> thread_;
};

constexpr int kWatchdogSeconds = 30;

// ---- the storm --------------------------------------------------------------

struct storm_result {
  uint64_t sent = 0;     // pthread_kill calls that succeeded
  uint64_t handled = 0;  // handler runs during the storm
  double ms = 0;
};

// What a worker body sees: stop turns true once the case has run for its
// duration (bodies that loop "until stop" end then; bodies with a fixed
// amount of work ignore it).
using storm_body = std::function<void(unsigned index, const std::atomic<bool> &stop)>;

constexpr int kStormMs = 1000;

// Run by weave_unpark under the bucket lock of its address: a slow callback
// (it sleeps, taking no lock) that keeps that bucket locked for 200 us.
void bucket_nap(void *, void *, int) { sleep_ns(200000); }

struct storm_options {
  int duration_ms = kStormMs;
  // When set: a "bucket holder" thread keeps the parking-lot bucket of the
  // address it returns (nullptr: none now) locked for 200 us out of every
  // 500 us, by calling weave_unpark with bucket_nap. Threads that park or
  // unpark there meanwhile wait for the bucket's word lock in its futex,
  // which is where the storm must find them (on 2 cores the bucket's short
  // sections are rarely contended otherwise). Its unparks are ordinary
  // wake-ups of that address, which every primitive tolerates.
  std::function<const void *()> bucket;
};

// Runs body(i, stop) on n native threads; once all have started, a storm
// thread sends SIGUSR1 to each in turn (a sched_yield after every round)
// until every body has returned, and sets stop after the duration. A worker
// that is done stays alive until the storm stops (pthread_kill of an exited
// thread is undefined). Bounded by a watchdog.
storm_result run_storm(const char *what, unsigned n, const storm_body &body, storm_options opts = {}) {
  install_handler();
  std::vector<pthread_t> tids(n);
  std::atomic<unsigned> ready{0}, done{0};
  std::atomic<bool> go{false}, stop{false}, storm_over{false};
  std::atomic<uint64_t> sent{0};
  watchdog dog(what, kWatchdogSeconds, [&] {
    return std::to_string(done.load()) + " of " + std::to_string(n) + " workers done, " +
           std::to_string(sent.load()) + " signals sent";
  });
  uint64_t handled0 = g_handled.load();
  auto t0 = ftw_test::Clock::now();
  thread_group workers;
  for (unsigned i = 0; i < n; ++i) {
    workers.start([&, i] {
      tids[i] = pthread_self();
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) sched_yield();
      body(i, stop);
      done.fetch_add(1);
      while (!storm_over.load(std::memory_order_acquire)) sleep_ns(200000);
    });
  }
  REQUIRE(wait_until([&] { return ready.load() == n; }));
  native_thread storm([&] {
    int64_t end = now_ns() + int64_t(opts.duration_ms) * 1000000;
    while (done.load() < n) {
      if (now_ns() >= end) stop.store(true);
      for (unsigned i = 0; i < n; ++i) {
        if (pthread_kill(tids[i], SIGUSR1) == 0) sent.fetch_add(1, std::memory_order_relaxed);
      }
      sched_yield();
    }
  });
  std::unique_ptr<native_thread> holder;
  if (opts.bucket) {
    holder.reset(new native_thread([&] {
      while (done.load() < n) {
        if (const void *a = opts.bucket()) weave_unpark(a, bucket_nap, nullptr);
        sleep_ns(300000);
      }
    }));
  }
  go.store(true, std::memory_order_release);
  storm.join();
  if (holder) holder->join();
  storm_over.store(true, std::memory_order_release);
  workers.join();
  storm_result r;
  r.sent = sent.load();
  r.handled = g_handled.load() - handled0;
  r.ms = ftw_test::ms_since(t0);
  return r;
}

// The storm_options of a case whose waiters all use one address.
storm_options hold_bucket_of(const void *address, int duration_ms = kStormMs) {
  storm_options o;
  o.duration_ms = duration_ms;
  o.bucket = [address] { return address; };
  return o;
}

// A storm case must really have been a storm: signals reached the workers.
// A macro so that its INFO stays in scope for the case's later checks.
#define CHECK_STORM(r)                                                                        \
  INFO("signals sent " << (r).sent << ", handled " << (r).handled << ", " << (r).ms << " ms"); \
  CHECK((r).sent > 0);                                                                        \
  CHECK((r).handled > 0)

// State of a thread from /proc/self/task/<tid>/stat ('S' while it sleeps).
char thread_state(long tid) {
  char path[64], buf[512] = {0};
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  FILE *f = std::fopen(path, "r");
  if (f == nullptr) return '?';
  size_t len = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[len] = 0;
  const char *paren = std::strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' ? paren[2] : '?';
}

// True once the thread has been asleep for 20 polls in a row (about 20 ms):
// parked in its futex wait, not between its push and the system call.
bool asleep_for_a_while(long tid) {
  int quiet = 0;
  return wait_until([&] {
    quiet = thread_state(tid) == 'S' ? quiet + 1 : 0;
    return quiet >= 20;
  });
}

uintptr_t raw_word(const weave_raw_mutex_t &m) { return __atomic_load_n(&m.v, __ATOMIC_ACQUIRE); }

}  // namespace

// ---- raw mutex (the word lock itself) ---------------------------------------

TEST_CASE("signals: one SIGUSR1 to a thread waiting on a raw mutex then the next locks", "[signals][raw]") {
  install_handler();
  watchdog dog("one signal to a raw mutex waiter", kWatchdogSeconds);
  weave_raw_mutex_t m = {0};
  volatile uint64_t counter = 0;
  std::atomic<long> tid{0};
  pthread_t self{};  // written before tid (release), read after it (acquire)
  std::atomic<int> stage{0};
  std::atomic<int> unlock_errors{0};
  std::atomic<uintptr_t> word_when_acquired{0};
  weave_raw_mutex_lock(&m);
  native_thread worker([&] {
    self = pthread_self();
    tid = long(syscall(SYS_gettid));
    weave_raw_mutex_lock(&m);  // waits: the test holds it; the signal lands here
    // Nobody else waits now: the word must say "locked, no waiters" (an
    // interrupted waiter that took the lock with its entry still linked
    // leaves that entry, in a frame that is gone, in the word).
    word_when_acquired = raw_word(m);
    stage = 1;
    sleep_ms(30);  // holds it while the test queues behind it
    counter = counter + 1;
    if (weave_raw_mutex_unlock(&m) != 0) unlock_errors++;
    // The next locks, contended with the test's.
    for (int i = 0; i < 2000; ++i) {
      weave_raw_mutex_lock(&m);
      counter = counter + 1;
      if (weave_raw_mutex_unlock(&m) != 0) unlock_errors++;
    }
    stage = 2;
  });
  // The worker pushed its entry into the word and sleeps in its futex.
  REQUIRE(wait_until([&] { return (raw_word(m) & ~uintptr_t(WEAVE_RAW_MUTEX_LOCKED)) != 0; }));
  REQUIRE(asleep_for_a_while(tid.load()));
  uintptr_t before = raw_word(m);
  uint64_t handled0 = g_handled.load();
  REQUIRE(pthread_kill(self, SIGUSR1) == 0);
  REQUIRE(wait_until([&] { return g_handled.load() > handled0; }));
  // Let the interrupted waiter do whatever it does next: it must sleep on,
  // still queued once, without the lock.
  sleep_ms(20);
  CHECK(raw_word(m) == before);
  CHECK(stage.load() == 0);
  CHECK(weave_raw_mutex_unlock(&m) == 0);
  // The worker now holds it; queue behind it, then keep locking.
  REQUIRE(wait_until([&] { return stage.load() == 1; }));
  CHECK(word_when_acquired.load() == WEAVE_RAW_MUTEX_LOCKED);
  for (int i = 0; i < 2000; ++i) {
    weave_raw_mutex_lock(&m);
    counter = counter + 1;
    if (weave_raw_mutex_unlock(&m) != 0) unlock_errors++;
  }
  worker.join();
  CHECK(stage.load() == 2);
  CHECK(counter == 4001);
  CHECK(unlock_errors.load() == 0);
  CHECK(raw_word(m) == 0);
}

namespace {

// n threads lock/increment/unlock one lock of kind L until the storm's
// duration is over; the counter must equal the acquisitions the threads
// counted, and the word must be idle.
template <class L>
void lock_storm(const char *what, unsigned n, unsigned work, bool parks_in_lot) {
  L lock{};
  volatile uint64_t counter = 0;
  std::atomic<uint64_t> acquisitions{0}, unlock_errors{0};
  weave_stats_t before = ftw_test::stats();
  storm_result r = run_storm(what, n, [&](unsigned, const std::atomic<bool> &stop) {
    uint64_t mine = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ftw_test::lock_traits<L>::lock(&lock);
      for (unsigned j = 0; j < work; ++j) counter = counter + 1;
      // Give the processor away while holding it: the others queue up and
      // park (on 2 cores they would otherwise rarely find it held).
      sched_yield();
      if (ftw_test::lock_traits<L>::unlock(&lock) != 0) unlock_errors++;
      mine++;
    }
    acquisitions += mine;
  }, parks_in_lot ? hold_bucket_of(&lock) : storm_options{});
  weave_stats_t after = ftw_test::stats();
  CHECK_STORM(r);
  INFO("acquisitions " << acquisitions.load() << ", parks " << after.parks - before.parks);
  CHECK(acquisitions.load() > 0);
  CHECK(counter == acquisitions.load() * work);
  CHECK(unlock_errors.load() == 0);
  CHECK(ftw_test::lock_traits<L>::is_reset(&lock));
}

}  // namespace

TEST_CASE("signals: 32 threads on a raw mutex under a SIGUSR1 storm", "[signals][raw]") {
  // The raw mutex queues its waiters in its own word, not in the lot.
  lock_storm<weave_raw_mutex_t>("raw mutex storm", 32, 50, false);
}

// ---- a parking-lot bucket lock ----------------------------------------------

namespace {

// Keeps the bucket of the address it was called for locked: weave_unpark
// runs its callback under that bucket's lock (a word lock), and this one
// sleeps (taking no lock) until released.
std::atomic<int> g_bucket_hold{0};
std::atomic<int> g_bucket_held{0};
void hold_bucket(void *, void *, int) {
  g_bucket_held = 1;
  while (g_bucket_hold.load() != 0) sleep_ns(100000);
}

}  // namespace

TEST_CASE("signals: threads waiting for a parking-lot bucket lock get SIGUSR1", "[signals][mutex]") {
  install_handler();
  // Where the interrupted waiters' entries end up in the word lock depends
  // on the order they wake in: five rounds, each on a fresh mutex.
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    const unsigned n = 8;
    weave_mutex_t m = {0};
    volatile uint64_t counter = 0;
    std::atomic<unsigned> started{0}, finished{0};
    std::atomic<uint64_t> unlock_errors{0};
    std::vector<pthread_t> tids(n);
    std::vector<std::atomic<long>> ktids(n);
    watchdog dog("signals to bucket-lock waiters", kWatchdogSeconds,
                 [&] { return std::to_string(finished.load()) + " of " + std::to_string(n) + " workers done"; });
    weave_mutex_lock(&m);
    // Another thread takes m's bucket lock and keeps it.
    g_bucket_hold = 1;
    g_bucket_held = 0;
    native_thread holder([&] { weave_unpark(&m, hold_bucket, nullptr); });
    REQUIRE(wait_until([&] { return g_bucket_held.load() == 1; }));
    thread_group workers;
    for (unsigned i = 0; i < n; ++i) {
      workers.start([&, i] {
        tids[i] = pthread_self();
        ktids[i] = long(syscall(SYS_gettid));
        started++;
        // m is held: after its spins the thread parks, which needs the
        // bucket lock: it waits in the word lock's futex.
        for (int k = 0; k < 1000; ++k) {
          weave_mutex_lock(&m);
          counter = counter + 1;
          if (weave_mutex_unlock(&m) != 0) unlock_errors++;
        }
        finished++;
      });
    }
    REQUIRE(wait_until([&] { return started.load() == n; }));
    for (unsigned i = 0; i < n; ++i) REQUIRE(asleep_for_a_while(ktids[i].load()));
    uint64_t handled0 = g_handled.load();
    for (unsigned i = 0; i < n; ++i) REQUIRE(pthread_kill(tids[i], SIGUSR1) == 0);
    REQUIRE(wait_until([&] { return g_handled.load() >= handled0 + n; }));
    sleep_ms(20);  // what the interrupted waiters do next: sleep on
    g_bucket_hold = 0;
    holder.join();
    CHECK(finished.load() == 0);
    CHECK(weave_mutex_unlock(&m) == 0);
    workers.join();
    CHECK(finished.load() == n);
    CHECK(counter == uint64_t(n) * 1000);
    CHECK(unlock_errors.load() == 0);
    CHECK(mutex_state(m) == 0);
  }
}

// ---- mutex ------------------------------------------------------------------

TEST_CASE("signals: 128 threads on weave_mutex_t (plain lock) under a SIGUSR1 storm", "[signals][mutex]") {
  lock_storm<weave_mutex_t>("mutex storm", 128, 50, true);
}

namespace {

// weave_mutex_lock_timed under a storm with the given flags and timeout.
// Statuses: ACQUIRED; FAILURE only with a timeout; INTR only with
// FAIL_IF_INTERRUPTED (HANDLE_SIGNALS without CPython keeps waiting).
void timed_mutex_storm(int flags, int64_t timeout_ns) {
  std::string what = "timed mutex storm: flags " + std::to_string(flags) + " timeout " +
                     std::to_string(timeout_ns);
  INFO(what);
  weave_mutex_t m = {0};
  volatile uint64_t counter = 0;
  std::atomic<uint64_t> acquisitions{0}, intr{0}, failures{0}, bad{0}, unlock_errors{0};
  storm_result r = run_storm(what.c_str(), 32, [&](unsigned, const std::atomic<bool> &stop) {
    uint64_t mine = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      int rc = weave_mutex_lock_timed(&m, timeout_ns, flags);
      if (rc == WEAVE_LOCK_ACQUIRED) {
        for (int j = 0; j < 50; ++j) counter = counter + 1;
        if (weave_mutex_unlock(&m) != 0) unlock_errors++;
        mine++;
      } else if (rc == WEAVE_LOCK_INTR) {
        intr++;
        if ((flags & WEAVE_LOCK_FAIL_IF_INTERRUPTED) == 0) bad++;
      } else if (rc == WEAVE_LOCK_FAILURE) {
        failures++;
        if (timeout_ns < 0) bad++;
      } else {
        bad++;
      }
    }
    acquisitions += mine;
  }, hold_bucket_of(&m, kStormMs / 4));
  CHECK_STORM(r);
  INFO("acquisitions " << acquisitions.load() << ", INTR returns " << intr.load() << ", FAILURE returns "
                       << failures.load());
  CHECK(bad.load() == 0);
  CHECK(unlock_errors.load() == 0);
  CHECK(acquisitions.load() > 0);
  CHECK(counter == acquisitions.load() * 50);
  CHECK(mutex_state(m) == 0);
}

}  // namespace

TEST_CASE("signals: timed mutex under a SIGUSR1 storm with every flag", "[signals][mutex]") {
  const int flag_sets[] = {
      WEAVE_LOCK_DONT_DETACH,
      WEAVE_LOCK_DETACH,
      WEAVE_LOCK_HANDLE_SIGNALS,
      WEAVE_LOCK_FAIL_IF_INTERRUPTED,
      WEAVE_LOCK_DETACH | WEAVE_LOCK_HANDLE_SIGNALS | WEAVE_LOCK_FAIL_IF_INTERRUPTED,
  };
  for (int flags : flag_sets) {
    timed_mutex_storm(flags, -1);
    timed_mutex_storm(flags, 2000000);  // 2 ms: timeouts happen too
  }
}

// ---- recursive mutex --------------------------------------------------------

TEST_CASE("signals: recursive mutex under a SIGUSR1 storm", "[signals][recursive]") {
  weave_recursive_mutex_t m{};
  volatile uint64_t counter = 0;
  std::atomic<uint64_t> acquisitions{0}, intr{0}, bad{0};
  storm_result r = run_storm("recursive mutex storm", 32, [&](unsigned i, const std::atomic<bool> &stop) {
    uint64_t mine = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (i % 2 == 0) {
        weave_recursive_mutex_lock(&m);
      } else {
        // Timed and interruptible: INTR leaves nothing held.
        int rc = weave_recursive_mutex_lock_timed(&m, -1, WEAVE_LOCK_FAIL_IF_INTERRUPTED);
        if (rc == WEAVE_LOCK_INTR) {
          intr++;
          if (weave_recursive_mutex_is_locked_by_current_thread(&m)) bad++;
          continue;
        }
        if (rc != WEAVE_LOCK_ACQUIRED) {
          bad++;
          continue;
        }
      }
      weave_recursive_mutex_lock(&m);  // re-entry
      for (int j = 0; j < 50; ++j) counter = counter + 1;
      if (weave_recursive_mutex_unlock(&m) != 0) bad++;
      if (weave_recursive_mutex_unlock(&m) != 0) bad++;
      mine++;
    }
    acquisitions += mine;
  }, hold_bucket_of(&m.mutex));
  CHECK_STORM(r);
  INFO("acquisitions " << acquisitions.load() << ", INTR returns " << intr.load());
  CHECK(bad.load() == 0);
  CHECK(acquisitions.load() > 0);
  CHECK(counter == acquisitions.load() * 50);
  CHECK(mutex_state(m.mutex) == 0);
  CHECK(m.thread == 0);
  CHECK(m.level == 0);
}

// ---- RW mutex ---------------------------------------------------------------

TEST_CASE("signals: RW mutex under a SIGUSR1 storm", "[signals][rwmutex]") {
  weave_rwmutex_t rw = {0};
  volatile uint64_t a = 0, b = 0;
  std::atomic<uint64_t> writes{0}, reads{0}, torn{0}, bad{0};
  const unsigned writers = 8;
  storm_result r = run_storm("rw mutex storm", 32, [&](unsigned i, const std::atomic<bool> &stop) {
    uint64_t mine = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (i < writers) {
        weave_rwmutex_lock(&rw);
        for (int j = 0; j < 20; ++j) {
          a = a + 1;
          b = b + 1;
        }
        if (weave_rwmutex_unlock(&rw) != 0) bad++;
      } else {
        weave_rwmutex_rlock(&rw);
        if (a != b) torn++;
        if (weave_rwmutex_runlock(&rw) != 0) bad++;
      }
      mine++;
    }
    (i < writers ? writes : reads) += mine;
  }, hold_bucket_of(&rw));
  CHECK_STORM(r);
  INFO("writes " << writes.load() << ", reads " << reads.load());
  CHECK(torn.load() == 0);
  CHECK(bad.load() == 0);
  CHECK(writes.load() > 0);
  CHECK(a == writes.load() * 20);
  CHECK(b == a);
  CHECK((rw.bits & ~WEAVE_RWMUTEX_READER_BIAS) == 0);  // contending readers may have left the bias on
}

// ---- condition --------------------------------------------------------------

TEST_CASE("signals: condition (producers and consumers) under a SIGUSR1 storm", "[signals][cond]") {
  weave_cond_t cond = {0};
  weave_mutex_t m = {0};
  // All under m.
  uint64_t items = 0, produced = 0, consumed = 0;
  bool producers_done = false;
  const unsigned n = 32, producers = 16;
  std::atomic<unsigned> producers_left{producers};
  std::atomic<uint64_t> bad{0}, waits{0};
  storm_result r = run_storm("cond storm", n, [&](unsigned i, const std::atomic<bool> &stop) {
    if (i < producers) {
      while (!stop.load(std::memory_order_relaxed)) {
        weave_mutex_lock(&m);
        items++;
        produced++;
        if (weave_cond_signal(&cond) < 0) bad++;
        if (weave_mutex_unlock(&m) != 0) bad++;
      }
      weave_mutex_lock(&m);
      if (producers_left.fetch_sub(1) == 1) {
        producers_done = true;
        if (weave_cond_broadcast(&cond) < 0) bad++;
      }
      if (weave_mutex_unlock(&m) != 0) bad++;
      return;
    }
    // Consumers: half wait forever, half with 1 ms timeouts; they leave
    // once the producers are done and nothing is left.
    int64_t timeout = i % 2 == 0 ? -1 : 1000000;
    uint64_t mine = 0;
    weave_mutex_lock(&m);
    while (true) {
      while (items == 0 && !producers_done) {
        int rc = weave_cond_wait(&cond, &m, timeout);
        mine++;
        if (rc != 0 && rc != 1) bad++;
        if (!weave_mutex_is_locked(&m)) bad++;
      }
      if (items == 0) break;
      items--;
      consumed++;
    }
    if (weave_mutex_unlock(&m) != 0) bad++;
    waits += mine;
  }, hold_bucket_of(&cond));
  CHECK_STORM(r);
  INFO("produced " << produced << ", waits " << waits.load());
  CHECK(bad.load() == 0);
  CHECK(produced > 0);
  CHECK(consumed == produced);
  CHECK(items == 0);
  CHECK(mutex_state(m) == 0);
  // Nobody waits: a broadcast finds nobody and stores the idle value.
  CHECK(weave_cond_broadcast(&cond) == 0);
  CHECK(cond.v == 0);
}

// ---- event ------------------------------------------------------------------

TEST_CASE("signals: event waits under a SIGUSR1 storm", "[signals][event]") {
  const unsigned n = 32, rounds = 300;
  std::unique_ptr<weave_event_t[]> events(new weave_event_t[rounds]());
  std::unique_ptr<std::atomic<unsigned>[]> arrived(new std::atomic<unsigned>[rounds]);
  for (unsigned k = 0; k < rounds; ++k) arrived[k] = 0;
  std::atomic<uint64_t> bad{0}, woken{0};
  std::atomic<const void *> current{nullptr};  // the event of the notifier's round
  storm_options opts;
  opts.bucket = [&] { return current.load(); };
  storm_result r = run_storm("event storm", n, [&](unsigned i, const std::atomic<bool> &) {
    for (unsigned k = 0; k < rounds; ++k) {
      if (i == 0) {
        // The notifier: once every waiter arrived, give them time to park.
        current = &events[k];
        int64_t deadline = now_ns() + 5000000000LL;
        while (arrived[k].load() < n - 1 && now_ns() < deadline) sched_yield();
        sleep_ns(500000);
        weave_event_notify(&events[k]);
        continue;
      }
      arrived[k].fetch_add(1);
      int rc;
      switch (i % 3) {
        case 0:
          weave_event_wait(&events[k]);  // forever: returns only once set
          rc = weave_event_is_set(&events[k]);
          break;
        case 1:
          rc = weave_event_wait_timed(&events[k], 10000000000LL, 0);  // 10 s
          break;
        default:
          // Short timeouts, retried: 0 only while not set.
          while ((rc = weave_event_wait_timed(&events[k], 100000, 1)) == 0) {
          }
          break;
      }
      if (rc == 1) {
        woken++;
      } else {
        bad++;
      }
    }
  }, opts);
  CHECK_STORM(r);
  CHECK(bad.load() == 0);
  CHECK(woken.load() == uint64_t(n - 1) * rounds);
  for (unsigned k = 0; k < rounds; ++k) {
    INFO("event " << k);
    CHECK(events[k].v == WEAVE_EVENT_SET);
  }
}

// ---- once -------------------------------------------------------------------

namespace {
struct once_round {
  std::atomic<int> attempts{0};
};

int slow_once_fn(void *arg) {
  auto *round = static_cast<once_round *>(arg);
  sleep_ns(300000);  // the others park meanwhile
  // The first attempt fails: a waiting caller must run it again.
  return round->attempts.fetch_add(1) == 0 ? -1 : 0;
}
}  // namespace

TEST_CASE("signals: once under a SIGUSR1 storm", "[signals][once]") {
  const unsigned n = 32, rounds = 300;
  std::unique_ptr<weave_once_t[]> onces(new weave_once_t[rounds]());
  std::unique_ptr<once_round[]> state(new once_round[rounds]);
  std::atomic<uint64_t> failed_returns{0}, bad{0};
  std::atomic<const void *> current{nullptr};  // the flag worker 0 is at
  storm_options opts;
  opts.bucket = [&] { return current.load(); };
  storm_result r = run_storm("once storm", n, [&](unsigned i, const std::atomic<bool> &) {
    for (unsigned k = 0; k < rounds; ++k) {
      if (i == 0) current = &onces[k];
      int rc = weave_once_call(&onces[k], slow_once_fn, &state[k]);
      if (rc == -1) {
        failed_returns++;
      } else if (rc != 0) {
        bad++;
      }
    }
  }, opts);
  CHECK_STORM(r);
  CHECK(bad.load() == 0);
  CHECK(failed_returns.load() == rounds);  // one failed run per flag, reported to its runner
  for (unsigned k = 0; k < rounds; ++k) {
    INFO("once " << k);
    CHECK(state[k].attempts.load() == 2);
    CHECK(onces[k].v == WEAVE_ONCE_DONE);
  }
}

// ---- weave_park / weave_unpark ----------------------------------------------

namespace {
// A futex-style lock (0 free, 1 locked, 2 locked with waiters) built on
// weave_park: WEAVE_PARK_INTR is a documented result, and the loop retries.
struct park_lock {
  uint32_t word = 0;
  std::atomic<uint64_t> intr{0}, bad{0};

  void lock(int detach) {
    uint32_t c = 0;
    if (__atomic_compare_exchange_n(&word, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    if (c != 2) c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
      const uint32_t two = 2;
      int rc = weave_park(&word, &two, sizeof word, -1, nullptr, detach);
      if (rc == WEAVE_PARK_INTR) {
        intr++;
      } else if (rc != WEAVE_PARK_OK && rc != WEAVE_PARK_AGAIN) {
        bad++;
      }
      c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    }
  }
  void unlock() {
    if (__atomic_exchange_n(&word, 0, __ATOMIC_RELEASE) == 2) {
      if (weave_unpark(&word, nullptr, nullptr) < 0) bad++;
    }
  }
};
}  // namespace

TEST_CASE("signals: weave_park / weave_unpark under a SIGUSR1 storm", "[signals][park]") {
  park_lock l;
  volatile uint64_t counter = 0;
  std::atomic<uint64_t> acquisitions{0};
  storm_result r = run_storm("park storm", 32, [&](unsigned i, const std::atomic<bool> &stop) {
    uint64_t mine = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      l.lock(int(i % 2));
      for (int j = 0; j < 50; ++j) counter = counter + 1;
      l.unlock();
      mine++;
    }
    acquisitions += mine;
  }, hold_bucket_of(&l.word));
  CHECK_STORM(r);
  INFO("acquisitions " << acquisitions.load() << ", WEAVE_PARK_INTR returns " << l.intr.load());
  CHECK(l.bad.load() == 0);
  CHECK(acquisitions.load() > 0);
  CHECK(counter == acquisitions.load() * 50);
  CHECK(l.word == 0);
}

// ---- storage ----------------------------------------------------------------

namespace {
constexpr unsigned kStaticRounds = 600;
constexpr unsigned kTlsPerRound = 8;
std::atomic<int> g_static_inits[kStaticRounds];

int slow_static_init(void *storage, void *arg) {
  auto index = reinterpret_cast<uintptr_t>(arg);
  sleep_ns(300000);  // the other callers wait meanwhile
  g_static_inits[index].fetch_add(1);
  *static_cast<uint64_t *>(storage) = 1000 + index;
  return 0;
}
}  // namespace

TEST_CASE("signals: weave_static_get with a slow init under a SIGUSR1 storm", "[signals][storage]") {
  const unsigned n = 64, rounds = kStaticRounds;
  for (auto &c : g_static_inits) c = 0;
  std::unique_ptr<std::atomic<void *>[]> first(new std::atomic<void *>[rounds]);
  for (unsigned k = 0; k < rounds; ++k) first[k] = nullptr;
  std::atomic<uint64_t> bad{0};
  storm_result r = run_storm("static storm", n, [&](unsigned i, const std::atomic<bool> &) {
    for (unsigned k = 0; k < rounds; ++k) {
      std::string key = "signals.storm:static." + std::to_string(k);
      void *p = weave_static_get(key.c_str(), sizeof(uint64_t), slow_static_init,
                                 reinterpret_cast<void *>(uintptr_t(k)));
      if (p == nullptr || *static_cast<uint64_t *>(p) != 1000 + k) {
        bad++;
        continue;
      }
      void *expected = nullptr;
      if (!first[k].compare_exchange_strong(expected, p) && expected != p) bad++;
      // Per-thread values: each thread's first get of a key takes the
      // registry's word lock too.
      for (unsigned t = 0; t < kTlsPerRound; ++t) {
        std::string tls = "signals.storm:tls." + std::to_string(k) + "." + std::to_string(t);
        auto *v = static_cast<uint64_t *>(weave_tls_get(tls.c_str(), sizeof(uint64_t), nullptr, nullptr));
        if (v == nullptr || *v != 0) {
          bad++;
        } else {
          *v = i + 1;
        }
      }
    }
  });
  CHECK_STORM(r);
  CHECK(bad.load() == 0);
  for (unsigned k = 0; k < rounds; ++k) {
    INFO("key " << k);
    CHECK(g_static_inits[k].load() == 1);
  }
}

namespace {

// Warms the calling thread's poll budget: a quick park/unpark ping-pong with
// a partner, whose wakes come within microseconds, makes the budget grow
// (docs/parking_lot.md, "Polling before the sleep").
void warm_poll_budget() {
  alignas(8) static uint32_t turn;
  turn = 0;
  constexpr uint32_t kRounds = 400;
  auto player = [](uint32_t me) {
    for (uint32_t i = 0; i < kRounds; i++) {
      uint32_t v;
      while (((v = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) & 1u) != me) {
        weave_park(&turn, &v, sizeof v, -1, nullptr, 0);
      }
      __atomic_store_n(&turn, v + 1, __ATOMIC_RELEASE);
      weave_unpark(&turn, nullptr, nullptr);
    }
  };
  native_thread partner([&] { player(1); });
  player(0);
  partner.join();
}

}  // namespace

TEST_CASE("signals: a lock wait that asks for signals does not poll: one SIGUSR1 right after the park interrupts it", "[signals][mutex][rwmutex]") {
  // A parked thread may poll its wait word for a while before it sleeps, when
  // its recent waits ended soon; a signal whose handler runs during the poll
  // interrupts nothing. Lock waits never poll, so one with
  // WEAVE_LOCK_FAIL_IF_INTERRUPTED is interrupted at once. The waiter's budget is warmed
  // first, and the signal is sent as soon as the park is counted, well inside
  // the poll the budget would allow: a polling wait would miss it and time
  // out after 3 s instead of returning WEAVE_LOCK_INTR.
  install_handler();
  for (int kind = 0; kind < 3; kind++) {
    INFO("kind " << kind << " (0 mutex, 1 rwmutex write, 2 rwmutex read)");
    weave_mutex_t m{};
    weave_rwmutex_t rw{};
    if (kind == 0) {
      weave_mutex_lock(&m);
    } else {
      weave_rwmutex_lock(&rw);
    }
    std::atomic<bool> warmed{false};
    std::atomic<uint64_t> parks{0};
    std::atomic<int> status{-1000};
    std::atomic<pthread_t> tid{};
    native_thread waiter([&] {
      tid = pthread_self();
      warm_poll_budget();
      // Nothing else parks now: the next park is this thread's, in the lock.
      parks = ftw_test::stats().parks;
      warmed = true;
      const int64_t timeout = 3000LL * 1000000;
      int rc = kind == 0   ? weave_mutex_lock_timed(&m, timeout, WEAVE_LOCK_FAIL_IF_INTERRUPTED)
               : kind == 1 ? weave_rwmutex_lock_timed(&rw, timeout, WEAVE_LOCK_FAIL_IF_INTERRUPTED)
                           : weave_rwmutex_rlock_timed(&rw, timeout, WEAVE_LOCK_FAIL_IF_INTERRUPTED);
      status = rc;
    });
    REQUIRE(wait_until([&] { return warmed.load(); }));
    // No sleep between the park being counted and the signal: it lands
    // within microseconds of the waiter's park.
    int64_t give_up = now_ns() + 2LL * 1000000000;
    while (ftw_test::stats().parks == parks.load() && now_ns() < give_up) {
    }
    uint64_t handled = g_handled.load();
    int64_t sent = now_ns();
    REQUIRE(pthread_kill(tid.load(), SIGUSR1) == 0);
    waiter.join();
    INFO("the park came " << (give_up - sent) / 1000000 << " ms before the give-up; the wait ended "
                          << (now_ns() - sent) / 1000000 << " ms after the signal");
    CHECK(g_handled.load() > handled);
    CHECK(status.load() == WEAVE_LOCK_INTR);
    if (kind == 0) {
      CHECK(weave_mutex_unlock(&m) == 0);
    } else {
      CHECK(weave_rwmutex_unlock(&rw) == 0);
      CHECK(rw.bits == 0);
    }
  }
}
