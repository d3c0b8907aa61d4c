// ft_weave.h section 4, "RW mutex": writer-preferring reader-writer lock
// (CPython's _PyRWMutex).
#include "weave_test.hpp"
#include "test_util.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
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
  CHECK((rw.bits & ~WEAVE_RWMUTEX_READER_BIAS) == 0);  // the readers may have turned the bias on
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

namespace wake {
weave_rwmutex_t rw;
}  // namespace wake

TEST_CASE("wake policy: a writer's unlock wakes the parked reader with a pass, the writer behind it stays parked") {
  // Queue: reader R, then writer W2 (both behind this thread's write lock).
  // The unlock wakes R alone; R joins although has-parked stays set for W2;
  // R's runlock (the last reader in front of has-parked) then wakes W2.
  using namespace wake;
  rw = weave_rwmutex_t{0};
  std::atomic<bool> r_in{false}, r_release{false}, w2_in{false}, r_saw_w2{false};
  weave_rwmutex_lock(&rw);
  Threads threads;
  threads.start([&] {
    weave_rwmutex_rlock(&rw);
    r_in = true;
    while (!r_release.load()) usleep(1000);
    r_saw_w2 = w2_in.load();
    weave_rwmutex_runlock(&rw);
  });
  REQUIRE(wait_until(rw, WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED) ==
          (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
  usleep(30 * 1000);  // the reader is queued (it set has-parked just before)
  threads.start([&] {
    weave_rwmutex_lock(&rw);
    w2_in = true;
    weave_rwmutex_unlock(&rw);
  });
  usleep(50 * 1000);  // the writer spun and queued behind the reader
  CHECK_FALSE(r_in.load());
  CHECK(weave_rwmutex_unlock(&rw) == 0);
  // The reader got in past has-parked; the writer is still parked.
  for (int i = 0; i < 100 && !r_in.load(); i++) usleep(10 * 1000);
  CHECK(r_in.load());
  usleep(30 * 1000);
  CHECK_FALSE(w2_in.load());
  CHECK(load_bits(rw) == (WEAVE_RWMUTEX_ONE_READER | WEAVE_RWMUTEX_HAS_PARKED));
  r_release = true;
  threads.join();
  CHECK_FALSE(r_saw_w2.load());
  CHECK(w2_in.load());
  CHECK(load_bits(rw) == 0);
}

TEST_CASE("wake policy: a writer's unlock wakes the writer at the head alone") {
  // Queue: writer W2, then two readers. The unlock wakes W2 only and keeps
  // has-parked, so the readers stay parked until W2's own unlock wakes them.
  using namespace wake;
  rw = weave_rwmutex_t{0};
  std::atomic<bool> w2_in{false}, w2_release{false};
  std::atomic<int> readers_in{0}, readers_before_w2_left{0};
  weave_rwmutex_lock(&rw);
  Threads threads;
  threads.start([&] {
    weave_rwmutex_lock(&rw);
    w2_in = true;
    while (!w2_release.load()) usleep(1000);
    weave_rwmutex_unlock(&rw);
  });
  REQUIRE(wait_until(rw, WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED) ==
          (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
  usleep(30 * 1000);  // W2 is queued
  for (int i = 0; i < 2; i++) {
    threads.start([&] {
      weave_rwmutex_rlock(&rw);
      if (!w2_release.load()) readers_before_w2_left.fetch_add(1);
      readers_in.fetch_add(1);
      weave_rwmutex_runlock(&rw);
    });
  }
  usleep(50 * 1000);  // the readers spun and queued behind W2
  CHECK(weave_rwmutex_unlock(&rw) == 0);
  for (int i = 0; i < 100 && !w2_in.load(); i++) usleep(10 * 1000);
  CHECK(w2_in.load());
  usleep(30 * 1000);
  CHECK(readers_in.load() == 0);
  CHECK(load_bits(rw) == (WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
  w2_release = true;
  threads.join();
  CHECK(readers_in.load() == 2);
  CHECK(readers_before_w2_left.load() == 0);
  CHECK(load_bits(rw) == 0);
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

// ---- Reader bias (BRAVO): readers in the visible-readers table ---------------

namespace bias {

constexpr uintptr_t kBias = WEAVE_RWMUTEX_READER_BIAS;

// Readers contending on the word turn the bias on (their CAS loses to each
// other's). Four threads hammer rlock/runlock until the bit shows, at most
// 15 s (two threads must run at once: on a loaded 2-core machine that can
// take seconds); true once it is on. The lock is left unlocked, bias on.
bool contend_until_biased(weave_rwmutex_t *rw) {
  std::atomic<bool> stop{false};
  Threads threads;
  for (int i = 0; i < 4; i++) {
    threads.start([rw, &stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        weave_rwmutex_rlock(rw);
        weave_rwmutex_runlock(rw);
      }
    });
  }
  auto t0 = Clock::now();
  while ((load_bits(*rw) & kBias) == 0 && ms_since(t0) < 15000) {
    usleep(200);
  }
  stop = true;
  threads.join();
  return (load_bits(*rw) & kBias) != 0;
}

// Another thread holds a read lock of `rw` until `release` is set.
struct Holder {
  std::atomic<bool> in{false}, release{false};
  std::atomic<int> runlock_result{1};

  // Starts the holder on `threads`; returns once it holds the read lock.
  void hold(Threads &threads, weave_rwmutex_t *rw) {
    threads.start([this, rw] {
      weave_rwmutex_rlock(rw);
      in = true;
      while (!release.load()) usleep(1000);
      runlock_result = weave_rwmutex_runlock(rw);
    });
    while (!in.load()) usleep(1000);
  }
};

// A writer on another thread takes `rw` while the caller holds it through its
// slot: it sets the write bit, waits past its spin and yields, clears the
// bias and sleeps until the caller's runlock frees the slot.
struct RevokingWriter {
  std::atomic<bool> in{false};

  // Starts it; returns the word once the bias is gone and only the write bit is left.
  uintptr_t start(Threads &threads, weave_rwmutex_t *rw) {
    threads.start([this, rw] {
      weave_rwmutex_lock(rw);
      in = true;
      weave_rwmutex_unlock(rw);
    });
    return wait_until(*rw, WEAVE_RWMUTEX_WRITE_LOCKED);
  }
};

weave_rwmutex_t racing, reenable, misuse, exiting, forked;
std::atomic<int> torn{0};
uint64_t data_a, data_b;

}  // namespace bias

TEST_CASE("bias: revocation racing readers: no reader overlaps a writer, the bias comes and goes", "[bias]") {
  using namespace bias;
  racing = weave_rwmutex_t{0};
  torn = 0;
  data_a = data_b = 0;
  REQUIRE(contend_until_biased(&racing));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, writes{0}, biased_reads{0}, biased_writes{0};
  std::atomic<int> writers_in{0};
  Threads threads;
  for (int i = 0; i < 3; i++) {
    threads.start([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        weave_rwmutex_rlock(&racing);
        // A reader in the table is not counted in the word.
        if (WEAVE_RWMUTEX_READERS(load_bits(racing)) == 0) biased_reads.fetch_add(1, std::memory_order_relaxed);
        if (writers_in.load() != 0) torn.fetch_add(1);
        uint64_t a = __atomic_load_n(&data_a, __ATOMIC_RELAXED);
        uint64_t b = __atomic_load_n(&data_b, __ATOMIC_RELAXED);
        if (a != b) torn.fetch_add(1);
        if (weave_rwmutex_runlock(&racing) != 0) torn.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  threads.start([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      weave_rwmutex_lock(&racing);
      if (writers_in.fetch_add(1) != 0) torn.fetch_add(1);
      // The bias usually stays on while a writer holds the lock: readers
      // that race it into their slots see write-locked and back out.
      if ((load_bits(racing) & kBias) != 0) biased_writes.fetch_add(1, std::memory_order_relaxed);
      __atomic_store_n(&data_a, data_a + 1, __ATOMIC_RELAXED);
      sched_yield();  // widen the window for a biased reader to sneak in
      __atomic_store_n(&data_b, data_b + 1, __ATOMIC_RELAXED);
      writers_in.fetch_sub(1);
      if (weave_rwmutex_unlock(&racing) != 0) torn.fetch_add(1);
      writes.fetch_add(1, std::memory_order_relaxed);
      usleep(200);  // read-mostly: let the bias come back between writes
    }
  });
  auto t0 = Clock::now();
  while ((ms_since(t0) < 500 || writes.load() < 20 || biased_reads.load() < 1 || biased_writes.load() < 1) &&
         ms_since(t0) < 20000) {
    usleep(10 * 1000);
  }
  stop = true;
  threads.join();
  CHECK(torn.load() == 0);
  CHECK(writes.load() >= 20);
  CHECK(biased_reads.load() > 0);   // readers did go through the table
  CHECK(biased_writes.load() > 0);  // writers did run with readers racing into the table
  CHECK(data_a == writes.load());
  CHECK(data_b == writes.load());
  CHECK((load_bits(racing) & ~kBias) == 0);
}

TEST_CASE("bias: a writer revokes it, readers bring it back after the inhibit time", "[bias]") {
  // Every runlock: they skip the slot lookup when the word has neither the
  // bias nor the write bit, and here the bias is gone while the revoking
  // writer holds the write bit and waits for this very slot.
  using namespace bias;
  for (RWApi api : {inline_api(), exported_api(), slow_api()}) {
    reenable = weave_rwmutex_t{0};
    REQUIRE(contend_until_biased(&reenable));

    // A biased reader is in the table, not in the word.
    weave_rwmutex_rlock(&reenable);
    CHECK(load_bits(reenable) == kBias);
    // A writer revokes: it takes the lock, clears the bit, and waits for us.
    Threads threads;
    RevokingWriter writer;
    CHECK(writer.start(threads, &reenable) == WEAVE_RWMUTEX_WRITE_LOCKED);
    usleep(20 * 1000);
    CHECK_FALSE(writer.in.load());  // still waiting for our slot
    CHECK(api.runlock(&reenable) == 0);
    threads.join();
    CHECK(writer.in.load());
    // Revoked: the word is plain again, and an uncontended reader counts itself.
    CHECK(load_bits(reenable) == 0);
    CHECK(api.runlock(&reenable) == WEAVE_E_NOT_OWNER);
    weave_rwmutex_rlock(&reenable);
    CHECK(load_bits(reenable) == WEAVE_RWMUTEX_ONE_READER);
    CHECK(api.runlock(&reenable) == 0);
    CHECK(api.runlock(&reenable) == WEAVE_E_NOT_OWNER);
    // The inhibit time is at most 10 ms; contending readers turn it on again.
    usleep(20 * 1000);
    CHECK(contend_until_biased(&reenable));
    CHECK(load_bits(reenable) == kBias);
  }
}

TEST_CASE("bias: runlock misuse returns WEAVE_E_NOT_OWNER and leaves another thread's biased read lock held", "[bias]") {
  using namespace bias;
  misuse = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&misuse));

  Holder h;
  Threads threads;
  h.hold(threads, &misuse);
  REQUIRE(load_bits(misuse) == kBias);  // the holder is in the table
  for (RWApi api : {inline_api(), exported_api(), slow_api()}) {
    prime_last_error("weave_rwmutex");
    CHECK(api.runlock(&misuse) == WEAVE_E_NOT_OWNER);
    CHECK(last_error_has("not read-locked"));
    CHECK(load_bits(misuse) == kBias);
  }
  // The holder's lock still counts: a writer waits for it.
  std::atomic<bool> writer_in{false};
  threads.start([&writer_in] {
    weave_rwmutex_lock(&misuse);
    writer_in = true;
    weave_rwmutex_unlock(&misuse);
  });
  usleep(30 * 1000);
  CHECK_FALSE(writer_in.load());
  h.release = true;
  threads.join();
  CHECK(h.runlock_result.load() == 0);
  CHECK(writer_in.load());
  // The writer may or may not have got to turning the bias off (it does so
  // only after spinning and yielding, which a loaded machine can stretch past
  // the 30 ms above).
  CHECK((load_bits(misuse) & ~kBias) == 0);
}

TEST_CASE("bias: the exported copies and the inline functions share the table", "[bias]") {
  using namespace bias;
  static weave_rwmutex_t shared;
  shared = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&shared));
  RWApi ex = exported_api();
  ex.rlock(&shared);
  CHECK(load_bits(shared) == kBias);
  CHECK(weave_rwmutex_runlock(&shared) == 0);  // inline release of an exported acquire
  weave_rwmutex_rlock(&shared);
  CHECK(load_bits(shared) == kBias);
  CHECK(ex.runlock(&shared) == 0);
  CHECK(ex.runlock(&shared) == WEAVE_E_NOT_OWNER);
}

TEST_CASE("bias: a thread that exits holding a biased read lock leaves it read-held for good", "[bias]") {
  // As with a counted read lock (or a pthread_rwlock): nobody else can
  // release it, readers still get in, and writers wait for ever. The lock is
  // static: the blocked writer below outlives the test.
  using namespace bias;
  exiting = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&exiting));
  {
    Threads threads;
    threads.start([] { weave_rwmutex_rlock(&exiting); });
  }
  CHECK(load_bits(exiting) == kBias);
  CHECK(weave_rwmutex_runlock(&exiting) == WEAVE_E_NOT_OWNER);
  weave_rwmutex_rlock(&exiting);
  CHECK(weave_rwmutex_runlock(&exiting) == 0);
  static std::atomic<bool> writer_in{false};
  std::thread([] {
    weave_rwmutex_lock(&exiting);
    writer_in = true;
  }).detach();
  usleep(50 * 1000);
  CHECK_FALSE(writer_in.load());
  // Revoking: it holds the word, and turns the bias off once its spin and
  // yields are over (polled: a loaded machine stretches the yields).
  CHECK(wait_until(exiting, WEAVE_RWMUTEX_WRITE_LOCKED) == WEAVE_RWMUTEX_WRITE_LOCKED);
}

TEST_CASE("bias: fork child with readers in the table", "[bias]") {
  // The table is copied into the child as it is: the forking thread's
  // biased read lock is still its own there; another thread's stays held
  // (that thread does not exist in the child), exactly like counted readers.
  using namespace bias;
  forked = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&forked));
  Holder other;
  Threads threads;
  other.hold(threads, &forked);
  weave_rwmutex_rlock(&forked);
  REQUIRE(load_bits(forked) == kBias);

  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 0;
    if (weave_rwmutex_runlock(&forked) != 0) code |= 1;                  // our own: released
    if (weave_rwmutex_runlock(&forked) != WEAVE_E_NOT_OWNER) code |= 2;  // nothing more of ours
    static std::atomic<bool> child_writer_in{false};
    std::thread([] {
      weave_rwmutex_lock(&forked);
      child_writer_in = true;
    }).detach();
    usleep(50 * 1000);
    if (child_writer_in.load()) code |= 4;  // the other thread's read lock still holds it
    if (wait_until(forked, WEAVE_RWMUTEX_WRITE_LOCKED) != WEAVE_RWMUTEX_WRITE_LOCKED) code |= 8;  // revoking
    _exit(code);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Parent: both read locks are still there and release normally.
  CHECK(weave_rwmutex_runlock(&forked) == 0);
  other.release = true;
  threads.join();
  CHECK(other.runlock_result.load() == 0);
  weave_rwmutex_lock(&forked);
  CHECK((load_bits(forked) & ~kBias) == WEAVE_RWMUTEX_WRITE_LOCKED);
  CHECK(weave_rwmutex_unlock(&forked) == 0);
}

