/* Uncontended cost of a critical section, from C (docs/critical_sections.md,
 * "Cost"): ns per iteration of
 *
 *   section    WEAVE_BEGIN_CRITICAL_SECTION(&a); counter++; END
 *   section2   WEAVE_BEGIN_CRITICAL_SECTION2(&a, &b); counter++; END2
 *   re-entry   the same as `section` inside a section that holds a
 *   mutex      weave_mutex_lock(&a); counter++; weave_mutex_unlock(&a)
 *              (the two atomic operations every row above also does)
 *
 * on one thread whose per-thread state exists (its first section creates it,
 * before timing). Each row is the median of 7 runs of N iterations. Exits
 * non-zero if the counter is wrong or a mutex is left locked. Under
 * `valgrind --tool=callgrind` the library's functions give instructions per
 * call (CTest's bench_section_instructions uses that, with one row).
 *
 *   section_bench [N, default 20000000] [ROW: only that row]
 */
#include <ft_weave.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static weave_mutex_t a, b;
static volatile long counter;

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* noinline: each row's loop calls a function of its own. */
__attribute__((noinline)) static void one(void) {
  WEAVE_BEGIN_CRITICAL_SECTION(&a);
  counter++;
  WEAVE_END_CRITICAL_SECTION();
}

__attribute__((noinline)) static void two(void) {
  WEAVE_BEGIN_CRITICAL_SECTION2(&a, &b);
  counter++;
  WEAVE_END_CRITICAL_SECTION2();
}

__attribute__((noinline)) static void reentry(void) {
  WEAVE_BEGIN_CRITICAL_SECTION(&a); /* the enclosing section holds a */
  counter += 1;
  WEAVE_END_CRITICAL_SECTION();
}

__attribute__((noinline)) static void mutex(void) {
  weave_mutex_lock(&a);
  counter++;
  weave_mutex_unlock(&a);
}

static double run(void (*fn)(void), long n, int enclose) {
  double t0, t1;
  weave_critical_section_t outer;
  if (enclose) {
    weave_critical_section_begin(&outer, &a);
  }
  t0 = now_ns();
  for (long i = 0; i < n; i++) {
    fn();
  }
  t1 = now_ns();
  if (enclose) {
    weave_critical_section_end(&outer);
  }
  return (t1 - t0) / (double)n;
}

static int cmp(const void *x, const void *y) {
  double d = *(const double *)x - *(const double *)y;
  return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 20000000;
  struct {
    const char *name;
    void (*fn)(void);
    int enclose;
  } rows[] = {{"section", one, 0}, {"section2", two, 0}, {"re-entry", reentry, 1}, {"mutex", mutex, 0}};
  const char *only = argc > 2 ? argv[2] : NULL;
  long rows_run = 0;
  if (n <= 0) {
    fprintf(stderr, "usage: section_bench [N > 0] [section|section2|re-entry|mutex]\n");
    return 2;
  }
  one(); /* creates the thread's per-thread state */
  counter = 0;
  printf("%-10s %10s\n", "row", "ns/iter");
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    double t[RUNS];
    if (only != NULL && strcmp(only, rows[r].name) != 0) {
      continue;
    }
    rows_run++;
    for (int k = 0; k < RUNS; k++) {
      t[k] = run(rows[r].fn, n, rows[r].enclose);
    }
    qsort(t, RUNS, sizeof t[0], cmp);
    printf("%-10s %10.1f\n", rows[r].name, t[RUNS / 2]);
  }
  if (rows_run == 0) {
    fprintf(stderr, "section_bench: no row named %s\n", only);
    return 2;
  }
  long expected = rows_run * RUNS * n;
  if (counter != expected || weave_mutex_is_locked(&a) || weave_mutex_is_locked(&b)) {
    fprintf(stderr, "section_bench: counter %ld, expected %ld; a %s, b %s\n", (long)counter, expected,
            weave_mutex_is_locked(&a) ? "locked" : "free", weave_mutex_is_locked(&b) ? "locked" : "free");
    return 1;
  }
  return 0;
}
