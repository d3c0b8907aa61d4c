/*
 * ft_weave.hpp - C++17 RAII types over ft_weave.h's locks (header-only).
 *
 * Every type owns its C struct as a member, so it is zero-initialised (a
 * constexpr constructor: a namespace-scope object is constant-initialised,
 * safe to use from other static constructors), and neither copyable nor
 * movable (the C structs must not move while in use). The standard library's
 * guards and algorithms work with them:
 *
 *   type                       | named requirements       | use with
 *   ---------------------------+--------------------------+---------------------------
 *   ft_weave::mutex            | Lockable, TimedLockable  | lock_guard, unique_lock,
 *   ft_weave::recursive_mutex  | Lockable, TimedLockable  | scoped_lock, std::lock,
 *   ft_weave::raw_mutex        | Lockable                 | condition_variable_any
 *   ft_weave::rw_mutex         | Lockable, SharedLockable | + shared_lock
 *   ft_weave::seqlock          | BasicLockable (writers)  | lock_guard (writers)
 *
 * plus ft_weave::condition_variable (over ft_weave::mutex, std::chrono
 * timeouts), event, once_flag + call_once, critical_section and
 * critical_section2 (scoped PEP 703 sections), and an error category for
 * the library's WEAVE_E_* codes. docs/cpp.md is the guide.
 *
 * Errors. lock() cannot fail. unlock() is noexcept as BasicLockable requires
 * (the standard guards call it from destructors): unlocking a lock the caller
 * does not hold leaves the lock as it was and records the reason in
 * weave_last_error(), as the C function does. unlock_checked() is the same
 * operation, throwing std::system_error (category ft_weave::error_category(),
 * code WEAVE_E_NOT_OWNER, what() = weave_last_error()) instead. Waiting on a
 * condition_variable without holding the mutex throws the same way.
 * call_once propagates the callable's exception and leaves the flag unset,
 * so that a later caller runs its callable (as std::call_once); a call_once
 * from inside the callable on the same flag throws std::system_error with
 * WEAVE_E_DEADLOCK instead of hanging.
 *
 * Needs ft_weave.h and linking with -lft_weave (CMake: ft_weave::ft_weave).
 */
#ifndef FT_WEAVE_HPP
#define FT_WEAVE_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "ft_weave.hpp needs C++17 or later"
#endif

#include <ft_weave.h>

