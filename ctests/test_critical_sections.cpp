// Critical sections (ft_weave.h section 5). The first cases port CPython's
// Modules/_testinternalcapi/test_critical_sections.c (the ones that need no
// interpreter); PyDict objects become plain weave_mutex_t, and
// Py_BEGIN/END_ALLOW_THREADS becomes suspend_all/resume.
#include "test_util.hpp"
#include "weave_test.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ftw_test::last_error_has;
using ftw_test::native_thread;
using ftw_test::prime_last_error;
using ftw_test::wait_until;
using ftw_test::watched_thread;

namespace {

// prime_last_error without Catch2 assertions, for worker threads.
void prime_error_any_thread() { (void)weave_register_destructor(nullptr, nullptr); }

bool locked(weave_mutex_t *m) { return weave_mutex_is_locked(m) != 0; }

void lock_unlock_one(weave_mutex_t *m, int depth) {
  WEAVE_BEGIN_CRITICAL_SECTION(m);
  if (depth > 0) lock_unlock_one(m, depth - 1);
  WEAVE_END_CRITICAL_SECTION();
}

void lock_unlock_two(weave_mutex_t *a, weave_mutex_t *b, int depth) {
  WEAVE_BEGIN_CRITICAL_SECTION2(a, b);
  if (depth > 0) lock_unlock_two(a, b, depth - 1);
  WEAVE_END_CRITICAL_SECTION2();
}

// Runs fn on a thread and fails the test instead of hanging when it has not
// finished after `limit` (the thread is then left blocked; the process ends
// with the failure).
template <typename Fn>
bool finishes_within(std::chrono::milliseconds limit, Fn fn) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread([done, fn] {
    fn();
    done->store(true);
  }).detach();
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done->load()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST_CASE("basic: begin locks, end unlocks, two mutexes, the same mutex twice") {
  weave_mutex_t d1 = {0}, d2 = {0};
  WEAVE_BEGIN_CRITICAL_SECTION(&d1);
  CHECK(locked(&d1));
  CHECK_FALSE(locked(&d2));
  WEAVE_END_CRITICAL_SECTION();
  CHECK_FALSE(locked(&d1));

  WEAVE_BEGIN_CRITICAL_SECTION2(&d1, &d2);
  CHECK(locked(&d1));
  CHECK(locked(&d2));
  WEAVE_END_CRITICAL_SECTION2();
  CHECK_FALSE(locked(&d1));
  CHECK_FALSE(locked(&d2));

  // Passing the same mutex twice locks it once (and does not deadlock).
  WEAVE_BEGIN_CRITICAL_SECTION2(&d2, &d2);
  CHECK(mutex_state(d2) == WEAVE_MUTEX_LOCKED);
  WEAVE_END_CRITICAL_SECTION2();
  CHECK(mutex_state(d2) == 0);
}

TEST_CASE("nest: re-entering the innermost section's mutex, 10 deep, with 1 and 2 mutexes") {
  weave_mutex_t a = {0}, b = {0};
  WEAVE_BEGIN_CRITICAL_SECTION(&a);
  CHECK(locked(&a));
  lock_unlock_one(&a, 10);
  CHECK(locked(&a));
  WEAVE_END_CRITICAL_SECTION();
  CHECK_FALSE(locked(&a));

  WEAVE_BEGIN_CRITICAL_SECTION2(&b, &a);
  lock_unlock_two(&a, &b, 10);
  CHECK(locked(&a));
  CHECK(locked(&b));
  WEAVE_END_CRITICAL_SECTION2();
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
}

TEST_CASE("suspend_all releases every section, resume re-takes the innermost, outer ones resume on end") {
  weave_mutex_t a = {0}, b = {0};
  WEAVE_BEGIN_CRITICAL_SECTION(&a);
  CHECK(locked(&a));
  weave_critical_section_suspend_all();
  CHECK_FALSE(locked(&a));
  weave_critical_section_resume();
  CHECK(locked(&a));

  WEAVE_BEGIN_CRITICAL_SECTION(&b);
  weave_critical_section_suspend_all();
  CHECK_FALSE(locked(&a));
  CHECK_FALSE(locked(&b));
  weave_critical_section_resume();
  CHECK(locked(&b));
  CHECK_FALSE(locked(&a));  // the outer section stays suspended ...
  WEAVE_END_CRITICAL_SECTION();
  CHECK(locked(&a));        // ... until the inner one ends
  CHECK_FALSE(locked(&b));
  WEAVE_END_CRITICAL_SECTION();
  CHECK(mutex_state(a) == 0);
  // Resume with nothing suspended, suspend with no section: harmless.
  weave_critical_section_resume();
  weave_critical_section_suspend_all();
}

TEST_CASE("1-mutex re-acquisition pushes nothing and locks nothing") {
  weave_mutex_t a = {0};
  weave_critical_section_t cs1, cs2;
  weave_critical_section_begin(&cs1, &a);
  CHECK(locked(&a));
  weave_critical_section_begin(&cs2, &a);
  CHECK(cs2._cs_mutex == nullptr);
  CHECK(locked(&a));
  weave_critical_section_end(&cs2);
  CHECK(locked(&a));
  // cs1 is still the innermost: ending it works (a non-innermost end would be refused).
  weave_critical_section_end(&cs1);
  CHECK_FALSE(locked(&a));
}

TEST_CASE("2-mutex re-acquisition: either mutex of the innermost pair, or the pair itself") {
  weave_mutex_t a = {0}, b = {0};
  weave_critical_section2_t cs;
  weave_critical_section2_begin(&cs, &a, &b);
  CHECK(locked(&a));
  CHECK(locked(&b));

  weave_critical_section_t a_cs, b_cs;
  weave_critical_section_begin(&a_cs, &a);
  CHECK(a_cs._cs_mutex == nullptr);
  weave_critical_section_end(&a_cs);
  CHECK(locked(&a));
  weave_critical_section_begin(&b_cs, &b);
  CHECK(b_cs._cs_mutex == nullptr);
  weave_critical_section_end(&b_cs);
  CHECK(locked(&b));

  weave_critical_section2_t again;
  weave_critical_section2_begin(&again, &b, &a);
  CHECK(again._cs_base._cs_mutex == nullptr);
  weave_critical_section2_end(&again);
  CHECK(locked(&a));
  CHECK(locked(&b));

  weave_critical_section2_end(&cs);
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
}

TEST_CASE("two-mutex sections lock in address order whatever the argument order") {
  weave_mutex_t pair[2] = {{0}, {0}};
  // Both orders on two threads at once, many times: any order inversion would deadlock.
  std::atomic<bool> go{false};
  auto worker = [&](bool reversed) {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 20000; i++) {
      if (reversed) {
        WEAVE_BEGIN_CRITICAL_SECTION2(&pair[1], &pair[0]);
        WEAVE_END_CRITICAL_SECTION2();
      } else {
        WEAVE_BEGIN_CRITICAL_SECTION2(&pair[0], &pair[1]);
        WEAVE_END_CRITICAL_SECTION2();
      }
    }
  };
  REQUIRE(finishes_within(30s, [&] {
    std::thread t1(worker, false), t2(worker, true);
    go = true;
    t1.join();
    t2.join();
  }));
  CHECK(mutex_state(pair[0]) == 0);
  CHECK(mutex_state(pair[1]) == 0);
}

