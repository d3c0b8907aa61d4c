// ft_weave.h section 1: versions, error codes, messages and thread ids.
#include "weave_test.hpp"

#include <pthread.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <vector>

TEST_CASE("the library's version matches the header's") {
  CHECK(std::string(weave_version()) == FT_WEAVE_VERSION_STRING);
  CHECK(weave_abi_version() == FT_WEAVE_ABI_VERSION);
  std::string expected = std::to_string(FT_WEAVE_VERSION_MAJOR) + "." +
                         std::to_string(FT_WEAVE_VERSION_MINOR) + "." +
                         std::to_string(FT_WEAVE_VERSION_PATCH);
  CHECK(expected == FT_WEAVE_VERSION_STRING);
}

TEST_CASE("error codes have the contract's values and distinct names") {
  CHECK(WEAVE_E_INVALID == -101);
  CHECK(WEAVE_E_NOT_OWNER == -102);
  CHECK(WEAVE_E_NOMEM == -103);
  CHECK(WEAVE_E_DISABLED == -104);
  CHECK(WEAVE_E_MISMATCH == -105);
  CHECK(WEAVE_E_STATE == -106);
  CHECK(WEAVE_E_DEADLOCK == -107);
  const int codes[] = {WEAVE_E_INVALID, WEAVE_E_NOT_OWNER, WEAVE_E_NOMEM, WEAVE_E_DISABLED,
                       WEAVE_E_MISMATCH, WEAVE_E_STATE, WEAVE_E_DEADLOCK};
  const char *names[] = {"WEAVE_E_INVALID", "WEAVE_E_NOT_OWNER", "WEAVE_E_NOMEM", "WEAVE_E_DISABLED",
                         "WEAVE_E_MISMATCH", "WEAVE_E_STATE", "WEAVE_E_DEADLOCK"};
  std::set<std::string> seen;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *text = weave_strerror(codes[i]);
    REQUIRE(text != nullptr);
    CHECK(std::string(text).rfind(names[i], 0) == 0);
    seen.insert(text);
  }
  CHECK(seen.size() == 7);
  CHECK(std::string(weave_strerror(0)) == "success");
  CHECK(std::string(weave_strerror(12345)) == "unknown ft_weave error code");
  CHECK(std::string(weave_strerror(-1)) == "unknown ft_weave error code");
}

TEST_CASE("weave_last_error is never NULL and is per thread") {
  ftw_test::run_pthread([] {
    const char *fresh = weave_last_error();
    REQUIRE(fresh != nullptr);
    CHECK(std::string(fresh).empty());
  });
  REQUIRE(weave_register_destructor(nullptr, nullptr) == WEAVE_E_INVALID);
  std::string mine = weave_last_error();
  CHECK_FALSE(mine.empty());
  // Another thread's error does not overwrite this thread's message.
  ftw_test::run_pthread([] {
    void *v = nullptr;
    REQUIRE(weave_register_destructor(&v, nullptr) == WEAVE_E_INVALID);
    CHECK(std::string(weave_last_error()).find("destructor is NULL") != std::string::npos);
  });
  CHECK(std::string(weave_last_error()) == mine);
  // Success does not clear it (errno semantics).
  void *v = nullptr;
  REQUIRE(weave_unregister_destructor(&v) == 0);
  CHECK(std::string(weave_last_error()) == mine);
}

TEST_CASE("weave_thread_id is non-zero, stable per thread, unique among live threads") {
  uint64_t main_id = weave_thread_id();
  CHECK(main_id != 0);
  CHECK(weave_thread_id() == main_id);

  constexpr int kThreads = 8;
  static std::atomic<int> arrived{0};
  static std::atomic<bool> release{false};
  static uint64_t ids[kThreads];
  arrived = 0;
  release = false;
  std::vector<pthread_t> threads(kThreads);
  for (int i = 0; i < kThreads; i++) {
    REQUIRE(pthread_create(&threads[i], nullptr, [](void *arg) -> void * {
      auto slot = static_cast<uint64_t *>(arg);
      *slot = weave_thread_id();
      arrived.fetch_add(1);
      // Stay alive until every thread has its id: ids are unique among *live* threads.
      while (!release.load()) sched_yield();
      return nullptr;
    }, &ids[i]) == 0);
  }
  while (arrived.load() != kThreads) sched_yield();
  std::set<uint64_t> unique(ids, ids + kThreads);
  unique.insert(main_id);
  CHECK(unique.size() == kThreads + 1);
  CHECK(unique.count(0) == 0);
  release = true;
  for (auto &t : threads) REQUIRE(pthread_join(t, nullptr) == 0);
}

// Issue 11, finding 18: the id was pthread_self(), which glibc gives to the
// next thread once one has exited (it reuses the descriptor at the top of a
// cached stack), so an exited thread's id went to a stranger.
TEST_CASE("weave_thread_id is never reused: threads that get the same pthread_t get different ids") {
  constexpr int kThreads = 200;
  struct Seen {
    pthread_t self;
    uint64_t id;
  };
  std::vector<Seen> seen(kThreads);
  for (int i = 0; i < kThreads; i++) {
    pthread_t t;
    REQUIRE(pthread_create(&t, nullptr, [](void *arg) -> void * {
      auto *s = static_cast<Seen *>(arg);
      s->self = pthread_self();
      s->id = weave_thread_id();
      return nullptr;
    }, &seen[i]) == 0);
    REQUIRE(pthread_join(t, nullptr) == 0);  // one at a time: the next may reuse its descriptor
  }
  std::set<uint64_t> ids;
  int same_pthread_t = 0;
  for (int i = 0; i < kThreads; i++) {
    ids.insert(seen[i].id);
    if (i > 0 && pthread_equal(seen[i].self, seen[i - 1].self)) same_pthread_t++;
  }
  INFO(same_pthread_t << " threads had the pthread_t of the thread before them");
  REQUIRE(same_pthread_t > 0);  // the situation under test did occur
  CHECK(ids.size() == size_t(kThreads));
  CHECK(ids.count(0) == 0);
  CHECK(ids.count(weave_thread_id()) == 0);
}

// The id inside the thread's own teardown: test_thread_id_teardown.c (a
// plain program, so that its pthread key is created before the library's
// runtime starts in the process).