#include <chrono>
#include <condition_variable> /* std::cv_status */
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ft_weave {

/* ---- Errors -------------------------------------------------------------- */

/* The category of ft_weave's WEAVE_E_* codes (negative values of
 * weave_error_t); message() is weave_strerror(). */
class weave_error_category final : public std::error_category {
 public:
  const char *name() const noexcept override { return "ft_weave"; }
  std::string message(int code) const override { return weave_strerror(code); }
};

/* One object per program (an inline function's static is shared by every
 * translation unit), so error_code comparisons work across them. */
inline const std::error_category &error_category() noexcept {
  static const weave_error_category category;
  return category;
}

inline std::error_code make_error_code(weave_error_t code) noexcept {
  return std::error_code(static_cast<int>(code), error_category());
}

namespace detail {

/* Throws std::system_error for a negative library code, with the calling
 * thread's weave_last_error() message (or `what` if the library left none). */
[[noreturn]] inline void throw_error(int code, const char *what) {
  const char *detail = weave_last_error();
  throw std::system_error(code, error_category(), (detail != nullptr && detail[0] != '\0') ? detail : what);
}

/* A relative std::chrono duration as the library's int64_t nanoseconds:
 * <= 0 becomes 0 (one attempt, as try_lock), fractions round up (never
 * shorter than asked), durations beyond what int64_t nanoseconds hold
 * (about 292 years) become -1 (wait forever). */
template <class Rep, class Period>
inline int64_t timeout_ns(const std::chrono::duration<Rep, Period> &d) {
  using std::chrono::duration;
  using std::chrono::nanoseconds;
  if (d <= d.zero()) {
    return 0;
  }
  // Compared as long double seconds so that neither side overflows.
  const duration<long double> limit = nanoseconds::max();
  if (duration<long double>(d) >= limit) {
    return -1;
  }
  const nanoseconds ns = std::chrono::ceil<nanoseconds>(d);
  return ns.count() > 0 ? static_cast<int64_t>(ns.count()) : 1;
}

/* Runs attempt(timeout_ns) until it succeeds or Clock reaches `deadline`.
 * The library waits on the monotonic clock; for other clocks the remaining
 * time is measured again after each attempt (as the standard asks). */
template <class Clock, class Duration, class Attempt>
inline bool until(const std::chrono::time_point<Clock, Duration> &deadline, Attempt attempt) {
  for (;;) {
    const auto remaining = deadline - Clock::now();
    if (attempt(timeout_ns(remaining))) {
      return true;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
  }
}

}  // namespace detail

/* ---- Mutex ---------------------------------------------------------------
 *
 * weave_mutex_t: two bytes, inline uncontended lock and unlock, fairness
 * hand-off after 1 ms. lock() and the timed locks detach while parked
 * (WEAVE_LOCK_DETACH: the thread's CPython thread state, if any, is released
 * and its critical sections suspended while it sleeps). Like the C mutex, it
 * does not record its owner: unlock() by another thread than the locker is
 * allowed. */
class mutex {
 public:
  constexpr mutex() noexcept : m_{} {}
  mutex(const mutex &) = delete;
  mutex &operator=(const mutex &) = delete;

  void lock() noexcept { weave_mutex_lock(&m_); }
  bool try_lock() noexcept { return weave_mutex_trylock(&m_) == 1; }
  /* Noexcept; unlocking an unlocked mutex changes nothing (weave_last_error()
   * says so). */
  void unlock() noexcept { (void)weave_mutex_unlock(&m_); }
  /* As unlock(); throws std::system_error (WEAVE_E_NOT_OWNER) when the mutex
   * was not locked. */
  void unlock_checked() {
    const int rc = weave_mutex_unlock(&m_);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::mutex::unlock_checked: not locked");
    }
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period> &d) noexcept {
    return timed(detail::timeout_ns(d));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration> &t) {
    return detail::until(t, [this](int64_t ns) { return timed(ns); });
  }
  /* True if some thread holds it at the moment of the call. */
  bool is_locked() const noexcept { return weave_mutex_is_locked(&m_) == 1; }

  weave_mutex_t *native_handle() noexcept { return &m_; }

 private:
  bool timed(int64_t ns) noexcept { return weave_mutex_lock_timed(&m_, ns, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED; }
  weave_mutex_t m_;
};

/* ---- Recursive mutex ------------------------------------------------------
 *
 * weave_recursive_mutex_t: the owner may lock again; each lock needs an
 * unlock. try_lock by the owner succeeds (adds a level). */
class recursive_mutex {
 public:
  constexpr recursive_mutex() noexcept : m_{} {}
  recursive_mutex(const recursive_mutex &) = delete;
  recursive_mutex &operator=(const recursive_mutex &) = delete;

  void lock() noexcept { weave_recursive_mutex_lock(&m_); }
  bool try_lock() noexcept { return timed(0); }
  /* Noexcept; an unlock by a thread that does not own it changes nothing. */
  void unlock() noexcept { (void)weave_recursive_mutex_unlock(&m_); }
  /* As unlock(); throws std::system_error (WEAVE_E_NOT_OWNER) when the
   * calling thread does not own the mutex. */
  void unlock_checked() {
    const int rc = weave_recursive_mutex_unlock(&m_);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::recursive_mutex::unlock_checked: not the owner");
    }
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period> &d) noexcept {
    return timed(detail::timeout_ns(d));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration> &t) {
    return detail::until(t, [this](int64_t ns) { return timed(ns); });
  }
  bool is_locked_by_current_thread() const noexcept {
    return weave_recursive_mutex_is_locked_by_current_thread(&m_) == 1;
  }

  weave_recursive_mutex_t *native_handle() noexcept { return &m_; }

 private:
  bool timed(int64_t ns) noexcept {
    return weave_recursive_mutex_lock_timed(&m_, ns, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED;
  }
  weave_recursive_mutex_t m_;
};

/* ---- Raw mutex -------------------------------------------------------------
 *
 * weave_raw_mutex_t: a word lock that never uses the parking lot and never
 * detaches. The C API has no trylock; try_lock() is the inline lock's own
 * first step (one compare-and-swap of the unlocked word 0 to the locked word
 * 1, layout in ft_weave.h), so it fails whenever the mutex is held. No timed
 * lock: the raw mutex has none (a waiter sleeps until it is popped). */
class raw_mutex {
 public:
  constexpr raw_mutex() noexcept : m_{} {}
  raw_mutex(const raw_mutex &) = delete;
  raw_mutex &operator=(const raw_mutex &) = delete;

  void lock() noexcept { weave_raw_mutex_lock(&m_); }
  bool try_lock() noexcept {
    uintptr_t expected = 0;
    return __atomic_compare_exchange_n(&m_.v, &expected, static_cast<uintptr_t>(WEAVE_RAW_MUTEX_LOCKED), false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
  }
  void unlock() noexcept { (void)weave_raw_mutex_unlock(&m_); }
  void unlock_checked() {
    const int rc = weave_raw_mutex_unlock(&m_);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::raw_mutex::unlock_checked: not locked");
    }
  }

  weave_raw_mutex_t *native_handle() noexcept { return &m_; }

 private:
  weave_raw_mutex_t m_;
};

/* ---- RW mutex --------------------------------------------------------------
 *
 * weave_rwmutex_t: writer-preferring. lock()/unlock() are the write lock,
 * lock_shared()/unlock_shared() a read lock (std::shared_lock). SharedTimed-
 * Lockable: the try_ and timed forms are weave_rwmutex_lock_timed /
 * weave_rwmutex_rlock_timed (0: one attempt). try_lock_shared() fails while a
 * writer holds *or waits* (writer preference: new readers queue behind a
 * waiting writer). */
class rw_mutex {
 public:
  constexpr rw_mutex() noexcept : m_{} {}
  rw_mutex(const rw_mutex &) = delete;
  rw_mutex &operator=(const rw_mutex &) = delete;

  void lock() noexcept { weave_rwmutex_lock(&m_); }
  bool try_lock() noexcept { return timed(0); }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period> &d) noexcept {
    return timed(detail::timeout_ns(d));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration> &t) {
    return detail::until(t, [this](int64_t ns) { return timed(ns); });
  }
  void unlock() noexcept { (void)weave_rwmutex_unlock(&m_); }
  void unlock_checked() {
    const int rc = weave_rwmutex_unlock(&m_);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::rw_mutex::unlock_checked: not write-locked");
    }
  }

  void lock_shared() noexcept { weave_rwmutex_rlock(&m_); }
  bool try_lock_shared() noexcept { return timed_shared(0); }
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period> &d) noexcept {
    return timed_shared(detail::timeout_ns(d));
  }
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration> &t) {
    return detail::until(t, [this](int64_t ns) { return timed_shared(ns); });
  }
  void unlock_shared() noexcept { (void)weave_rwmutex_runlock(&m_); }
  void unlock_shared_checked() {
    const int rc = weave_rwmutex_runlock(&m_);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::rw_mutex::unlock_shared_checked: not read-locked");
    }
  }

  weave_rwmutex_t *native_handle() noexcept { return &m_; }

 private:
  bool timed(int64_t ns) noexcept { return weave_rwmutex_lock_timed(&m_, ns, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED; }
  bool timed_shared(int64_t ns) noexcept {
    return weave_rwmutex_rlock_timed(&m_, ns, WEAVE_LOCK_DETACH) == WEAVE_LOCK_ACQUIRED;
  }
  weave_rwmutex_t m_;
};