namespace {
// Catch2 assertions are not thread-safe: worker threads count failures here
// and the test thread checks the counts.
struct ThreadsData {
  weave_mutex_t obj1{}, obj2{}, obj3{};
  long counter = 0;  // protected by obj1
  std::atomic<int> failures{0};
};

void threads_worker(ThreadsData *d) {
  for (int i = 0; i < 200; i++) {
    WEAVE_BEGIN_CRITICAL_SECTION(&d->obj1);
    d->counter++;
    WEAVE_END_CRITICAL_SECTION();

    WEAVE_BEGIN_CRITICAL_SECTION(&d->obj2);
    lock_unlock_one(&d->obj1, 1);
    WEAVE_END_CRITICAL_SECTION();

    WEAVE_BEGIN_CRITICAL_SECTION2(&d->obj3, &d->obj1);
    lock_unlock_one(&d->obj2, 2);
    WEAVE_END_CRITICAL_SECTION2();

    WEAVE_BEGIN_CRITICAL_SECTION(&d->obj3);
    // Detach inside: a short real sleep in the parking lot with detach
    // suspends the section; the explicit pair does the same.
    uint8_t word = 0, expected = 0;
    if (weave_park(&word, &expected, 1, 20000, nullptr, 1) != WEAVE_PARK_TIMEOUT) d->failures++;
    if (!locked(&d->obj3)) d->failures++;  // resumed after the sleep
    weave_critical_section_suspend_all();
    weave_critical_section_resume();
    if (!locked(&d->obj3)) d->failures++;
    WEAVE_END_CRITICAL_SECTION();
  }
}
}  // namespace

