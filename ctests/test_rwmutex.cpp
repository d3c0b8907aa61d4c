// ft_weave.h section 4, "RW mutex": writer-preferring reader-writer lock
// (CPython's _PyRWMutex).
#include "weave_test.hpp"
#include "test_util.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace ftw_test;
using Threads = thread_group;

uintptr_t load_bits(const weave_rwmutex_t &rw) { return __atomic_load_n(&rw.bits, __ATOMIC_ACQUIRE); }

// CPython's wait_until: polls every 10 ms, up to ~1 s, for bits == value.
uintptr_t wait_until(const weave_rwmutex_t &rw, uintptr_t value) {
  uintptr_t bits = load_bits(rw);
  for (int i = 0; i < 100 && bits != value; i++) {
    usleep(10 * 1000);
    bits = load_bits(rw);
  }
  return bits;
}

// The four lock operations, either the header's inline ones or the library's
// exported copies (looked up with dlsym, so the compiler cannot inline them).
struct RWApi {
  void (*rlock)(weave_rwmutex_t *);
  int (*runlock)(weave_rwmutex_t *);
  void (*lock)(weave_rwmutex_t *);
  int (*unlock)(weave_rwmutex_t *);
};

RWApi inline_api() {
  return RWApi{[](weave_rwmutex_t *rw) { weave_rwmutex_rlock(rw); },
               [](weave_rwmutex_t *rw) { return weave_rwmutex_runlock(rw); },
               [](weave_rwmutex_t *rw) { weave_rwmutex_lock(rw); },
               [](weave_rwmutex_t *rw) { return weave_rwmutex_unlock(rw); }};
}

RWApi exported_api() {
  return RWApi{exported<void(weave_rwmutex_t *)>("weave_rwmutex_rlock"),
               exported<int(weave_rwmutex_t *)>("weave_rwmutex_runlock"),
               exported<void(weave_rwmutex_t *)>("weave_rwmutex_lock"),
               exported<int(weave_rwmutex_t *)>("weave_rwmutex_unlock")};
}

RWApi slow_api() {
  return RWApi{weave_rwmutex_rlock_slow, weave_rwmutex_runlock_slow, weave_rwmutex_lock_slow,
               weave_rwmutex_unlock_slow};
}

}  // namespace

namespace rwlock_port {
// Port of CPython test_lock_rwlock (Modules/_testinternalcapi/test_lock.c).
struct Data {
  RWApi api;
  std::atomic<int> nthreads;
  std::atomic<int> errors;
  weave_rwmutex_t rw;
  weave_event_t step1, step2, step3, done;
};

void finish(Data *d) {
  if (d->nthreads.fetch_sub(1) == 1) weave_event_notify(&d->done);
}

void reader(Data *d) {
  d->api.rlock(&d->rw);
  weave_event_wait(&d->step1);
  if (d->api.runlock(&d->rw) != 0) d->errors.fetch_add(1);

  d->api.rlock(&d->rw);
  weave_event_wait(&d->step3);
  if (d->api.runlock(&d->rw) != 0) d->errors.fetch_add(1);
  finish(d);
}

void writer(Data *d) {
  d->api.lock(&d->rw);
  weave_event_wait(&d->step2);
  if (d->api.unlock(&d->rw) != 0) d->errors.fetch_add(1);
  finish(d);
}

void run(RWApi api) {
  Data d;
  d.api = api;
  d.nthreads = 3;
  d.errors = 0;
  d.rw = weave_rwmutex_t{0};
  d.step1 = d.step2 = d.step3 = d.done = weave_event_t{0};

  api.lock(&d.rw);
  REQUIRE(d.rw.bits == 1);
  REQUIRE(api.unlock(&d.rw) == 0);
  REQUIRE(d.rw.bits == 0);

  Threads threads;
  // Two readers.
  threads.start([&d] { reader(&d); });
  threads.start([&d] { reader(&d); });
  CHECK(wait_until(d.rw, 8) == 8);

  // A writer, while the readers hold the lock: it parks and sets HasParked.
  threads.start([&d] { writer(&d); });
  CHECK(wait_until(d.rw, 10) == 10);

  // The readers leave; the writer gets in; the readers park behind it.
  weave_event_notify(&d.step1);
  CHECK(wait_until(d.rw, 3) == 3);

  // The writer leaves; the readers get in.
  weave_event_notify(&d.step2);
  CHECK(wait_until(d.rw, 8) == 8);

  // The readers leave again.
  weave_event_notify(&d.step3);
  CHECK(wait_until(d.rw, 0) == 0);

  CHECK(weave_event_wait_timed(&d.done, 10LL * 1000 * 1000 * 1000, 1) == 1);
  threads.join();
  CHECK(d.errors.load() == 0);
}
}  // namespace rwlock_port