/* ---- Condition variable ----------------------------------------------------
 *
 * weave_cond_t over ft_weave::mutex, used as std::condition_variable is with
 * std::mutex: the caller holds the lock through a std::unique_lock<mutex>.
 * A wake may be spurious (use the predicate forms, or loop). notify_one()
 * and notify_all() may be called with or without the mutex held; waiters
 * are requeued onto a held mutex rather than woken to block on it
 * (ft_weave.h, weave_cond_signal).
 * (std::condition_variable_any works with every lock type of this header
 * too; this one is smaller and does not allocate.) */
class condition_variable {
 public:
  constexpr condition_variable() noexcept : c_{} {}
  condition_variable(const condition_variable &) = delete;
  condition_variable &operator=(const condition_variable &) = delete;

  void notify_one() noexcept { (void)weave_cond_signal(&c_); }
  void notify_all() noexcept { (void)weave_cond_broadcast(&c_); }

  /* Throws std::system_error (WEAVE_E_NOT_OWNER) when the lock does not
   * hold a locked mutex; the mutex is held again on return. */
  void wait(std::unique_lock<mutex> &lock) { (void)wait_ns(lock, -1); }
  template <class Predicate>
  void wait(std::unique_lock<mutex> &lock, Predicate pred) {
    while (!pred()) {
      wait(lock);
    }
  }

  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex> &lock, const std::chrono::duration<Rep, Period> &d) {
    const int64_t ns = detail::timeout_ns(d);
    if (ns < 0) {  // longer than int64_t nanoseconds hold: forever
      wait(lock);
      return std::cv_status::no_timeout;
    }
    return wait_until(lock, std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns));
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<mutex> &lock, const std::chrono::duration<Rep, Period> &d, Predicate pred) {
    const int64_t ns = detail::timeout_ns(d);
    if (ns < 0) {
      wait(lock, std::move(pred));
      return true;
    }
    return wait_until(lock, std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns), std::move(pred));
  }

  /* cv_status::timeout once `t` has passed, no_timeout when woken (maybe
   * spuriously) before. */
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<mutex> &lock, const std::chrono::time_point<Clock, Duration> &t) {
    const int64_t ns = detail::timeout_ns(t - Clock::now());
    if (ns == 0) {
      // Already past: the standard still releases and re-takes the lock.
      check(lock);
      return std::cv_status::timeout;
    }
    if (wait_ns(lock, ns) == 1) {
      return std::cv_status::no_timeout;
    }
    return Clock::now() >= t ? std::cv_status::timeout : std::cv_status::no_timeout;
  }
  /* pred()'s value at the end: false only when `t` passed with pred() false. */
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<mutex> &lock, const std::chrono::time_point<Clock, Duration> &t, Predicate pred) {
    while (!pred()) {
      if (wait_until(lock, t) == std::cv_status::timeout) {
        return pred();
      }
    }
    return true;
  }

  weave_cond_t *native_handle() noexcept { return &c_; }

 private:
  static void check(std::unique_lock<mutex> &lock) {
    if (!lock.owns_lock()) {
      throw std::system_error(static_cast<int>(WEAVE_E_NOT_OWNER), error_category(),
                              "ft_weave::condition_variable: the unique_lock does not own a mutex");
    }
  }
  int wait_ns(std::unique_lock<mutex> &lock, int64_t ns) {
    check(lock);
    const int rc = weave_cond_wait(&c_, lock.mutex()->native_handle(), ns);
    if (rc < 0) {
      detail::throw_error(rc, "ft_weave::condition_variable::wait failed");
    }
    return rc;
  }
  weave_cond_t c_;
};