TEST_CASE("4 threads x 200 iterations of mixed nested sections with detach inside") {
  ThreadsData data;
  REQUIRE(finishes_within(60s, [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; i++) threads.emplace_back(threads_worker, &data);
    for (auto &t : threads) t.join();
  }));
  CHECK(data.counter == 800);
  CHECK(data.failures.load() == 0);
  CHECK(mutex_state(data.obj1) == 0);
  CHECK(mutex_state(data.obj2) == 0);
  CHECK(mutex_state(data.obj3) == 0);
}

TEST_CASE("opposite orders on two threads: deadlock with plain mutexes, none with sections") {
  weave_mutex_t a = {0}, b = {0};
  // Each thread takes its first section, waits until the other holds its first,
  // then asks for the other's mutex. With weave_mutex_lock/unlock this is the
  // textbook deadlock; with sections the blocked thread suspends its outer
  // section, so the other can proceed.
  for (int round = 0; round < 20; round++) {
    std::atomic<int> holding{0}, failures{0};
    auto worker = [&](weave_mutex_t *first, weave_mutex_t *second) {
      WEAVE_BEGIN_CRITICAL_SECTION(first);
      holding.fetch_add(1);
      while (holding.load() < 2) std::this_thread::yield();
      WEAVE_BEGIN_CRITICAL_SECTION(second);
      if (!locked(second)) failures++;
      WEAVE_END_CRITICAL_SECTION();
      if (!locked(first)) failures++;  // resumed when the inner section ended
      WEAVE_END_CRITICAL_SECTION();
    };
    REQUIRE(finishes_within(30s, [&] {
      std::thread t1(worker, &a, &b), t2(worker, &b, &a);
      t1.join();
      t2.join();
    }));
    CHECK(failures.load() == 0);
    CHECK(mutex_state(a) == 0);
    CHECK(mutex_state(b) == 0);
  }
}

TEST_CASE("control: the same opposite orders with plain mutexes do deadlock (seen as mutual timeouts)") {
  weave_mutex_t a = {0}, b = {0};
  std::atomic<int> holding{0};
  std::atomic<int> got_second{0};
  auto worker = [&](weave_mutex_t *first, weave_mutex_t *second) {
    weave_mutex_lock(first);
    holding.fetch_add(1);
    while (holding.load() < 2) std::this_thread::yield();
    // Neither can get its second mutex while the other holds it: a real
    // deadlock, made visible by the timeout instead of hanging.
    if (weave_mutex_lock_timed(second, 100 * 1000 * 1000, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED) {
      got_second++;
      weave_mutex_unlock(second);
    }
    holding.fetch_add(1);
    while (holding.load() < 4) std::this_thread::yield();  // keep `first` until both gave up
    weave_mutex_unlock(first);
  };
  std::thread t1(worker, &a, &b), t2(worker, &b, &a);
  t1.join();
  t2.join();
  CHECK(got_second.load() == 0);
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
}

TEST_CASE("a plain weave_mutex_lock that parks suspends the caller's sections") {
  weave_mutex_t a = {0}, x = {0};
  weave_mutex_lock(&x);  // held by this (main) thread
  std::atomic<bool> in_section{false}, resumed_ok{false};
  std::thread t([&] {
    WEAVE_BEGIN_CRITICAL_SECTION(&a);
    in_section = true;
    weave_mutex_lock(&x);  // contended: parks with detach, suspending the section on a
    resumed_ok = locked(&a);
    weave_mutex_unlock(&x);
    WEAVE_END_CRITICAL_SECTION();
  });
  while (!in_section.load()) std::this_thread::yield();
  // While t is parked, a is released: we can take it (bounded wait).
  auto until = std::chrono::steady_clock::now() + 20s;
  int acquired = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (weave_mutex_lock_timed(&a, 10 * 1000 * 1000, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED) {
      acquired = 1;
      break;
    }
  }
  REQUIRE(acquired == 1);
  CHECK(weave_mutex_unlock(&a) == 0);
  CHECK(weave_mutex_unlock(&x) == 0);
  t.join();
  CHECK(resumed_ok.load());
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(x) == 0);
}

