/* rw_ceiling_bench: how far any reader-visible RW lock can get on lockbench's
 * read95 workload on this machine, measured rather than argued.
 *
 *   rw_ceiling_bench [run ms, default 300] [rounds, default 3] [threads, default 2]
 *
 * 1. The price of moving one cache line between two CPUs: two threads take
 *    turns incrementing one word (each waits for the other's increment), ns
 *    per hand-off.
 * 2. read95 (50 writes in 1,000 operations, two loads of a 4-word record per
 *    read, four stores per write, 10 units of work between operations, the
 *    record on the lock's cache line, as lockbench's rwlock scenario) with
 *    three locks, rounds interleaved:
 *    - "visible readers (ideal)": the best case of the design family of
 *      ft_weave's reader bias (BRAVO): every reader announces itself in a
 *      cache line of its own (one per thread, no hashing, no stripe), the
 *      writer sets its bit and then waits for each thread's line; pure
 *      spinning with the same backoff as ft_weave's waiters, no parking,
 *      nothing that could be slower than the design itself;
 *    - "counter (ideal)": readers count themselves in the lock word, as
 *      parking_lot, pthread_rwlock and std::shared_mutex do, pure spinning;
 *    - ft_weave's weave_rwmutex_t.
 *    The ratio of the first to the second is the most a visible-readers lock
 *    can gain over a counting one here; with more threads than CPUs the spin
 *    locks collapse (a preempted holder), which is why it runs 2 threads.
 * 3. The same with every thread pinned to one CPU: no line moves between
 *    cores, the figure a run gets when the scheduler happens to put the
 *    benchmark's threads on one CPU (docs/benchmarks.md, RW notes).
 */
#define _GNU_SOURCE
#include <ft_weave.h>

#include "bench_common.h"
#include "handoff.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

static inline void cpu_relax(int n) {
  for (int i = 0; i < n; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
  }
}

/* Backoff between looks: 1, 2, 4, then 8 pauses (as ft_weave's RW waiters);
 * after a few hundred looks (a holder that lost its CPU) the core is given
 * away, so that the spin locks also finish with more threads than CPUs. */
static inline void backoff(int k) {
  if (k > 256) {
    sched_yield();
  } else {
    cpu_relax(1 << (k < 3 ? k : 3));
  }
}

/* ---- the locks ------------------------------------------------------------- */

struct shared {
  _Alignas(128) _Atomic uint64_t word; /* the lock word (weave_rwmutex_t for ft_weave) */
  uint64_t data[4];                    /* on the lock's line, as in lockbench */
};
static struct shared *sh;
static int nthreads = 2;

/* Visible readers: one line per thread. */
static struct {
  _Alignas(128) _Atomic uint64_t reading;
} reader_lines[MAX_THREADS];

static void visible_rlock(int me) {
  for (int k = 0;; k++) {
    if (atomic_load_explicit(&sh->word, memory_order_relaxed) == 0) {
      /* seq_cst store then seq_cst load, against the writer's CAS then its
       * loads of the reader lines (Dekker): one of the two sees the other. */
      atomic_store(&reader_lines[me].reading, 1);
      if (atomic_load(&sh->word) == 0) {
        return;
      }
      atomic_store_explicit(&reader_lines[me].reading, 0, memory_order_release);
    }
    backoff(k);
  }
}

static void visible_runlock(int me) { atomic_store_explicit(&reader_lines[me].reading, 0, memory_order_release); }

static void visible_lock(void) {
  for (int k = 0;; k++) {
    uint64_t free_word = 0;
    if (atomic_compare_exchange_strong(&sh->word, &free_word, 1)) {
      break;
    }
    backoff(k);
  }
  for (int i = 0; i < nthreads; i++) {
    for (int k = 0; atomic_load(&reader_lines[i].reading) != 0; k++) {
      backoff(k);
    }
  }
}

static void visible_unlock(void) { atomic_store_explicit(&sh->word, 0, memory_order_release); }

/* Counter: bit 0 the writer, the readers counted from bit 1. */
static void counter_rlock(void) {
  for (int k = 0;; k++) {
    uint64_t w = atomic_load_explicit(&sh->word, memory_order_relaxed);
    if ((w & 1) == 0 &&
        atomic_compare_exchange_weak_explicit(&sh->word, &w, w + 2, memory_order_acquire, memory_order_relaxed)) {
      return;
    }
    backoff(k);
  }
}

static void counter_runlock(void) { atomic_fetch_sub_explicit(&sh->word, 2, memory_order_release); }

static void counter_lock(void) {
  for (int k = 0;; k++) {
    uint64_t free_word = 0;
    if (atomic_compare_exchange_weak_explicit(&sh->word, &free_word, 1, memory_order_acquire,
                                              memory_order_relaxed)) {
      return;
    }
    backoff(k);
  }
}

static void counter_unlock(void) { atomic_store_explicit(&sh->word, 0, memory_order_release); }

enum lock_kind { VISIBLE, COUNTER, WEAVE, KINDS };
static const char *const kind_names[KINDS] = {"visible readers (ideal)", "counter (ideal)", "ft_weave"};

/* ---- the workload ---------------------------------------------------------- */

static enum lock_kind kind;

/* The lock or read lock of `kind`; a switch rather than function pointers so
 * that every lock's fast path is inlined into the loop, as in its own code. */
static inline void lock_as(bool write, int me) {
  weave_rwmutex_t *rw = (weave_rwmutex_t *)&sh->word;
  switch (kind) {
    case VISIBLE: write ? visible_lock() : visible_rlock(me); break;
    case COUNTER: write ? counter_lock() : counter_rlock(); break;
    default: write ? weave_rwmutex_lock(rw) : weave_rwmutex_rlock(rw); break;
  }
}