/* ---- Event ------------------------------------------------------------------
 *
 * weave_event_t: one-shot; once set it stays set and every wait returns at
 * once. Waits detach while parked. */
class event {
 public:
  constexpr event() noexcept : e_{} {}
  event(const event &) = delete;
  event &operator=(const event &) = delete;

  void set() noexcept { weave_event_notify(&e_); }
  bool is_set() const noexcept { return weave_event_is_set(&e_) == 1; }
  void wait() noexcept { weave_event_wait(&e_); }
  /* True if set within `d`. */
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period> &d) noexcept {
    return weave_event_wait_timed(&e_, detail::timeout_ns(d), 1) == 1;
  }
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration> &t) {
    return detail::until(t, [this](int64_t ns) { return weave_event_wait_timed(&e_, ns, 1) == 1; });
  }

  weave_event_t *native_handle() noexcept { return &e_; }

 private:
  weave_event_t e_;
};

/* ---- Once ---------------------------------------------------------------------
 *
 * weave_once_t with std::call_once's rules: the first call runs its callable;
 * others wait for it. If the callable throws, the exception reaches that
 * caller, the flag stays unset, and the next (or a waiting) caller runs its
 * own callable. Once a callable returned, every call returns at once. */
class once_flag {
 public:
  constexpr once_flag() noexcept : o_{} {}
  once_flag(const once_flag &) = delete;
  once_flag &operator=(const once_flag &) = delete;

  /* True once a callable has returned normally. */
  bool is_done() const noexcept { return __atomic_load_n(&o_.v, __ATOMIC_ACQUIRE) == WEAVE_ONCE_DONE; }
  weave_once_t *native_handle() noexcept { return &o_; }

 private:
  weave_once_t o_;
};