TEST_CASE("misuse: NULL pointers") {
  weave_mutex_t a = {0};
  weave_critical_section_t cs;
  weave_critical_section2_t cs2;
  weave_critical_section_begin(nullptr, &a);
  CHECK(std::string(weave_last_error()).find("NULL") != std::string::npos);
  weave_critical_section_begin(&cs, nullptr);
  weave_critical_section2_begin(&cs2, &a, nullptr);
  weave_critical_section_end(nullptr);
  weave_critical_section2_end(nullptr);
  CHECK(mutex_state(a) == 0);

  // A begin refused for a NULL mutex leaves its section harmless to end,
  // whatever the stack held before: here, bytes that look like a section
  // locked without per-thread state on a mutex someone else holds.
  weave_mutex_t other = {0};
  weave_mutex_lock(&other);
  cs._cs_prev = 3;
  cs._cs_mutex = &other;
  weave_critical_section_begin(&cs, nullptr);
  weave_critical_section_end(&cs);
  cs2._cs_base._cs_prev = 3;
  cs2._cs_base._cs_mutex = &other;
  cs2._cs_mutex2 = &other;
  weave_critical_section2_begin(&cs2, &a, nullptr);
  weave_critical_section2_end(&cs2);
  CHECK(mutex_state(a) == 0);
  CHECK(locked(&other));
  CHECK(weave_mutex_unlock(&other) == 0);
}

TEST_CASE("ending a section that is not the innermost ends it anyway with an error, and a second end changes nothing") {
  weave_mutex_t a = {0}, b = {0};
  weave_critical_section_t outer, inner;
  weave_critical_section_begin(&outer, &a);
  weave_critical_section_begin(&inner, &b);
  prime_last_error("weave_critical_section_end");
  weave_critical_section_end(&outer);  // out of order: it leaves the chain and releases a
  CHECK(last_error_has("weave_critical_section_end: not the innermost"));
  CHECK_FALSE(locked(&a));
  CHECK(locked(&b));
  prime_last_error("weave_critical_section_end");
  weave_critical_section_end(&inner);  // now the innermost, and the only one
  CHECK_FALSE(last_error_has("weave_critical_section_end"));
  CHECK(mutex_state(b) == 0);
  // A second end of either is refused and unlocks nothing (here a is held
  // for someone else; releasing it would break their hold).
  REQUIRE(weave_mutex_lock_timed(&a, 1000 * 1000 * 1000, WEAVE_LOCK_DONT_DETACH) == WEAVE_LOCK_ACQUIRED);
  weave_critical_section_end(&outer);
  CHECK(last_error_has("weave_critical_section_end: the section has already ended"));
  prime_last_error("weave_critical_section_end");
  weave_critical_section_end(&inner);
  CHECK(last_error_has("already ended"));
  CHECK(locked(&a));
  CHECK(weave_mutex_unlock(&a) == 0);
  // The chain is empty: a new section works and suspend/resume touch nothing else.
  WEAVE_BEGIN_CRITICAL_SECTION(&b);
  weave_critical_section_suspend_all();
  weave_critical_section_resume();
  CHECK(locked(&b));
  CHECK_FALSE(locked(&a));
  WEAVE_END_CRITICAL_SECTION();
  CHECK(mutex_state(b) == 0);
}

namespace {
// A thread that holds mutexes for the test until told to let go, and reports
// what its unlocks returned.
struct Holder {
  weave_mutex_t *m1 = nullptr, *m2 = nullptr;
  std::atomic<bool> holding{false}, release{false};
  int rc1 = -9, rc2 = -9;
};

void hold_until_released(std::shared_ptr<Holder> h) {
  weave_mutex_lock(h->m1);
  if (h->m2 != nullptr) weave_mutex_lock(h->m2);
  h->holding = true;
  while (!h->release.load()) std::this_thread::sleep_for(1ms);
  if (h->m2 != nullptr) h->rc2 = weave_mutex_unlock(h->m2);
  h->rc1 = weave_mutex_unlock(h->m1);
}
}  // namespace

TEST_CASE("ending a suspended section records an error and leaves another thread's hold alone") {
  weave_mutex_t m = {0};
  weave_critical_section_t c;
  weave_critical_section_begin(&c, &m);
  weave_critical_section_suspend_all();  // m released; this thread no longer holds it
  auto h = std::make_shared<Holder>();
  h->m1 = &m;
  watched_thread holder([h] { hold_until_released(h); });
  REQUIRE(wait_until([&] { return h->holding.load(); }));
  prime_last_error("weave_critical_section_end");
  weave_critical_section_end(&c);
  CHECK(last_error_has("weave_critical_section_end: the section is suspended"));
  CHECK(locked(&m));  // still the holder's
  h->release = true;
  REQUIRE(holder.join_within(10000));
  CHECK(h->rc1 == 0);
  CHECK(mutex_state(m) == 0);
  // The section left the chain: resume has nothing to re-take.
  weave_critical_section_resume();
  CHECK(mutex_state(m) == 0);
}