TEST_CASE("bias: a quick write keeps it on, and readers go back to their slots", "[bias]") {
  // The writer's wait for the table is one pass over the lock's stripe when
  // no reader is in it: the bias is not revoked, so the next reader takes
  // its slot again instead of counting itself in the word.
  using namespace bias;
  static weave_rwmutex_t kept;
  kept = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&kept));
  for (RWApi api : {inline_api(), exported_api(), slow_api()}) {
    api.lock(&kept);
    CHECK(load_bits(kept) == (kBias | WEAVE_RWMUTEX_WRITE_LOCKED));
    CHECK(api.unlock(&kept) == 0);
    CHECK(load_bits(kept) == kBias);
    weave_rwmutex_rlock(&kept);
    CHECK(load_bits(kept) == kBias);  // in the table, not counted
    CHECK(weave_rwmutex_runlock(&kept) == 0);
  }
}

TEST_CASE("bias: a reader racing a writer that holds the lock backs out of its slot and waits", "[bias]") {
  // The reader's slot CAS succeeds (the bias is on), its re-read of the word
  // sees write-locked: it empties the slot, spins, then parks behind the
  // writer, and gets in (through its slot again) once the writer leaves.
  using namespace bias;
  static weave_rwmutex_t raced;
  raced = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&raced));
  weave_rwmutex_lock(&raced);
  REQUIRE(load_bits(raced) == (kBias | WEAVE_RWMUTEX_WRITE_LOCKED));
  std::atomic<bool> reader_in{false};
  std::atomic<uintptr_t> bits_in_reader{1};
  Threads threads;
  threads.start([&] {
    weave_rwmutex_rlock(&raced);
    bits_in_reader = load_bits(raced);
    reader_in = true;
    weave_rwmutex_runlock(&raced);
  });
  // The reader parks (has-parked) after its spin.
  CHECK(wait_until(raced, kBias | WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED) ==
        (kBias | WEAVE_RWMUTEX_WRITE_LOCKED | WEAVE_RWMUTEX_HAS_PARKED));
  usleep(20 * 1000);
  CHECK_FALSE(reader_in.load());
  CHECK(weave_rwmutex_unlock(&raced) == 0);
  threads.join();
  CHECK(reader_in.load());
  CHECK((bits_in_reader.load() & WEAVE_RWMUTEX_WRITE_LOCKED) == 0);
  CHECK((load_bits(raced) & ~kBias) == 0);
}

