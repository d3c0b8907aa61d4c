/* Checks for the C programs that embed CPython (ctests/python/). Usable from
 * any thread: a failed check prints where and counts a failure; main() ends
 * with embed_result(). alarm() bounds every program. */
#ifndef FTW_EMBED_CHECK_H
#define FTW_EMBED_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int embed_failures;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
      __atomic_fetch_add(&embed_failures, 1, __ATOMIC_RELAXED);                       \
    }                                                                                 \
  } while (0)

/* CHECK, then leave the calling function with `ret` when it failed. */
#define REQUIRE(cond, ret)                                                            \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);  \
      __atomic_fetch_add(&embed_failures, 1, __ATOMIC_RELAXED);                       \
      return ret;                                                                     \
    }                                                                                 \
  } while (0)

static inline double embed_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int embed_result(const char *name) {
  int failures = __atomic_load_n(&embed_failures, __ATOMIC_RELAXED);
  if (failures != 0) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

#endif