TEST_CASE("ending a suspended two-mutex section leaves another thread's holds alone") {
  weave_mutex_t m1 = {0}, m2 = {0};
  weave_critical_section2_t c;
  weave_critical_section2_begin(&c, &m2, &m1);
  weave_critical_section_suspend_all();
  auto h = std::make_shared<Holder>();
  h->m1 = &m1;
  h->m2 = &m2;
  watched_thread holder([h] { hold_until_released(h); });
  REQUIRE(wait_until([&] { return h->holding.load(); }));
  prime_last_error("weave_critical_section2_end");
  weave_critical_section2_end(&c);
  CHECK(last_error_has("weave_critical_section2_end: the section is suspended"));
  CHECK(locked(&m1));
  CHECK(locked(&m2));
  h->release = true;
  REQUIRE(holder.join_within(10000));
  CHECK(h->rc1 == 0);
  CHECK(h->rc2 == 0);
  weave_critical_section_resume();
  CHECK(mutex_state(m1) == 0);
  CHECK(mutex_state(m2) == 0);
}

TEST_CASE("ending a suspended outer section out of order: error, hold left alone, and the inner end does not re-take it") {
  auto h = std::make_shared<Holder>();
  auto a = std::make_shared<weave_mutex_t>(), b = std::make_shared<weave_mutex_t>();
  *a = weave_mutex_t{0};
  *b = weave_mutex_t{0};
  h->m1 = a.get();
  auto step = std::make_shared<std::atomic<int>>(0);
  auto errors = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<watched_thread> holder;
  watched_thread t([a, b, h, step, errors] {
    auto outer = std::make_shared<weave_critical_section_t>();
    auto inner = std::make_shared<weave_critical_section_t>();
    weave_critical_section_begin(outer.get(), a.get());
    weave_critical_section_begin(inner.get(), b.get());
    // Leave the outer section suspended, as a blocking call inside the inner
    // one would, and let the holder take a.
    weave_critical_section_suspend_all();
    weave_critical_section_resume();
    *step = 1;
    while (!h->holding.load()) std::this_thread::sleep_for(1ms);
    weave_critical_section_end(outer.get());
    *errors += !last_error_has("weave_critical_section_end: not the innermost");
    *errors += !weave_mutex_is_locked(a.get());
    // Ending the inner section must not try to resume the ended outer one
    // (that would wait for the holder's a).
    prime_error_any_thread();
    weave_critical_section_end(inner.get());
    *errors += last_error_has("weave_critical_section_end");
    *errors += weave_mutex_is_locked(b.get());
    *step = 2;
  });
  REQUIRE(wait_until([&] { return step->load() == 1; }));
  holder.reset(new watched_thread([h] { hold_until_released(h); }));
  REQUIRE(t.join_within(10000));
  CHECK(step->load() == 2);
  CHECK(errors->load() == 0);
  CHECK(locked(a.get()));
  h->release = true;
  REQUIRE(holder->join_within(10000));
  CHECK(h->rc1 == 0);
  CHECK(mutex_state(*a) == 0);
  CHECK(mutex_state(*b) == 0);
}

// ---------------------------------------------------------------------------
// Two-mutex sections take their pair in address order on every path,
// including a thread that has no per-thread state (past its thread-exit
// teardown, or out of memory), where the section is locked but not pushed.
// ---------------------------------------------------------------------------