// A timed writer takes the write bit with the bias on, then waits for the
// biased readers to leave their slots. When its time is up first it must give
// the write bit back with the bias on again (it may have turned it off while
// it slept): with the bit off and the write bit gone, the next writer would
// not look at the table and would run beside the reader still in its slot.
TEST_CASE("bias: a timed writer that gives up while a biased reader holds the lock leaves the bias on", "[bias]") {
  using namespace bias;
  static weave_rwmutex_t held;
  held = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&held));
  weave_rwmutex_rlock(&held);
  REQUIRE(load_bits(held) == kBias);  // in the table
  std::atomic<int> try_status{-1000}, timed_status{-1000}, reader_status{-1000};
  std::atomic<long long> waited_ms{-1};
  Threads threads;
  threads.start([&] {
    try_status = weave_rwmutex_lock_timed(&held, 0, WEAVE_LOCK_DONT_DETACH);
    auto start = Clock::now();
    timed_status = weave_rwmutex_lock_timed(&held, 60 * 1000 * 1000, WEAVE_LOCK_DETACH);
    waited_ms = ms_since(start);
  });
  threads.join();
  CHECK(try_status.load() == WEAVE_LOCK_FAILURE);
  CHECK(timed_status.load() == WEAVE_LOCK_FAILURE);
  CHECK(waited_ms.load() >= 59);
  CHECK(load_bits(held) == kBias);  // write bit given back, bias on
  // Another reader is not stranded, and a writer still waits for our slot.
  threads.start([&] {
    reader_status = weave_rwmutex_rlock_timed(&held, 0, WEAVE_LOCK_DONT_DETACH);
    if (reader_status.load() == WEAVE_LOCK_ACQUIRED) weave_rwmutex_runlock(&held);
  });
  threads.join();
  CHECK(reader_status.load() == WEAVE_LOCK_ACQUIRED);
  std::atomic<bool> writer_in{false};
  threads.start([&] {
    weave_rwmutex_lock(&held);
    writer_in = true;
    weave_rwmutex_unlock(&held);
  });
  usleep(30 * 1000);
  CHECK_FALSE(writer_in.load());
  CHECK(weave_rwmutex_runlock(&held) == 0);
  threads.join();
  CHECK(writer_in.load());
  CHECK((load_bits(held) & ~kBias) == 0);
}

