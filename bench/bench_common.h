/* Pieces the C benchmarks share with lockbench's loops (lockbench.cpp has the
 * C++ originals): the monotonic clock in nanoseconds, and lockbench's unit of
 * work. Header-only, so that same_source_bench can be built against another
 * build's library with nothing of this build's but this file. */
#ifndef FTW_BENCH_COMMON_H
#define FTW_BENCH_COMMON_H

#include <stdint.h>
#include <time.h>

static inline int64_t ftw_bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* lockbench's unit of work: one dependent multiply-add (its LCG step) the
 * compiler cannot fold. */
static inline uint32_t ftw_bench_work(uint32_t x, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    __asm__ volatile("" : "+r"(x));
  }
  return x;
}

#endif