namespace {
struct PairOrder {
  weave_mutex_t pair[2] = {{0}, {0}};  // pair[0] has the lower address
  std::atomic<int> step{0};
  std::string error_after_begin;
  std::atomic<int> second_end_changed{0};
  std::atomic<bool> may_end_again{false};
};

// Calls begin2 with the higher address first. While the lower one is held by
// the test, a thread that follows address order waits for it holding
// nothing; one that follows argument order holds the higher one meanwhile
// (two such threads with opposite argument orders deadlock).
void begin2_high_first(PairOrder *p) {
  weave_critical_section2_t cs;
  prime_error_any_thread();
  p->step = 1;
  weave_critical_section2_begin(&cs, &p->pair[1], &p->pair[0]);
  p->error_after_begin = weave_last_error();
  p->step = 2;
  weave_critical_section2_end(&cs);
  // A second end unlocks nothing, even with no chain to tell it the section
  // has ended (the test holds pair[0] meanwhile).
  p->step = 3;
  while (!p->may_end_again.load()) std::this_thread::sleep_for(1ms);
  weave_critical_section2_end(&cs);
  p->second_end_changed = !weave_mutex_is_locked(&p->pair[0]) || weave_mutex_is_locked(&p->pair[1]);
  p->step = 4;
}

void check_pair_order(const std::shared_ptr<PairOrder> &p) {
  REQUIRE(wait_until([&] { return p->step.load() == 1; }));
  // Wait until the thread is parked on pair[0], then look at pair[1].
  REQUIRE(wait_until([&] { return (mutex_state(p->pair[0]) & MUTEX_STATE_PARKED) != 0; }));
  CHECK_FALSE(locked(&p->pair[1]));  // address order: nothing held while waiting
  CHECK(weave_mutex_unlock(&p->pair[0]) == 0);
  REQUIRE(wait_until([&] { return p->step.load() == 3; }));
  CHECK(mutex_state(p->pair[0]) == 0);
  CHECK(mutex_state(p->pair[1]) == 0);
  weave_mutex_lock(&p->pair[0]);
  p->may_end_again = true;
  REQUIRE(wait_until([&] { return p->step.load() == 4; }));
  CHECK(p->second_end_changed.load() == 0);
  CHECK(weave_mutex_unlock(&p->pair[0]) == 0);
}
}  // namespace

TEST_CASE("two-mutex begin with per-thread state: address order (control)") {
  auto p = std::make_shared<PairOrder>();
  weave_mutex_lock(&p->pair[0]);
  watched_thread t([p] { begin2_high_first(p.get()); });
  check_pair_order(p);
  REQUIRE(t.join_within(10000));
  CHECK(p->error_after_begin.find("critical_section") == std::string::npos);
}

// Without per-thread state (a thread past its teardown): the main thread
// inside exit() in ctests/reliability/thread_exit_probe.c, test
// thread_exit:section2-after-teardown (a thread's own teardown now comes after
// its thread_local and pthread key destructors, so only exit() gets there).

// ---------------------------------------------------------------------------
// The uncontended begin and end run in the library's C part, through a
// thread-local pointer to the thread's chain that the C# part sets when it
// creates the thread's state and clears at its teardown; everything else
// goes to the C# part (src/native/critical_section.c). These cases cross
// between the two: sections pushed by one and suspended, resumed or ended by
// the other, a first call that creates the state, unlocks that find waiters
// parked, the two-mutex begin that holds its first mutex when the second is
// busy, sections begun in thread-exit destructors, and a fork child.
// ---------------------------------------------------------------------------

namespace {
// Checks a mixed chain on the calling thread: `outer` on a, begun by the
// caller, then b inside it; suspension and resumption see both, and the end
// of the inner section resumes the outer one. Returns 0 or the first failed
// step.
int nested_suspend_resume(weave_mutex_t *a, weave_mutex_t *b) {
  weave_critical_section_t inner, again;
  weave_critical_section_begin(&inner, b);
  if (!locked(b) || inner._cs_mutex != b) return 1;
  weave_critical_section_begin(&again, b);  // re-entry: nothing locked or pushed
  if (again._cs_mutex != nullptr) return 2;
  weave_critical_section_end(&again);
  if (!locked(b)) return 3;
  weave_critical_section_suspend_all();
  if (locked(a) || locked(b)) return 4;
  weave_critical_section_resume();  // the innermost only
  if (locked(a) || !locked(b)) return 5;
  weave_critical_section_end(&inner);  // unlocks b and resumes the outer section
  if (!locked(a) || locked(b)) return 6;
  return 0;
}
}  // namespace

TEST_CASE("a section begun as a thread's first call, before its per-thread state exists, and sections inside it") {
  struct State {
    weave_mutex_t a = {0}, b = {0};
    std::atomic<int> failed_step{-1};
    std::string error;
  };
  auto s = std::make_shared<State>();
  watched_thread t([s] {
    weave_critical_section_t outer;
    weave_critical_section_begin(&outer, &s->a);  // the thread's first library call
    int step = locked(&s->a) && outer._cs_mutex == &s->a ? nested_suspend_resume(&s->a, &s->b) : 100;
    weave_critical_section_end(&outer);
    if (step == 0 && locked(&s->a)) step = 101;
    s->error = weave_last_error();
    s->failed_step = step;
  });
  REQUIRE(t.join_within(10000));
  CHECK(s->failed_step.load() == 0);
  CHECK(s->error.find("critical_section") == std::string::npos);
  CHECK(mutex_state(s->a) == 0);
  CHECK(mutex_state(s->b) == 0);
}