namespace bias {
volatile sig_atomic_t usr2_seen = 0;
void on_usr2(int) { usr2_seen = usr2_seen + 1; }
}  // namespace bias

TEST_CASE("bias: a signal interrupts a timed writer waiting for a biased reader (WEAVE_LOCK_FAIL_IF_INTERRUPTED)", "[bias]") {
  using namespace bias;
  struct sigaction sa {}, old {};
  sa.sa_handler = on_usr2;
  sa.sa_flags = 0;  // no SA_RESTART, as CPython installs its handlers
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR2, &sa, &old) == 0);
  static weave_rwmutex_t interrupted;
  interrupted = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&interrupted));
  weave_rwmutex_rlock(&interrupted);
  REQUIRE(load_bits(interrupted) == kBias);
  struct Ctx {
    std::atomic<int> status{-1000};
  } ctx;
  pthread_t t;
  REQUIRE(pthread_create(&t, nullptr, [](void *p) -> void * {
    static_cast<Ctx *>(p)->status = weave_rwmutex_lock_timed(&interrupted, 10'000'000'000LL, WEAVE_LOCK_FAIL_IF_INTERRUPTED);
    return nullptr;
  }, &ctx) == 0);
  // The writer holds the write bit and, after its yields, turns the bias off
  // and sleeps: the word shows the write bit alone.
  CHECK(wait_until(interrupted, WEAVE_RWMUTEX_WRITE_LOCKED) == WEAVE_RWMUTEX_WRITE_LOCKED);
  usleep(10 * 1000);
  // A signal that lands between two of the writer's sleeps (while it looks
  // at the slots) interrupts nothing, as for any EINTR-based wait; a loaded
  // machine can put the thread there, so the signal is repeated until the
  // writer returns.
  auto start = Clock::now();
  for (int i = 0; i < 100 && ctx.status.load() == -1000; i++) {
    REQUIRE(pthread_kill(t, SIGUSR2) == 0);
    usleep(20 * 1000);
  }
  REQUIRE(pthread_join(t, nullptr) == 0);
  CHECK(ctx.status.load() == WEAVE_LOCK_INTR);
  CHECK(ms_since(start) < 2000);
  CHECK(load_bits(interrupted) == kBias);  // write bit given back, bias on again
  CHECK(weave_rwmutex_runlock(&interrupted) == 0);
  CHECK(usr2_seen >= 1);
  sigaction(SIGUSR2, &old, nullptr);
}

