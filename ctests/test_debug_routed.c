/* A C11 program compiled with -DFT_WEAVE_DEBUG (ctests/CMakeLists.txt):
 * the header's inline lock operations of the mutex, recursive mutex and RW
 * mutex must go through the checking exports, so that an order inversion
 * made only with inline calls is reported, with this program's functions as
 * the call sites, and owner checks see the inline unlocks. Warning-free as
 * C11 -Wall -Wextra -pedantic in that mode too. */
#include <ft_weave.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#ifndef FT_WEAVE_DEBUG
#error "compile with -DFT_WEAVE_DEBUG"
#endif

static char last_report[4096];
static int reports;

static void collect(const char *report, void *arg) {
  (void)arg;
  reports++;
  snprintf(last_report, sizeof last_report, "%s", report);
}

static int failures;
#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                      \
    }                                                                  \
  } while (0)

static weave_mutex_t m1;
static weave_recursive_mutex_t r1;
static weave_rwmutex_t rw1;

__attribute__((noinline)) void routed_mutex_then_recursive(void) {
  weave_mutex_lock(&m1);
  weave_recursive_mutex_lock(&r1);
  weave_recursive_mutex_lock(&r1);
  (void)weave_recursive_mutex_unlock(&r1);
  (void)weave_recursive_mutex_unlock(&r1);
  (void)weave_mutex_unlock(&m1);
}

__attribute__((noinline)) void routed_recursive_then_rwmutex(void) {
  weave_recursive_mutex_lock(&r1);
  weave_rwmutex_rlock(&rw1);
  (void)weave_rwmutex_runlock(&rw1);
  (void)weave_recursive_mutex_unlock(&r1);
}

__attribute__((noinline)) void routed_rwmutex_then_mutex(void) {
  weave_rwmutex_lock(&rw1);
  if (weave_mutex_trylock(&m1)) { /* a try adds no order... */
    (void)weave_mutex_unlock(&m1);
  }
  weave_mutex_lock(&m1); /* ...a lock does, and closes m1 -> r1 -> rw1 -> m1 */
  (void)weave_mutex_unlock(&m1);
  (void)weave_rwmutex_unlock(&rw1);
}

static int stage;

static void *hold_m1(void *arg) {
  (void)arg;
  weave_mutex_lock(&m1);
  __atomic_store_n(&stage, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) != 2) {
    sched_yield();
  }
  return NULL; /* still holding m1 */
}

int main(void) {
  pthread_t t;
  EXPECT(weave_debug_set(WEAVE_DEBUG_LOCK_ORDER | WEAVE_DEBUG_OWNER, collect, NULL) == 0);

  routed_mutex_then_recursive();
  routed_recursive_then_rwmutex();
  EXPECT(reports == 0);
  routed_rwmutex_then_mutex();
  EXPECT(reports == 1);
  EXPECT(strstr(last_report, "lock order") != NULL);
  EXPECT(strstr(last_report, "routed_rwmutex_then_mutex+0x") != NULL);
  EXPECT(strstr(last_report, "routed_mutex_then_recursive+0x") != NULL);
  EXPECT(strstr(last_report, "routed_recursive_then_rwmutex+0x") != NULL);
  /* The same orders again: reported once only. */
  routed_mutex_then_recursive();
  routed_rwmutex_then_mutex();
  EXPECT(reports == 1);
  EXPECT(!weave_mutex_is_locked(&m1));

  /* An inline unlock by a thread that does not hold the mutex. */
  EXPECT(pthread_create(&t, NULL, hold_m1, NULL) == 0);
  while (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) != 1) {
    sched_yield();
  }
  EXPECT(weave_mutex_unlock(&m1) == WEAVE_E_NOT_OWNER);
  EXPECT(weave_mutex_is_locked(&m1));
  __atomic_store_n(&stage, 2, __ATOMIC_RELEASE);
  EXPECT(pthread_join(t, NULL) == 0);
  EXPECT(reports == 2);
  EXPECT(strstr(last_report, "owner") != NULL);
  EXPECT(strstr(last_report, "main+0x") != NULL);

  EXPECT(weave_debug_set(0, NULL, NULL) == 0);
  EXPECT(weave_mutex_unlock(&m1) == 0); /* off: CPython's behaviour again */
  if (failures != 0) {
    fprintf(stderr, "last report: %s\n", last_report);
    return 1;
  }
  printf("routed inline paths checked (%d reports)\n", reports);
  return 0;
}