TEST_CASE("ends whose unlock finds a parked waiter wake it: one mutex, and either mutex of a pair") {
  for (int which = 0; which < 3; which++) {
    CAPTURE(which);  // 0: one-mutex section; 1, 2: a pair, the waiter on its lower, higher mutex
    struct State {
      weave_mutex_t pair[2] = {{0}, {0}};  // pair[0] has the lower address
      std::atomic<int> got{0};
    };
    auto s = std::make_shared<State>();
    weave_mutex_t *contended = which == 2 ? &s->pair[1] : &s->pair[0];
    weave_critical_section_t cs;
    weave_critical_section2_t cs2;
    if (which == 0) {
      weave_critical_section_begin(&cs, &s->pair[0]);
    } else {
      weave_critical_section2_begin(&cs2, &s->pair[1], &s->pair[0]);
    }
    watched_thread w([s, contended] {
      WEAVE_BEGIN_CRITICAL_SECTION(contended);
      s->got = 1;
      WEAVE_END_CRITICAL_SECTION();
    });
    REQUIRE(wait_until([&] { return (mutex_state(*contended) & MUTEX_STATE_PARKED) != 0; }));
    prime_last_error("weave_critical_section");
    if (which == 0) {
      weave_critical_section_end(&cs);
    } else {
      weave_critical_section2_end(&cs2);
    }
    CHECK_FALSE(last_error_has("weave_critical_section"));
    REQUIRE(w.join_within(10000));
    CHECK(s->got.load() == 1);
    CHECK(mutex_state(s->pair[0]) == 0);
    CHECK(mutex_state(s->pair[1]) == 0);
    // Ended and popped: a second end reports it, and a new section on the
    // same mutex locks it (it is no re-entry of a stale chain head).
    if (which == 0) {
      weave_critical_section_end(&cs);
      CHECK(last_error_has("weave_critical_section_end: the section has already ended"));
    } else {
      weave_critical_section2_end(&cs2);
      CHECK(last_error_has("weave_critical_section2_end: the section has already ended"));
    }
    weave_critical_section_t again;
    weave_critical_section_begin(&again, contended);
    CHECK(again._cs_mutex == contended);
    CHECK(locked(contended));
    weave_critical_section_end(&again);
    CHECK(mutex_state(*contended) == 0);
  }
}

TEST_CASE("a two-mutex begin that takes the lower mutex and finds the higher busy holds the lower while it waits") {
  struct State {
    weave_mutex_t pair[2] = {{0}, {0}};  // pair[0] has the lower address
    weave_mutex_t outer = {0};
    std::atomic<int> step{0};
    std::atomic<int> both_held{0}, outer_resumed{0}, outer_released_at_end{0};
  };
  auto s = std::make_shared<State>();
  weave_mutex_lock(&s->pair[1]);  // the higher one, held by the test
  watched_thread t([s] {
    weave_critical_section_t outer;
    weave_critical_section_begin(&outer, &s->outer);  // creates the state
    weave_critical_section2_t cs;
    s->step = 1;
    weave_critical_section2_begin(&cs, &s->pair[1], &s->pair[0]);  // parks on pair[1]
    s->both_held = locked(&s->pair[0]) && locked(&s->pair[1]);
    s->step = 2;
    weave_critical_section2_end(&cs);  // the outer section was suspended: resumed here
    s->outer_resumed = locked(&s->outer);
    weave_critical_section_end(&outer);
    s->outer_released_at_end = !locked(&s->outer);
    s->step = 3;
  });
  REQUIRE(wait_until([&] { return s->step.load() == 1; }));
  REQUIRE(wait_until([&] { return (mutex_state(s->pair[1]) & MUTEX_STATE_PARKED) != 0; }));
  // Hold-first-wait-second, the one order anyone waits in for this pair;
  // the enclosing section is suspended while the thread sleeps. The parked
  // bit is set under the bucket lock, the suspension follows once the
  // waiter is queued (outside that lock): wait for it rather than race it.
  CHECK(locked(&s->pair[0]));
  CHECK(wait_until([&] { return !locked(&s->outer); }));
  CHECK(weave_mutex_unlock(&s->pair[1]) == 0);
  REQUIRE(t.join_within(10000));
  CHECK(s->step.load() == 3);
  CHECK(s->both_held.load() == 1);
  CHECK(s->outer_resumed.load() == 1);
  CHECK(s->outer_released_at_end.load() == 1);
  CHECK(mutex_state(s->pair[0]) == 0);
  CHECK(mutex_state(s->pair[1]) == 0);
  CHECK(mutex_state(s->outer) == 0);
}