// Timed readers and writers that give up at random moments (before they
// park, while parked, a writer while it waits for biased readers), racing
// plain readers and a plain writer with the bias coming and going: nobody
// overlaps a writer, nobody is stranded (every thread finishes, and the lock
// is free at the end).
TEST_CASE("bias: timed acquires giving up at random race plain ones without overlap or stranding", "[bias]") {
  using namespace bias;
  static weave_rwmutex_t timed_race;
  timed_race = weave_rwmutex_t{0};
  REQUIRE(contend_until_biased(&timed_race));
  std::atomic<bool> stop{false};
  std::atomic<int> writers_in{0}, bad{0};
  std::atomic<uint64_t> timed_ok{0}, timed_failed{0}, plain{0};
  Threads threads;
  for (int i = 0; i < 5; i++) {
    threads.start([&, i] {
      uint32_t rng = 12345u + 7919u * (uint32_t)i;
      while (!stop.load(std::memory_order_relaxed)) {
        rng = rng * 1103515245u + 12345u;
        int64_t timeout = (int64_t)((rng >> 16) % 200) * 1000;  // 0-199 us
        bool write = (i == 0) || (i == 1 && ((rng >> 8) & 3) == 0);
        bool timed = i != 4;
        int rc = WEAVE_LOCK_ACQUIRED;
        if (write) {
          if (timed) {
            rc = weave_rwmutex_lock_timed(&timed_race, timeout, WEAVE_LOCK_DETACH);
          } else {
            weave_rwmutex_lock(&timed_race);
          }
        } else if (timed) {
          rc = weave_rwmutex_rlock_timed(&timed_race, timeout, WEAVE_LOCK_DONT_DETACH);
        } else {
          weave_rwmutex_rlock(&timed_race);
        }
        if (rc == WEAVE_LOCK_FAILURE) {
          timed_failed.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (rc != WEAVE_LOCK_ACQUIRED) {
          bad.fetch_add(1);
          continue;
        }
        (timed ? timed_ok : plain).fetch_add(1, std::memory_order_relaxed);
        if (write) {
          if (writers_in.fetch_add(1) != 0) bad.fetch_add(1);
          if ((rng & 7) == 0) usleep(20);
          writers_in.fetch_sub(1);
          if (weave_rwmutex_unlock(&timed_race) != 0) bad.fetch_add(1);
        } else {
          if (writers_in.load() != 0) bad.fetch_add(1);
          if ((rng & 15) == 0) {
            usleep(300);  // a long read now and then: writers revoke the bias and time out
            if (writers_in.load() != 0) bad.fetch_add(1);
          }
          if (weave_rwmutex_runlock(&timed_race) != 0) bad.fetch_add(1);
        }
      }
    });
  }
  auto t0 = Clock::now();
  while ((ms_since(t0) < 800 || timed_failed.load() < 10 || timed_ok.load() < 10) && ms_since(t0) < 15000) {
    usleep(10 * 1000);
  }
  stop = true;
  threads.join();  // a stranded thread hangs here (the CTest timeout reports it)
  CHECK(bad.load() == 0);
  CHECK(timed_failed.load() >= 10);
  CHECK(timed_ok.load() >= 10);
  CHECK(plain.load() > 0);
  CHECK((load_bits(timed_race) & ~kBias) == 0);
  weave_rwmutex_lock(&timed_race);
  CHECK(weave_rwmutex_unlock(&timed_race) == 0);
}