TEST_CASE("port of CPython test_lock_rwlock: bits 1, 0, 8, 10, 3, 8, 0") {
  SECTION("inline functions") { rwlock_port::run(inline_api()); }
  SECTION("exported copies") { rwlock_port::run(exported_api()); }
  SECTION("slow paths") { rwlock_port::run(slow_api()); }
}

namespace {
void check_misuse(RWApi api) {
  weave_rwmutex_t rw = {0};
  CHECK(api.runlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(last_error_has("not read-locked"));
  CHECK(rw.bits == 0);
  CHECK(api.unlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(last_error_has("not write-locked"));
  CHECK(rw.bits == 0);

  // Write-locked: runlock is misuse.
  api.lock(&rw);
  CHECK(api.runlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(rw.bits == WEAVE_RWMUTEX_WRITE_LOCKED);
  CHECK(api.unlock(&rw) == 0);
  CHECK(rw.bits == 0);

  // Read-locked: unlock is misuse.
  api.rlock(&rw);
  CHECK(api.unlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(rw.bits == WEAVE_RWMUTEX_ONE_READER);
  CHECK(api.runlock(&rw) == 0);
  CHECK(rw.bits == 0);

  // HasParked without readers (a woken writer is about to lock): a runlock
  // must not wrap the reader count into the flag bits.
  rw.bits = WEAVE_RWMUTEX_HAS_PARKED;
  CHECK(api.runlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(rw.bits == WEAVE_RWMUTEX_HAS_PARKED);
  CHECK(api.unlock(&rw) == WEAVE_E_NOT_OWNER);
  CHECK(rw.bits == WEAVE_RWMUTEX_HAS_PARKED);
}
}  // namespace

TEST_CASE("unlock misuse returns WEAVE_E_NOT_OWNER and leaves the word as it was") {
  SECTION("inline functions") { check_misuse(inline_api()); }
  SECTION("exported copies") { check_misuse(exported_api()); }
  SECTION("slow paths") { check_misuse(slow_api()); }
}

TEST_CASE("several readers hold the lock together") {
  weave_rwmutex_t rw = {0};
  for (int i = 1; i <= 5; i++) {
    weave_rwmutex_rlock(&rw);
    CHECK(rw.bits == static_cast<uintptr_t>(i) * WEAVE_RWMUTEX_ONE_READER);
  }
  for (int i = 4; i >= 0; i--) {
    CHECK(weave_rwmutex_runlock(&rw) == 0);
    CHECK(rw.bits == static_cast<uintptr_t>(i) * WEAVE_RWMUTEX_ONE_READER);
  }
}

namespace stress {
weave_rwmutex_t rw;
std::atomic<int> readers_in, writers_in, violations;
std::atomic<long> reads, writes;
std::atomic<bool> stop;
long shared_a, shared_b;  // written only under the write lock
}  // namespace stress

TEST_CASE("stress: 4 readers and 2 writers never overlap a writer") {
  using namespace stress;
  rw = weave_rwmutex_t{0};
  readers_in = writers_in = violations = 0;
  reads = writes = 0;
  stop = false;
  shared_a = shared_b = 0;

  Threads threads;
  for (int i = 0; i < 4; i++) {
    threads.start([] {
      while (!stop.load(std::memory_order_relaxed)) {
        weave_rwmutex_rlock(&rw);
        readers_in.fetch_add(1);
        if (writers_in.load() != 0) violations.fetch_add(1);
        if (shared_a != shared_b) violations.fetch_add(1);
        readers_in.fetch_sub(1);
        if (weave_rwmutex_runlock(&rw) != 0) violations.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);  // live: the main loop waits for progress
      }
    });
  }
  for (int i = 0; i < 2; i++) {
    threads.start([] {
      while (!stop.load(std::memory_order_relaxed)) {
        weave_rwmutex_lock(&rw);
        if (writers_in.fetch_add(1) != 0) violations.fetch_add(1);
        if (readers_in.load() != 0) violations.fetch_add(1);
        shared_a++;
        sched_yield();  // widen the window for a reader to sneak in
        shared_b++;
        writers_in.fetch_sub(1);
        if (weave_rwmutex_unlock(&rw) != 0) violations.fetch_add(1);
        writes.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // At least 500 ms, and on until both sides made progress (under valgrind,
  // which runs one thread at a time, one side may not get scheduled within
  // 500 ms). Bounded at 30 s.
  auto t0 = Clock::now();
  while ((ms_since(t0) < 500 || writes.load() < 1 || reads.load() < 1) && ms_since(t0) < 30000) {
    usleep(10 * 1000);
  }
  stop = true;
  threads.join();

  CHECK(violations.load() == 0);
  CHECK(rw.bits == 0);
  CHECK(writes.load() > 0);
  CHECK(reads.load() > 0);
  CHECK(shared_a == writes.load());
  CHECK(shared_b == writes.load());
}

namespace preference {
weave_rwmutex_t rw;
std::atomic<bool> writer_done, late_reader_in, late_reader_saw_writer;
}  // namespace preference

TEST_CASE("writer preference: with a writer waiting, a new reader waits until the writer ran") {
  using namespace preference;
  rw = weave_rwmutex_t{0};
  writer_done = late_reader_in = late_reader_saw_writer = false;

  weave_rwmutex_rlock(&rw);  // the first reader: this thread
  Threads threads;
  threads.start([] {
    weave_rwmutex_lock(&rw);
    usleep(5 * 1000);
    writer_done = true;
    weave_rwmutex_unlock(&rw);
  });
  // One reader holding it and a writer parked.
  REQUIRE(wait_until(rw, WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED) ==
          (WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED));

  threads.start([] {
    weave_rwmutex_rlock(&rw);
    late_reader_saw_writer = writer_done.load();
    late_reader_in = true;
    weave_rwmutex_runlock(&rw);
  });
  usleep(50 * 1000);
  // The late reader did not join the current reader: it parked.
  CHECK_FALSE(late_reader_in.load());
  CHECK(rw.bits == (WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED));

  CHECK(weave_rwmutex_runlock(&rw) == 0);
  threads.join();
  CHECK(writer_done.load());
  CHECK(late_reader_in.load());
  CHECK(late_reader_saw_writer.load());
  CHECK(rw.bits == 0);
}

TEST_CASE("RW mutex functions reject NULL and the process goes on") {
  prime_last_error("weave_rwmutex");
  weave_rwmutex_rlock(nullptr);
  CHECK(last_error_has("weave_rwmutex_rlock: rwmutex is NULL"));
  prime_last_error("weave_rwmutex");
  weave_rwmutex_lock(nullptr);
  CHECK(last_error_has("weave_rwmutex_lock: rwmutex is NULL"));
  CHECK(weave_rwmutex_runlock(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_rwmutex_runlock: rwmutex is NULL"));
  CHECK(weave_rwmutex_unlock(nullptr) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_rwmutex_unlock: rwmutex is NULL"));

  prime_last_error("weave_rwmutex");
  weave_rwmutex_rlock_slow(nullptr);
  CHECK(last_error_has("rwmutex is NULL"));
  prime_last_error("weave_rwmutex");
  weave_rwmutex_lock_slow(nullptr);
  CHECK(last_error_has("rwmutex is NULL"));
  CHECK(weave_rwmutex_runlock_slow(nullptr) == WEAVE_E_INVALID);
  CHECK(weave_rwmutex_unlock_slow(nullptr) == WEAVE_E_INVALID);

  RWApi api = exported_api();
  prime_last_error("weave_rwmutex");
  api.rlock(nullptr);
  CHECK(last_error_has("rwmutex is NULL"));
  prime_last_error("weave_rwmutex");
  api.lock(nullptr);
  CHECK(last_error_has("rwmutex is NULL"));
  CHECK(api.runlock(nullptr) == WEAVE_E_INVALID);
  CHECK(api.unlock(nullptr) == WEAVE_E_INVALID);
}

// ---- timed acquires (weave_rwmutex_rlock_timed / weave_rwmutex_lock_timed) ----

namespace timed {
using clock = std::chrono::steady_clock;
constexpr int64_t kMs = 1000 * 1000;

long long elapsed_ms(clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - since).count();
}

volatile sig_atomic_t signals_seen = 0;
void on_signal(int) { signals_seen = signals_seen + 1; }
}  // namespace timed

TEST_CASE("timed RW acquires: 0 is one attempt, a timeout fails and leaves the word as it was") {
  using namespace timed;
  weave_rwmutex_t rw{0};
  weave_rwmutex_lock(&rw);
  CHECK(weave_rwmutex_rlock_timed(&rw, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_FAILURE);
  CHECK(weave_rwmutex_lock_timed(&rw, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_FAILURE);
  CHECK(rw.bits == WEAVE_RWMUTEX_WRITE_LOCKED);
  auto start = clock::now();
  CHECK(weave_rwmutex_rlock_timed(&rw, 30 * kMs, WEAVE_LOCK_DETACH) == WEAVE_LOCK_FAILURE);
  CHECK(elapsed_ms(start) >= 29);
  // The give-up cleared the has-parked bit it had set.
  CHECK(rw.bits == WEAVE_RWMUTEX_WRITE_LOCKED);
  REQUIRE(weave_rwmutex_unlock(&rw) == 0);

  weave_rwmutex_rlock(&rw);
  CHECK(weave_rwmutex_rlock_timed(&rw, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED);  // readers share
  CHECK(weave_rwmutex_lock_timed(&rw, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_FAILURE);
  start = clock::now();
  CHECK(weave_rwmutex_lock_timed(&rw, 30 * kMs, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_FAILURE);
  CHECK(elapsed_ms(start) >= 29);
  CHECK(rw.bits == 2 * WEAVE_RWMUTEX_ONE_READER);
  CHECK(weave_rwmutex_runlock(&rw) == 0);
  CHECK(weave_rwmutex_runlock(&rw) == 0);
  CHECK(weave_rwmutex_lock_timed(&rw, 0, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED);
  CHECK(weave_rwmutex_unlock(&rw) == 0);
  CHECK(rw.bits == 0);
}

TEST_CASE("timed RW acquires wait until the lock is released") {
  using namespace timed;
  weave_rwmutex_t rw{0};
  std::atomic<int> reader_status{-1000}, writer_status{-1000};
  weave_rwmutex_lock(&rw);
  Threads threads;
  threads.start([&] {
    reader_status = weave_rwmutex_rlock_timed(&rw, -1, WEAVE_LOCK_DETACH);
    weave_rwmutex_runlock(&rw);
  });
  threads.start([&] {
    writer_status = weave_rwmutex_lock_timed(&rw, 10000 * kMs, WEAVE_LOCK_DONT_DETACH);
    weave_rwmutex_unlock(&rw);
  });
  CHECK(wait_until(rw, WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED) ==
        (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
  usleep(20 * 1000);
  CHECK(weave_rwmutex_unlock(&rw) == 0);
  threads.join();
  CHECK(reader_status.load() == WEAVE_LOCK_ACQUIRED);
  CHECK(writer_status.load() == WEAVE_LOCK_ACQUIRED);
  CHECK(rw.bits == 0);
}

// The writer that gives up set has-parked for itself; left set, it would make
// the reader queued behind it park again after every wake (the last reader's
// runlock wakes it, it sees has-parked, it parks, and nobody wakes it again).
TEST_CASE("a writer that times out does not strand the readers queued behind it") {
  using namespace timed;
  weave_rwmutex_t rw{0};
  std::atomic<int> writer_status{-1000}, late_status{-1000};
  std::atomic<bool> late_in{false};
  weave_rwmutex_rlock(&rw);  // this thread reads
  Threads threads;
  threads.start([&] { writer_status = weave_rwmutex_lock_timed(&rw, 150 * kMs, WEAVE_LOCK_DONT_DETACH); });
  REQUIRE(wait_until(rw, WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED) ==
          (WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED));
  threads.start([&] {
    // Bounded, so that a stranded reader fails the test instead of hanging it.
    late_status = weave_rwmutex_rlock_timed(&rw, 5000 * kMs, WEAVE_LOCK_DONT_DETACH);
    late_in = true;
  });
  usleep(30 * 1000);
  CHECK_FALSE(late_in.load());  // queued behind the writer (writer preference)
  // The writer gives up while this thread still reads: the late reader joins.
  for (int i = 0; i < 300 && !late_in.load(); i++) usleep(10 * 1000);
  CHECK(writer_status.load() == WEAVE_LOCK_FAILURE);
  CHECK(late_in.load());
  CHECK(late_status.load() == WEAVE_LOCK_ACQUIRED);
  CHECK(weave_rwmutex_runlock(&rw) == 0);
  threads.join();
  if (late_status.load() == WEAVE_LOCK_ACQUIRED) CHECK(weave_rwmutex_runlock(&rw) == 0);
  CHECK(rw.bits == 0);
}

TEST_CASE("timed RW acquires return WEAVE_LOCK_INTR on a signal with WEAVE_LOCK_FAIL_IF_INTERRUPTED") {
  using namespace timed;
  struct sigaction sa {}, old {};
  sa.sa_handler = on_signal;
  sa.sa_flags = 0;  // no SA_RESTART, as CPython installs its handlers
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR2, &sa, &old) == 0);
  for (int write = 0; write < 2; write++) {
    weave_rwmutex_t rw{0};
    weave_rwmutex_lock(&rw);
    std::atomic<int> status{-1000};
    std::atomic<bool> started{false};
    pthread_t t;
    struct Ctx {
      weave_rwmutex_t *rw;
      std::atomic<int> *status;
      std::atomic<bool> *started;
      int write;
    } ctx{&rw, &status, &started, write};
    REQUIRE(pthread_create(&t, nullptr, [](void *p) -> void * {
      auto *c = static_cast<Ctx *>(p);
      c->started->store(true);
      int rc = c->write ? weave_rwmutex_lock_timed(c->rw, 5000 * kMs, WEAVE_LOCK_FAIL_IF_INTERRUPTED)
                        : weave_rwmutex_rlock_timed(c->rw, 5000 * kMs, WEAVE_LOCK_FAIL_IF_INTERRUPTED);
      c->status->store(rc);
      return nullptr;
    }, &ctx) == 0);
    REQUIRE(wait_until(rw, WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED) ==
            (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
    usleep(10 * 1000);
    auto start = clock::now();
    REQUIRE(pthread_kill(t, SIGUSR2) == 0);
    REQUIRE(pthread_join(t, nullptr) == 0);
    CHECK(status.load() == WEAVE_LOCK_INTR);
    CHECK(elapsed_ms(start) < 2000);
    CHECK(rw.bits == WEAVE_RWMUTEX_WRITE_LOCKED);  // nothing taken, has-parked cleared
    CHECK(weave_rwmutex_unlock(&rw) == 0);
  }
  CHECK(signals_seen >= 2);
  sigaction(SIGUSR2, &old, nullptr);
}

TEST_CASE("timed RW acquires reject NULL and unknown flags") {
  weave_rwmutex_t rw{0};
  CHECK(weave_rwmutex_rlock_timed(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_rwmutex_rlock_timed: rwmutex is NULL"));
  CHECK(weave_rwmutex_lock_timed(nullptr, 0, 0) == WEAVE_E_INVALID);
  CHECK(last_error_has("weave_rwmutex_lock_timed: rwmutex is NULL"));
  CHECK(weave_rwmutex_rlock_timed(&rw, 0, 64) == WEAVE_E_INVALID);
  CHECK(last_error_has("unknown flags"));
  CHECK(weave_rwmutex_lock_timed(&rw, 0, 64) == WEAVE_E_INVALID);
  CHECK(rw.bits == 0);
}