namespace {
// Sections begun at a thread's exit: in a pthread key destructor (before the
// library tears the thread's state down) and in a thread-exit destructor
// (during that teardown). Each records 1 + the failed step, or 1 for success.
struct ExitSections {
  weave_mutex_t a = {0}, b = {0};
  std::atomic<int> in_key_destructor{0}, in_thread_exit_destructor{0};
  std::atomic<int> errors{0};
};
ExitSections *exit_sections;

int sections_at_exit() {
  weave_critical_section_t outer;
  weave_critical_section_begin(&outer, &exit_sections->a);
  int step = nested_suspend_resume(&exit_sections->a, &exit_sections->b);
  weave_critical_section2_t pair;
  weave_critical_section2_begin(&pair, &exit_sections->b, &exit_sections->a);  // a is held by outer: C# path
  if (step == 0 && !(locked(&exit_sections->a) && locked(&exit_sections->b))) step = 50;
  weave_critical_section2_end(&pair);
  weave_critical_section_end(&outer);
  if (step == 0 && (locked(&exit_sections->a) || locked(&exit_sections->b))) step = 51;
  if (std::string(weave_last_error()).find("critical_section") != std::string::npos) exit_sections->errors++;
  return 1 + step;
}
}  // namespace

TEST_CASE("sections begun in a pthread key destructor and in a thread-exit destructor") {
  static ExitSections state;
  exit_sections = &state;
  pthread_key_t key;
  REQUIRE(pthread_key_create(&key, [](void *) { exit_sections->in_key_destructor = sections_at_exit(); }) == 0);
  std::atomic<int> registered{-1};
  native_thread t([key, &registered] {
    static thread_local void *slot = nullptr;
    slot = &slot;
    registered = weave_register_destructor(&slot, [](void *) { exit_sections->in_thread_exit_destructor = sections_at_exit(); });
    pthread_setspecific(key, &slot);
  });
  t.join();
  REQUIRE(registered.load() == 0);
  CHECK(state.in_key_destructor.load() == 1);
  CHECK(state.in_thread_exit_destructor.load() == 1);
  CHECK(state.errors.load() == 0);
  CHECK(mutex_state(state.a) == 0);
  CHECK(mutex_state(state.b) == 0);
  pthread_key_delete(key);
}

TEST_CASE("fork inside sections: the child ends them, and uses sections on its thread and on a new one") {
  static weave_mutex_t a = {0}, b = {0}, c = {0};
  weave_critical_section_t outer, inner;
  weave_critical_section_begin(&outer, &a);
  weave_critical_section_begin(&inner, &b);
  pid_t pid = ftw_test::fork_quiesced();
  if (pid == 0) {
    // The child's only thread: its state, its chain and the held mutexes were
    // copied with it.
    prime_error_any_thread();
    int bad = 0;
    weave_critical_section2_t pair;
    weave_critical_section2_begin(&pair, &c, &b);  // b is the innermost's: C# path, parks on itself
    if (!locked(&b) || !locked(&c)) bad |= 1;
    weave_critical_section2_end(&pair);
    weave_critical_section_end(&inner);
    if (locked(&b) || locked(&c)) bad |= 2;
    if (nested_suspend_resume(&a, &b) != 0) bad |= 4;
    std::atomic<int> thread_ok{0};
    pthread_t t;
    if (pthread_create(
            &t, nullptr,
            [](void *p) -> void * {
              auto *ok = static_cast<std::atomic<int> *>(p);
              weave_critical_section_t cs;
              weave_critical_section_begin(&cs, &c);  // a new thread of the child: new state
              int good = locked(&c) ? 1 : 0;
              weave_critical_section_end(&cs);
              *ok = good && !locked(&c);
              return nullptr;
            },
            &thread_ok) != 0 ||
        pthread_join(t, nullptr) != 0 || thread_ok.load() != 1) {
      bad |= 8;
    }
    weave_critical_section_end(&outer);
    if (locked(&a)) bad |= 16;
    if (std::string(weave_last_error()).find("critical_section") != std::string::npos) {
      std::fprintf(stderr, "child: %s\n", weave_last_error());
      bad |= 32;
    }
    _exit(bad);
  }
  REQUIRE(pid > 0);
  weave_critical_section_end(&inner);
  weave_critical_section_end(&outer);
  CHECK(mutex_state(a) == 0);
  CHECK(mutex_state(b) == 0);
  CHECK(ftw_test::wait_child(pid) == 0);
}
