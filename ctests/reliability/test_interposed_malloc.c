/*
 * The library's calls into the C allocator, under a malloc that the program
 * replaced (as jemalloc, tcmalloc or a profiler does), issue 11:
 *
 *   reenter  (finding 14) the replacement calls back into ft_weave while the
 *            library is inside malloc. Before, malloc/calloc/realloc/free were
 *            declared [SuppressGCTransition]: the thread stayed in the
 *            runtime's cooperative mode for the call, and the .NET runtime
 *            ends the process when such a thread re-enters an export.
 *   blocked  (findings 13 and 14) the replacement blocks for a while (an
 *            arena lock, a page fault storm) while the library is inside it,
 *            and another thread calls weave_stats. Before, weave_stats
 *            suspended every managed thread, and the blocked thread, still in
 *            cooperative mode, held that suspension (and weave_stats) until
 *            malloc returned. Now weave_stats suspends nothing and the call
 *            is an ordinary transition: weave_stats returns at once.
 *   nomem    (finding 10) aligned allocations fail when the process first
 *            parks. Before, the parking lot's table and the statistics
 *            stripes came from NativeMemory.AlignedAlloc, whose
 *            OutOfMemoryException ended the process; now they are static.
 *
 * Exit status 0 = pass. Each mode runs in its own process (CTest), bounded
 * by alarm().
 */
#define _GNU_SOURCE
#include <ft_weave.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

/* What the replacement does on the armed thread (or any thread for nomem). */
enum { NOTHING, REENTER, BLOCK, FAIL_ALIGNED };
static int mode_armed; /* written before the armed thread starts, or on the armed thread */
static __thread int armed;
static __thread int inside;
static int reentered;   /* how many times the replacement re-entered the library */
static int blocked;     /* set while the replacement blocks */

static void on_allocation(void) {
  if (!armed || inside) {
    return;
  }
  inside = 1;
  if (mode_armed == REENTER) {
    /* Any export will do; this one needs no argument. */
    if (weave_thread_id() != 0) {
      __atomic_fetch_add(&reentered, 1, __ATOMIC_RELAXED);
    }
  } else if (mode_armed == BLOCK) {
    __atomic_store_n(&blocked, 1, __ATOMIC_RELEASE);
    /* 2 s, whatever signals arrive meanwhile (as a blocked lock would). */
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    __atomic_store_n(&blocked, 0, __ATOMIC_RELEASE);
    armed = 0; /* once */
  }
  inside = 0;
}

void *malloc(size_t n) {
  on_allocation();
  return __libc_malloc(n);
}
void *calloc(size_t c, size_t n) {
  on_allocation();
  return __libc_calloc(c, n);
}
void *realloc(void *p, size_t n) {
  on_allocation();
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }

static int aligned_fails(void) { return __atomic_load_n(&mode_armed, __ATOMIC_ACQUIRE) == FAIL_ALIGNED; }
void *aligned_alloc(size_t alignment, size_t n) {
  if (aligned_fails()) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_memalign(alignment, n);
}
void *memalign(size_t alignment, size_t n) {
  if (aligned_fails()) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_memalign(alignment, n);
}
int posix_memalign(void **out, size_t alignment, size_t n) {
  if (aligned_fails()) {
    return ENOMEM;
  }
  void *p = __libc_memalign(alignment, n);
  if (p == NULL) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *slot;
static void ignore(void *p) { (void)p; }

/* A thread whose first calls that need per-thread state allocate it (its
 * per-thread context, a storage value) with the replacement armed. */
static void *armed_thread(void *arg) {
  (void)arg;
  /* Attached to the runtime first: the replacement must only meet the
   * library's own allocations, not the runtime's attach. */
  (void)weave_thread_id();
  armed = 1;
  int rc = weave_register_destructor(&slot, ignore);
  void *value = weave_tls_get("test_interposed_malloc:value", 64, NULL, NULL);
  armed = 0;
  return (void *)(intptr_t)(rc == 0 && value != NULL ? 0 : 1);
}

static int run_reenter(void) {
  mode_armed = REENTER;
  pthread_t t;
  void *result = NULL;
  if (pthread_create(&t, NULL, armed_thread, NULL) != 0 || pthread_join(t, &result) != 0) {
    return 2;
  }
  if (result != NULL) {
    fprintf(stderr, "reenter: the armed thread's calls failed\n");
    return 1;
  }
  if (__atomic_load_n(&reentered, __ATOMIC_RELAXED) == 0) {
    fprintf(stderr, "reenter: the library allocated nothing on the armed thread (test needs updating)\n");
    return 1;
  }
  printf("ok: the allocator re-entered the library %d times\n", reentered);
  return 0;
}

static int run_blocked(void) {
  weave_stats_t s;
  (void)weave_thread_id(); /* runtime up before the measurement */
  if (weave_stats(&s) != 0) {
    return 2;
  }
  mode_armed = BLOCK;
  pthread_t t;
  if (pthread_create(&t, NULL, armed_thread, NULL) != 0) {
    return 2;
  }
  double start = now_s();
  while (!__atomic_load_n(&blocked, __ATOMIC_ACQUIRE)) {
    if (now_s() - start > 10) {
      fprintf(stderr, "blocked: the library allocated nothing on the armed thread (test needs updating)\n");
      return 1;
    }
    usleep(1000);
  }
  usleep(20 * 1000);
  double t0 = now_s();
  int rc = weave_stats(&s);
  double took = now_s() - t0;
  int still_blocked = __atomic_load_n(&blocked, __ATOMIC_ACQUIRE);
  pthread_join(t, NULL);
  if (rc != 0) {
    return 2;
  }
  printf("weave_stats took %.3f ms while another thread was blocked in malloc (still blocked after: %d)\n",
         took * 1e3, still_blocked);
  /* The allocator blocks for 2 s: a weave_stats that waited for it takes
   * over a second; one that does not returns in microseconds. */
  return took < 0.5 && still_blocked ? 0 : 1;
}

static int run_nomem(void) {
  (void)weave_thread_id(); /* the runtime and the thread are up before the failure starts */
  __atomic_store_n(&mode_armed, FAIL_ALIGNED, __ATOMIC_RELEASE);
  uint8_t b = 1, e = 1;
  int park = weave_park(&b, &e, 1, 1000000, NULL, 0);
  int unpark = weave_unpark_all(&b);
  weave_mutex_t m = {{WEAVE_MUTEX_LOCKED, 0}};
  int timed = weave_mutex_lock_timed(&m, 1000000, 0);
  weave_stats_t s;
  int stats = weave_stats(&s);
  __atomic_store_n(&mode_armed, NOTHING, __ATOMIC_RELEASE);
  printf("park %d, unpark_all %d, lock_timed %d, stats %d\n", park, unpark, timed, stats);
  return park == WEAVE_PARK_TIMEOUT && unpark == 0 && timed == WEAVE_LOCK_FAILURE && stats == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  alarm(30);
  if (argc == 2 && strcmp(argv[1], "reenter") == 0) return run_reenter();
  if (argc == 2 && strcmp(argv[1], "blocked") == 0) return run_blocked();
  if (argc == 2 && strcmp(argv[1], "nomem") == 0) return run_nomem();
  fprintf(stderr, "usage: %s reenter|blocked|nomem\n", argv[0]);
  return 2;
}