namespace detail {
template <class F>
struct once_call {
  F *fn;
  std::exception_ptr error;
  // Catches everything: an exception must not cross the library's frames.
  static int run(void *arg) noexcept {
    auto *self = static_cast<once_call *>(arg);
    try {
      (*self->fn)();
      return 0;
    } catch (...) {
      self->error = std::current_exception();
      return -1;
    }
  }
};
}  // namespace detail

/* Throws what the callable threw; std::system_error with WEAVE_E_DEADLOCK
 * for a call on `flag` from inside its own callable; std::system_error with
 * WEAVE_E_NOMEM when the run could not be recorded (the callable did not
 * run). */
template <class Callable, class... Args>
void call_once(once_flag &flag, Callable &&f, Args &&...args) {
  if (flag.is_done()) {
    return;
  }
  auto bound = [&]() -> void { (void)std::invoke(std::forward<Callable>(f), std::forward<Args>(args)...); };
  detail::once_call<decltype(bound)> call{&bound, nullptr};
  const int rc = weave_once_call(flag.native_handle(), &detail::once_call<decltype(bound)>::run, &call);
  if (rc == 0) {
    return;
  }
  if (call.error) {
    std::rethrow_exception(call.error);
  }
  detail::throw_error(rc, "ft_weave::call_once failed");
}

/* ---- Critical sections -----------------------------------------------------------
 *
 * Scoped PEP 703 critical sections (ft_weave.h section 5): the constructor
 * begins, the destructor ends. While the thread blocks inside one, its
 * sections are suspended (their mutexes released), so sections taken in
 * opposite orders cannot deadlock. Must end in reverse order on the thread
 * that began them, which scoped objects do. */
class critical_section {
 public:
  explicit critical_section(mutex &m) noexcept { weave_critical_section_begin(&c_, m.native_handle()); }
  explicit critical_section(weave_mutex_t *m) noexcept { weave_critical_section_begin(&c_, m); }
  ~critical_section() { weave_critical_section_end(&c_); }
  critical_section(const critical_section &) = delete;
  critical_section &operator=(const critical_section &) = delete;

 private:
  weave_critical_section_t c_;
};

/* Two mutexes, locked in address order; the same mutex twice is locked once. */
class critical_section2 {
 public:
  critical_section2(mutex &a, mutex &b) noexcept {
    weave_critical_section2_begin(&c_, a.native_handle(), b.native_handle());
  }
  critical_section2(weave_mutex_t *a, weave_mutex_t *b) noexcept { weave_critical_section2_begin(&c_, a, b); }
  ~critical_section2() { weave_critical_section2_end(&c_); }
  critical_section2(const critical_section2 &) = delete;
  critical_section2 &operator=(const critical_section2 &) = delete;

 private:
  weave_critical_section2_t c_;
};

/* ---- Seqlock -------------------------------------------------------------------
 *
 * weave_seqlock_t. Writers: lock()/unlock() (BasicLockable, so
 * std::lock_guard<seqlock> works), or abandon() instead of unlock() for a
 * write that stored nothing. Readers: read(f) calls f() until it ran with no
 * write in between and returns its last result (f returns a value); f
 * must only copy (its
 * reads may be torn while a writer runs: use relaxed atomics or memcpy of
 * trivially copyable data). */
class seqlock {
 public:
  constexpr seqlock() noexcept : s_{} {}
  seqlock(const seqlock &) = delete;
  seqlock &operator=(const seqlock &) = delete;

  void lock() noexcept { weave_seqlock_lock_write(&s_); }
  void unlock() noexcept { weave_seqlock_unlock_write(&s_); }
  void abandon() noexcept { weave_seqlock_abandon_write(&s_); }

  uint32_t begin_read() noexcept { return weave_seqlock_begin_read(&s_); }
  bool end_read(uint32_t sequence) noexcept { return weave_seqlock_end_read(&s_, sequence) == 1; }
  template <class F>
  auto read(F &&f) -> decltype(f()) {
    for (;;) {
      const uint32_t sequence = begin_read();
      auto result = f();
      if (end_read(sequence)) {
        return result;
      }
    }
  }

  weave_seqlock_t *native_handle() noexcept { return &s_; }

 private:
  weave_seqlock_t s_;
};

}  // namespace ft_weave

#endif /* FT_WEAVE_HPP */
