/* same_source_bench: lockbench's contended and read95 loops for ft_weave
 * alone, in one small C file that builds against any ft_weave header and
 * library, so that a before/after comparison runs the *same* harness source
 * against two builds of the lock.
 *
 *   same_source_bench [--smoke] [--out FILE] [--label TEXT]
 *
 * Why: bench/previous.py alternates this build's lockbench with a previous
 * build's, and those two binaries differ in more than the lock: lockbench.cpp
 * itself changed between the builds, so its hot loops sit at other addresses
 * in a differently laid-out binary. On the `small` workload (where the work
 * outside the lock nearly fills both CPUs) that alone moves throughput by
 * 10-15% (docs/benchmarks.md, issue-13 notes). This file uses only the API
 * both builds share (weave_mutex_t and weave_rwmutex_t's inline lock and
 * unlock), so CMake compiles it once against this build and, when
 * FT_WEAVE_BENCH_PREVIOUS names a previous build tree, once against that
 * build's header and library; previous.py alternates the pair.
 *
 * Workloads and layout are lockbench's: `tiny` 1 unit of work inside the lock
 * and 1 outside, `small` 10 and 50; read95 50 writes per 1,000 operations
 * with 10 units between operations, the lock and the data in one 128-byte
 * aligned block. Fixed-duration runs (300 ms, 3 repetitions, median); the
 * main thread sleeps through each run, so the process always has a second
 * thread alive (glibc's single-thread shortcuts never apply).
 *
 * Output: lockbench's CSV (scenario,peer,threads,workload,value,unit,min_acq,
 * max_acq), peer "ft_weave" unless --label names it. Exit status 1 when a
 * lock let two threads in (lost update or torn read), 2 on a bad argument or
 * a failed pthread_create.
 */
#define _GNU_SOURCE
#include <ft_weave.h>

#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 16

static int duration_ms = 300;
static int reps = 3;
static const char *label = "ft_weave";
static int failures;

struct workload {
  const char *name;
  uint32_t in;  /* contended: units inside the lock; rwlock: writes per 1,000 operations */
  uint32_t out; /* units of work after the lock */
};

/* The lock and what it protects share one 128-byte block, as in lockbench. */
struct contended_shared {
  weave_mutex_t lock;
  uint64_t counter;
  uint32_t x;
} __attribute__((aligned(128)));

struct rw_shared {
  weave_rwmutex_t lock;
  uint64_t data[4];
} __attribute__((aligned(128)));

/* One worker's count, on a line of its own. */
struct count {
  uint64_t n;
  uint64_t writes;
  char pad[128 - 2 * sizeof(uint64_t)];
};

struct run {
  int rw; /* 0: contended mutex, 1: read95 */
  const struct workload *wl;
  struct contended_shared *cs;
  struct rw_shared *rs;
  struct count counts[MAX_THREADS];
  int stop;
  int ready;
  int torn;
} __attribute__((aligned(128))); /* aligned_alloc wants a size that is a multiple of 128 */

struct worker {
  struct run *run;
  int index;
};

static void *contended_worker(struct run *r, int t) {
  uint32_t local = (uint32_t)t + 1;
  uint64_t n = 0;
  while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
    weave_mutex_lock(&r->cs->lock);
    r->cs->counter++;
    r->cs->x = ftw_bench_work(r->cs->x, r->wl->in);
    weave_mutex_unlock(&r->cs->lock);
    local = ftw_bench_work(local, r->wl->out);
    n++;
  }
  __asm__ volatile("" ::"r"(local));
  r->counts[t].n = n;
  return NULL;
}

static void *rw_worker(struct run *r, int t) {
  uint32_t rng = (uint32_t)t * 7919u + 1u;
  uint64_t n = 0, w = 0, sum = 0;
  while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
    rng = rng * 1103515245u + 12345u;
    if ((rng >> 16) % 1000 < r->wl->in) {
      weave_rwmutex_lock(&r->rs->lock);
      for (int i = 0; i < 4; i++) {
        r->rs->data[i]++;
      }
      weave_rwmutex_unlock(&r->rs->lock);
      w++;
    } else {
      weave_rwmutex_rlock(&r->rs->lock);
      uint64_t a = r->rs->data[0], b = r->rs->data[3];
      weave_rwmutex_runlock(&r->rs->lock);
      if (a != b) {
        __atomic_store_n(&r->torn, 1, __ATOMIC_RELAXED); /* a writer ran beside a reader */
      }
      sum += a;
    }
    rng = ftw_bench_work(rng, r->wl->out);
    n++;
  }
  __asm__ volatile("" ::"r"(sum));
  r->counts[t].n = n;
  r->counts[t].writes = w;
  return NULL;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  __atomic_fetch_add(&w->run->ready, 1, __ATOMIC_SEQ_CST);
  return w->run->rw ? rw_worker(w->run, w->index) : contended_worker(w->run, w->index);
}

struct result {
  double per_s;
  uint64_t min_acq, max_acq;
};

