// Shared by every ctests suite: the Catch2 include that works with v2 (Debian)
// and v3 (vcpkg), and small helpers for running native threads.
#pragma once
#include <cerrno>
#include <signal.h>
#include <sys/wait.h>

#if defined(FT_WEAVE_CATCH2_V3)
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <ft_weave.h>

// weave_mutex_t's two bytes in the one-byte encoding the tests were written
// for: bit 0 _locked, bit 1 _parked (MUTEX_STATE_PARKED).
constexpr unsigned MUTEX_STATE_PARKED = 2;
inline unsigned mutex_state(const weave_mutex_t &m) {
  return unsigned(__atomic_load_n(&m._bytes[0], __ATOMIC_ACQUIRE)) |
         unsigned(__atomic_load_n(&m._bytes[1], __ATOMIC_ACQUIRE)) << 1;
}
inline void set_mutex_state(weave_mutex_t &m, unsigned v) {
  __atomic_store_n(&m._bytes[0], uint8_t(v & 1), __ATOMIC_RELEASE);
  __atomic_store_n(&m._bytes[1], uint8_t((v >> 1) & 1), __ATOMIC_RELEASE);
}

#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace ftw_test {

// Runs fn on a native pthread (not std::thread, so that the tests show plain
// C threads work) and joins it. pthread_join returns only after the thread's
// thread-exit destructors have run.
inline void run_pthread(std::function<void()> fn, bool use_pthread_exit = false) {
  struct Ctx {
    std::function<void()> fn;
    bool exit;
  } ctx{std::move(fn), use_pthread_exit};
  pthread_t t;
  int rc = pthread_create(
      &t, nullptr,
      [](void *p) -> void * {
        auto *c = static_cast<Ctx *>(p);
        c->fn();
        if (c->exit) {
          pthread_exit(nullptr);
        }
        return nullptr;
      },
      &ctx);
  REQUIRE(rc == 0);
  REQUIRE(pthread_join(t, nullptr) == 0);
}

// fork() for tests. Under AddressSanitizer (FT_WEAVE_SANITIZE) it first
// waits, for at most 5 s, until every other thread of the process has been
// asleep for 5 polls in a row: GCC 12's ASan does not lock its allocator
// around fork(), so a child forked while another thread (a test thread, or a
// .NET runtime thread that is just starting) is inside ASan's malloc hangs in
// its first allocation. glibc's malloc has its own fork handlers: without
// ASan this is plain fork().
inline bool other_threads_asleep() {
#if defined(__SANITIZE_ADDRESS__)
  long me = syscall(SYS_gettid);
  DIR *dir = opendir("/proc/self/task");
  if (dir == nullptr) return true;
  bool asleep = true;
  while (dirent *e = readdir(dir)) {
    if (e->d_name[0] == '.' || std::atol(e->d_name) == me) continue;
    char path[300], buf[512] = {0};
    std::snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    FILE *f = std::fopen(path, "r");
    if (f == nullptr) continue;  // exited meanwhile
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    const char *paren = std::strrchr(buf, ')');  // "tid (comm) S ..."
    if (paren != nullptr && paren[1] == ' ' && paren[2] != 'S') asleep = false;
  }
  closedir(dir);
  return asleep;
#else
  return true;
#endif
}

inline pid_t fork_quiesced() {
#if defined(__SANITIZE_ADDRESS__)
  timespec ms{0, 1000000};
  for (int polls = 0, quiet = 0; quiet < 5 && polls < 5000; ++polls) {
    quiet = other_threads_asleep() ? quiet + 1 : 0;
    nanosleep(&ms, nullptr);
  }
#endif
  return fork();
}

// GCC 12's AddressSanitizer does not lock its allocator around fork(): a
// child forked while another thread is inside ASan's malloc or free can hang
// in its first allocation (stack in ASan's SizeClassAllocator64; newer LLVM
// runtimes lock it). Fork tests whose threads allocate pause them around each
// fork under ASan, and keep them running through it otherwise.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPauseAllocatorsAroundFork = true;
#else
constexpr bool kPauseAllocatorsAroundFork = false;
#endif

// Waits for a child with a bound: a child that hangs is killed and reported
// as 250, one killed by signal n as 200 + n, a waitpid failure as 300, so a
// deadlock in the child fails the test instead of hanging CTest.
inline int wait_child(pid_t pid, int timeout_ms = 20000) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return 300;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > timeout_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 250;
    }
    timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 200 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace ftw_test