static inline void unlock_as(bool write, int me) {
  weave_rwmutex_t *rw = (weave_rwmutex_t *)&sh->word;
  switch (kind) {
    case VISIBLE: write ? visible_unlock() : visible_runlock(me); break;
    case COUNTER: write ? counter_unlock() : counter_runlock(); break;
    default: write ? (void)weave_rwmutex_unlock(rw) : (void)weave_rwmutex_runlock(rw); break;
  }
}
static atomic_bool stop;
static atomic_int torn;
static bool pin_one_cpu;
static uint64_t counts[MAX_THREADS];

static uint32_t work(uint32_t x, int units) {
  for (int i = 0; i < units; i++) {
    x = x * 1664525u + 1013904223u;
    __asm__ volatile("" : "+r"(x));
  }
  return x;
}

static void *rw_thread(void *arg) {
  int me = (int)(intptr_t)arg;
  if (pin_one_cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  }
  uint32_t rng = (uint32_t)me * 7919u + 1u;
  uint64_t n = 0, sum = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    rng = rng * 1103515245u + 12345u;
    if ((rng >> 16) % 1000 < 50) {
      lock_as(true, me);
      for (int i = 0; i < 4; i++) {
        sh->data[i]++;
      }
      unlock_as(true, me);
    } else {
      lock_as(false, me);
      uint64_t a = sh->data[0], b = sh->data[3];
      unlock_as(false, me);
      if (a != b) {
        atomic_fetch_add(&torn, 1); /* a writer ran beside a reader */
      }
      sum += a;
    }
    rng = work(rng, 10);
    n++;
  }
  __asm__ volatile("" ::"r"(sum));
  counts[me] = n;
  return NULL;
}

/* One timed run; returns M ops/s and the fewest/most operations of a thread. */
static double run_once(enum lock_kind k, int run_ms, double *fairness) {
  sh = aligned_alloc(128, sizeof *sh);
  if (sh == NULL) {
    perror("aligned_alloc");
    exit(2);
  }
  memset(sh, 0, sizeof *sh);
  kind = k;
  atomic_store(&stop, false);
  pthread_t threads[MAX_THREADS];
  int64_t t0 = ftw_bench_now_ns();
  for (int i = 0; i < nthreads; i++) {
    pthread_create(&threads[i], NULL, rw_thread, (void *)(intptr_t)i);
  }
  usleep((useconds_t)run_ms * 1000);
  atomic_store(&stop, true);
  for (int i = 0; i < nthreads; i++) {
    pthread_join(threads[i], NULL);
  }
  double secs = (double)(ftw_bench_now_ns() - t0) / 1e9;
  uint64_t total = 0, fewest = UINT64_MAX, most = 0;
  for (int i = 0; i < nthreads; i++) {
    total += counts[i];
    fewest = counts[i] < fewest ? counts[i] : fewest;
    most = counts[i] > most ? counts[i] : most;
  }
  *fairness = most ? (double)fewest / (double)most : 0;
  free(sh);
  return (double)total / secs / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void table(int run_ms, int rounds) {
  double ops[KINDS][64], fair[KINDS][64];
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < KINDS; k++) { /* interleaved: drift hits every lock alike */
      ops[k][r] = run_once((enum lock_kind)k, run_ms, &fair[k][r]);
    }
  }
  double median[KINDS], lowest[KINDS], highest[KINDS], worst_fair[KINDS];
  for (int k = 0; k < KINDS; k++) {
    double sorted[64];
    memcpy(sorted, ops[k], sizeof(double) * (size_t)rounds);
    qsort(sorted, (size_t)rounds, sizeof(double), cmp_double);
    median[k] = sorted[rounds / 2];
    lowest[k] = sorted[0];
    highest[k] = sorted[rounds - 1];
    worst_fair[k] = 1;
    for (int r = 0; r < rounds; r++) {
      worst_fair[k] = fair[k][r] < worst_fair[k] ? fair[k][r] : worst_fair[k];
    }
  }
  for (int k = 0; k < KINDS; k++) {
    printf("  %-24s %7.1f M ops/s (%.1f-%.1f)  fewest/most per thread >= %.2f", kind_names[k], median[k], lowest[k],
           highest[k], worst_fair[k]);
    if (k != COUNTER && median[COUNTER] > 0) {
      printf("  %.2fx counter", median[k] / median[COUNTER]);
    }
    printf("\n");
  }
}

int main(int argc, char **argv) {
  int run_ms = argc > 1 ? atoi(argv[1]) : 300;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  nthreads = argc > 3 ? atoi(argv[3]) : 2;
  if (run_ms < 1 || rounds < 1 || rounds > 64 || nthreads < 1 || nthreads > MAX_THREADS) {
    fprintf(stderr, "usage: rw_ceiling_bench [run ms >= 1] [rounds 1-64] [threads 1-%d]\n", MAX_THREADS);
    return 2;
  }
  /* A smoke run measures few hand-offs. */
  printf("cache line hand-off between two threads: %.0f ns\n", ftw_handoff_ns(run_ms < 100 ? 2000 : 200000));
  printf("read95, %d threads, %d ms per run, median of %d interleaved rounds:\n", nthreads, run_ms, rounds);
  table(run_ms, rounds);
  pin_one_cpu = true;
  printf("the same, every thread pinned to CPU 0:\n");
  table(run_ms, rounds);
  int bad = atomic_load(&torn);
  if (bad != 0) {
    fprintf(stderr, "rw_ceiling_bench: %d torn reads\n", bad);
    return 1;
  }
  return 0;
}
