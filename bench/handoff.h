/* What moving one cache line between two threads costs right now, for the
 * benchmarks (lockbench's RW notes, rw_ceiling_bench): two threads take turns
 * incrementing one word, each waiting for the other's increment; nanoseconds
 * per hand-off. On a VM this depends on where the host runs the vCPUs (about
 * 30 ns on two hyperthreads of one core, 230 ns and more on two cores here)
 * and can change during a run. C and C++ (GCC/Clang atomic builtins). */
#ifndef FTW_BENCH_HANDOFF_H
#define FTW_BENCH_HANDOFF_H

#include <pthread.h>
#include <sched.h>
#include <time.h>

struct ftw_handoff_player {
  long *turn;   /* shared by the two players */
  long me;      /* 0 or 1: the player moves when turn's parity is `me` */
  long rounds;
  int *abandon; /* set when the other player could not be started */
};

static void *ftw_handoff_play(void *arg) {
  struct ftw_handoff_player *p = (struct ftw_handoff_player *)arg;
  for (long i = 0; i < p->rounds; i++) {
    for (int k = 0; (__atomic_load_n(p->turn, __ATOMIC_ACQUIRE) & 1) != p->me; k++) {
      if (__atomic_load_n(p->abandon, __ATOMIC_RELAXED)) {
        return NULL;
      }
      if (k > 4096) {
        sched_yield(); /* one CPU: the other thread must run */
      } else {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause(); /* loads without a pause slow the very line they wait for */
#endif
      }
    }
    __atomic_fetch_add(p->turn, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

/* Nanoseconds per hand-off over `rounds` turns of each of two new threads
 * (new ones both: the caller may be sitting on a CPU the scheduler is about
 * to move it from); -1 when a thread cannot be created. */
static inline double ftw_handoff_ns(long rounds) {
  static long turn __attribute__((aligned(128)));
  int abandon = 0;
  struct ftw_handoff_player a = {&turn, 0, rounds, &abandon}, b = {&turn, 1, rounds, &abandon};
  struct timespec t0, t1;
  pthread_t ta, tb;
  __atomic_store_n(&turn, 0, __ATOMIC_SEQ_CST);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (pthread_create(&ta, NULL, ftw_handoff_play, &a) != 0) {
    return -1;
  }
  if (pthread_create(&tb, NULL, ftw_handoff_play, &b) != 0) {
    __atomic_store_n(&abandon, 1, __ATOMIC_RELAXED);
    pthread_join(ta, NULL);
    return -1;
  }
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
  return ns / (2.0 * (double)rounds);
}

#endif