/* One timed run; returns -1 when a thread could not be started. */
static int run_once(int rw, const struct workload *wl, int threads, struct result *out) {
  struct run *r = aligned_alloc(128, sizeof *r);
  struct worker workers[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  int started = 0, rc = 0;
  if (r == NULL) {
    return -1;
  }
  memset(r, 0, sizeof *r);
  r->rw = rw;
  r->wl = wl;
  r->cs = aligned_alloc(128, sizeof *r->cs);
  r->rs = aligned_alloc(128, sizeof *r->rs);
  if (r->cs == NULL || r->rs == NULL) {
    free(r->cs);
    free(r->rs);
    free(r);
    return -1;
  }
  memset(r->cs, 0, sizeof *r->cs);
  memset(r->rs, 0, sizeof *r->rs);
  r->cs->x = 1;
  for (; started < threads; started++) {
    workers[started].run = r;
    workers[started].index = started;
    if (pthread_create(&tids[started], NULL, worker_main, &workers[started]) != 0) {
      rc = -1;
      break;
    }
  }
  while (__atomic_load_n(&r->ready, __ATOMIC_SEQ_CST) != started) {
    sched_yield();
  }
  int64_t t0 = ftw_bench_now_ns();
  if (rc == 0) {
    struct timespec d = {duration_ms / 1000, (long)(duration_ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0) {
    }
  }
  __atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
  int64_t elapsed = ftw_bench_now_ns() - t0;
  for (int i = 0; i < started; i++) {
    pthread_join(tids[i], NULL);
  }
  if (rc == 0) {
    uint64_t total = 0, writes = 0;
    out->min_acq = UINT64_MAX;
    out->max_acq = 0;
    for (int i = 0; i < threads; i++) {
      total += r->counts[i].n;
      writes += r->counts[i].writes;
      out->min_acq = r->counts[i].n < out->min_acq ? r->counts[i].n : out->min_acq;
      out->max_acq = r->counts[i].n > out->max_acq ? r->counts[i].n : out->max_acq;
    }
    out->per_s = (double)total / ((double)elapsed / 1e9);
    if (!rw && r->cs->counter != total) {
      fprintf(stderr, "same_source_bench: lost updates: counter %llu, acquisitions %llu\n",
              (unsigned long long)r->cs->counter, (unsigned long long)total);
      failures++;
    }
    if (rw && (r->rs->data[0] != writes || r->torn)) {
      fprintf(stderr, "same_source_bench: rw lost writes or tore a read\n");
      failures++;
    }
  }
  free(r->cs);
  free(r->rs);
  free(r);
  return rc;
}

static int by_rate(const void *a, const void *b) {
  double x = ((const struct result *)a)->per_s, y = ((const struct result *)b)->per_s;
  return (x > y) - (x < y);
}

static int measure(FILE *out, const char *scenario, int rw, const struct workload *wl, int threads) {
  struct result runs[16];
  for (int i = 0; i < reps; i++) {
    if (run_once(rw, wl, threads, &runs[i]) != 0) {
      fprintf(stderr, "same_source_bench: could not start %d threads\n", threads);
      return -1;
    }
  }
  qsort(runs, (size_t)reps, sizeof runs[0], by_rate);
  const struct result *m = &runs[reps / 2];
  fprintf(out, "%s,%s,%d,%s,%.6g,ops/s,%llu,%llu\n", scenario, label, threads, wl->name, m->per_s,
          (unsigned long long)m->min_acq, (unsigned long long)m->max_acq);
  fflush(out);
  return 0;
}

int main(int argc, char **argv) {
  static const struct workload contended[] = {{"tiny", 1, 1}, {"small", 10, 50}};
  static const struct workload read95 = {"read95", 50, 10};
  static const int thread_counts[] = {1, 2, 4, 8, 16};
  FILE *out = stdout;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--smoke") == 0) {
      duration_ms = 5;
      reps = 1;
    } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out = fopen(argv[++i], "w");
      if (out == NULL) {
        perror("same_source_bench: --out");
        return 2;
      }
    } else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
      label = argv[++i];
    } else {
      fprintf(stderr, "usage: same_source_bench [--smoke] [--out FILE] [--label TEXT]\n");
      return 2;
    }
  }
  fprintf(out, "# same_source_bench: %d ms per run, median of %d\n", duration_ms, reps);
  fprintf(out, "scenario,peer,threads,workload,value,unit,min_acq,max_acq\n");
  for (size_t w = 0; w < sizeof contended / sizeof contended[0]; w++) {
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
      if (measure(out, "contended", 0, &contended[w], thread_counts[t]) != 0) {
        return 2;
      }
    }
  }
  for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
    if (measure(out, "rwlock", 1, &read95, thread_counts[t]) != 0) {
      return 2;
    }
  }
  if (out != stdout && fclose(out) != 0) {
    perror("same_source_bench: --out");
    return 2;
  }
  return failures != 0 ? 1 : 0;
}
