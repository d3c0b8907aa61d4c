/* mutex_barrier_bench: what the two-byte mutex's process-wide barrier costs.
 *
 *   mutex_barrier_bench [acquisitions per thread, default 250000]
 *
 * 1. The price of one barrier on this machine: membarrier(PRIVATE_EXPEDITED),
 *    the call Interlocked.MemoryBarrierProcessWide() makes on Linux (the
 *    library's runtime registers the process for it when it starts), timed
 *    with the other threads of the process asleep, and with one other thread
 *    spinning on another core (which then takes an IPI).
 * 2. How often waiters run it: contended lock+unlock loops (1, 2, 4, 8
 *    threads; tiny and small critical sections, as lockbench's workloads),
 *    reporting parks per million acquisitions from weave_stats (a waiter runs
 *    the barrier once per park attempt; count the calls themselves with
 *    `strace -f -c -e trace=membarrier`).
 */
#define _GNU_SOURCE
#include <ft_weave.h>

#include "bench_common.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int spin_stop;

static void *spinner(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&spin_stop, memory_order_relaxed)) {
  }
  return NULL;
}

static double barrier_ns(int calls) {
  int64_t t0 = ftw_bench_now_ns();
  for (int i = 0; i < calls; i++) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
      return -1;
    }
  }
  return (double)(ftw_bench_now_ns() - t0) / calls;
}

static weave_mutex_t lock;
static uint64_t shared_counter;
static long per_thread;
static unsigned work_in, work_out;

static atomic_int started, go;

static void *contender(void *arg) {
  unsigned x = (unsigned)(uintptr_t)arg;
  atomic_fetch_add(&started, 1);
  while (!atomic_load(&go)) {
    sched_yield();
  }
  for (long i = 0; i < per_thread; i++) {
    weave_mutex_lock(&lock);
    x = ftw_bench_work(x, work_in);
    shared_counter++;
    weave_mutex_unlock(&lock);
    x = ftw_bench_work(x, work_out);
  }
  return (void *)(uintptr_t)x;
}

int main(int argc, char **argv) {
  per_thread = argc > 1 ? atol(argv[1]) : 250000;
  weave_stats_t s0;
  weave_stats(&s0); /* loads the runtime (and its membarrier registration) */

  int calls = per_thread >= 100000 ? 20000 : 200;
  printf("membarrier(PRIVATE_EXPEDITED), other threads asleep: %.0f ns/call\n", barrier_ns(calls));
  pthread_t sp;
  pthread_create(&sp, NULL, spinner, NULL);
  usleep(10000);
  printf("membarrier(PRIVATE_EXPEDITED), one thread spinning:  %.0f ns/call\n", barrier_ns(calls));
  atomic_store(&spin_stop, 1);
  pthread_join(sp, NULL);

  static const struct {
    const char *name;
    unsigned in, out;
  } workloads[] = {{"tiny", 1, 1}, {"small", 10, 50}};
  static const int counts[] = {1, 2, 4, 8};
  for (size_t w = 0; w < sizeof workloads / sizeof workloads[0]; w++) {
    work_in = workloads[w].in;
    work_out = workloads[w].out;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
      int n = counts[c];
      pthread_t t[8];
      weave_stats_t a, b;
      shared_counter = 0;
      weave_stats(&a);
      atomic_store(&started, 0);
      atomic_store(&go, 0);
      for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, contender, (void *)(uintptr_t)(i + 1));
      while (atomic_load(&started) < n) {
        sched_yield();
      }
      int64_t t0 = ftw_bench_now_ns();
      atomic_store(&go, 1);
      for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
      double ns = (double)(ftw_bench_now_ns() - t0) / (double)(per_thread * n);
      weave_stats(&b);
      double acq = (double)(per_thread * n);
      printf("%-5s %d threads: %6.1f ns/acquisition, parks %8.0f, handoffs %6.0f per million acquisitions\n",
             workloads[w].name, n, ns, (double)(b.parks - a.parks) * 1e6 / acq,
             (double)(b.handoffs - a.handoffs) * 1e6 / acq);
      if (shared_counter != (uint64_t)(per_thread * n)) {
        fprintf(stderr, "mutex_barrier_bench: counter %llu, expected %llu\n", (unsigned long long)shared_counter,
                (unsigned long long)(per_thread * n));
        return 1;
      }
    }
  }
  return 0;
}
