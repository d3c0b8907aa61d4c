/* A small driver for valgrind memcheck (CTest valgrind_memcheck): thread-exit
 * destructors and every lock kind, on a few threads, in a few seconds under
 * valgrind. The suites themselves are too slow there (10,000 threads, a
 * million lock operations); test_thread_destructors' ft_utils cases also run
 * under valgrind (valgrind_memcheck_ft_utils).
 *
 * Memory the library must free is allocated here with malloc and handed to
 * it: destructors that free it, storage values with destructors. A
 * destructor that never runs, or a value the library forgets, shows up as a
 * "definitely lost" block, which fails the test (--errors-for-leak-kinds=
 * definite). Exit status 0 means every count matched. storage_reset_cases()
 * covers inits that overlap weave_storage_reset.
 */
#include <ft_weave.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kThreads = 6, kRounds = 300 };

static weave_local void *scratch_a;
static weave_local void *scratch_b;
static atomic_int destructor_runs;
static atomic_int storage_destructor_runs;
static int failures;

#define EXPECT(cond)                                             \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                \
    }                                                            \
  } while (0)

static void free_scratch(void *p) {
  free(p);
  atomic_fetch_add(&destructor_runs, 1);
}

/* Registers more from inside a destructor (one more round). */
static void free_and_register(void *p) {
  free(p);
  atomic_fetch_add(&destructor_runs, 1);
  scratch_b = malloc(24);
  weave_register_destructor(&scratch_b, free_scratch);
}

static void free_storage_value(void *value) {
  /* The value holds a malloc'ed pointer the library knows nothing about. */
  free(*(void **)value);
  atomic_fetch_add(&storage_destructor_runs, 1);
}

static weave_mutex_t mutex;
static weave_raw_mutex_t raw;
static weave_rwmutex_t rw;
static weave_recursive_mutex_t recursive;
static weave_cond_t cond;
static weave_event_t start;
static weave_once_t once;
static weave_seqlock_t seq;
static long counter, raw_counter, rw_counter, recursive_counter, seq_value;
static atomic_int once_runs;
static int cond_turn;

static int once_fn(void *arg) {
  (void)arg;
  atomic_fetch_add(&once_runs, 1);
  return 0;
}

static void *worker(void *arg) {
  long me = (long)(intptr_t)arg;
  scratch_a = malloc(32);
  EXPECT(weave_register_destructor(&scratch_a, me == 0 ? free_and_register : free_scratch) == 0);
  void **value = weave_tls_get("valgrind.driver:value", sizeof(void *), NULL, NULL);
  EXPECT(value != NULL);
  if (value != NULL) *value = malloc(48);
  long *shared = weave_static_get("valgrind.driver:static", sizeof(long), NULL, NULL);
  EXPECT(shared != NULL);

  weave_event_wait(&start);
  EXPECT(weave_once_call(&once, once_fn, NULL) == 0);
  for (int i = 0; i < kRounds; ++i) {
    weave_mutex_lock(&mutex);
    counter++;
    if (shared != NULL) ++*shared;
    weave_mutex_unlock(&mutex);

    weave_raw_mutex_lock(&raw);
    raw_counter++;
    weave_raw_mutex_unlock(&raw);

    if (i % 4 == 0) {
      weave_rwmutex_lock(&rw);
      rw_counter++;
      weave_rwmutex_unlock(&rw);
    } else {
      weave_rwmutex_rlock(&rw);
      (void)rw_counter;
      weave_rwmutex_runlock(&rw);
    }

    weave_recursive_mutex_lock(&recursive);
    weave_recursive_mutex_lock(&recursive);
    recursive_counter++;
    weave_recursive_mutex_unlock(&recursive);
    weave_recursive_mutex_unlock(&recursive);

    if (i % 16 == 0) {
      weave_seqlock_lock_write(&seq);
      seq_value++;
      weave_seqlock_unlock_write(&seq);
    }

    {
      weave_mutex_t local = {0};
      WEAVE_BEGIN_CRITICAL_SECTION2(&mutex, &local);
      counter++;
      WEAVE_END_CRITICAL_SECTION2();
    }
  }
  /* A token passed round the threads through a condition variable. */
  for (int turn = 0; turn < 3; ++turn) {
    weave_mutex_lock(&mutex);
    while (cond_turn % kThreads != me) {
      weave_cond_wait(&cond, &mutex, 100 * 1000000);
    }
    cond_turn++;
    weave_cond_broadcast(&cond);
    weave_mutex_unlock(&mutex);
  }
  /* A park that times out, and one that is refused. */
  uint32_t word = 1, expected = 1;
  EXPECT(weave_park(&word, &expected, 4, 100000, NULL, 1) == WEAVE_PARK_TIMEOUT);
  EXPECT(weave_park(&word, &expected, 3, 0, NULL, 0) == WEAVE_E_INVALID);
  return NULL;
}

/* ---- init and weave_storage_reset: a value made by an init that overlaps a
 * reset (its own, a nested init's, another thread's) belongs to no
 * generation; the get returns NULL and must free it (4096 bytes "definitely
 * lost" each otherwise). */
enum { kValueBytes = 4096 };

static int reset_message(void) { return strstr(weave_last_error(), "reset while init ran") != NULL; }

static int init_resets(void *storage, void *arg) {
  (void)arg;
  ((char *)storage)[0] = 1;
  weave_storage_reset();
  return 0;
}

static int init_gets_resetting_tls(void *storage, void *arg) {
  (void)storage;
  (void)arg;
  EXPECT(weave_tls_get("valgrind.driver:nested-inner", kValueBytes, init_resets, NULL) == NULL);
  EXPECT(reset_message());
  return 0;
}

static int init_gets_resetting_static(void *storage, void *arg) {
  (void)storage;
  (void)arg;
  EXPECT(weave_static_get("valgrind.driver:nested-inner-static", kValueBytes, init_resets, NULL) == NULL);
  EXPECT(reset_message());
  return 0;
}

static atomic_int overlap_phase; /* 1: init entered, 2: reset done */

static int init_waits_for_reset(void *storage, void *arg) {
  (void)arg;
  ((char *)storage)[0] = 1;
  atomic_store(&overlap_phase, 1);
  while (atomic_load(&overlap_phase) != 2) {
    struct timespec us = {0, 100000};
    nanosleep(&us, NULL);
  }
  return 0;
}

static void *overlapping_getter(void *arg) {
  int is_static = arg != NULL;
  const char *key = is_static ? "valgrind.driver:overlap-static" : "valgrind.driver:overlap";
  void *v = is_static ? weave_static_get(key, kValueBytes, init_waits_for_reset, NULL)
                      : weave_tls_get(key, kValueBytes, init_waits_for_reset, NULL);
  EXPECT(v == NULL);
  EXPECT(reset_message());
  char *fresh = is_static ? weave_static_get(key, kValueBytes, NULL, NULL) : weave_tls_get(key, kValueBytes, NULL, NULL);
  EXPECT(fresh != NULL && fresh[0] == 0);
  return NULL;
}

static void storage_reset_cases(void) {
  /* An init that resets on its own thread. */
  EXPECT(weave_tls_get("valgrind.driver:init-resets", kValueBytes, init_resets, NULL) == NULL);
  EXPECT(reset_message());
  EXPECT(weave_static_get("valgrind.driver:init-resets-static", kValueBytes, init_resets, NULL) == NULL);
  EXPECT(reset_message());
  /* Nested: the inner init resets; the outer gets fail too. */
  EXPECT(weave_tls_get("valgrind.driver:nested-outer", kValueBytes, init_gets_resetting_tls, NULL) == NULL);
  EXPECT(reset_message());
  EXPECT(weave_static_get("valgrind.driver:nested-outer-static", kValueBytes, init_gets_resetting_static, NULL) ==
         NULL);
  EXPECT(reset_message());
  /* An init on another thread that overlaps this thread's reset. */
  for (int is_static = 0; is_static < 2; ++is_static) {
    pthread_t t;
    atomic_store(&overlap_phase, 0);
    EXPECT(pthread_create(&t, NULL, overlapping_getter, is_static ? (void *)&overlap_phase : NULL) == 0);
    while (atomic_load(&overlap_phase) != 1) {
      struct timespec us = {0, 100000};
      nanosleep(&us, NULL);
    }
    weave_storage_reset();
    atomic_store(&overlap_phase, 2);
    pthread_join(t, NULL);
  }
  /* The keys work afterwards. */
  EXPECT(weave_tls_get("valgrind.driver:init-resets", kValueBytes, NULL, NULL) != NULL);
  EXPECT(weave_tls_get("valgrind.driver:nested-outer", kValueBytes, NULL, NULL) != NULL);
  EXPECT(weave_static_get("valgrind.driver:init-resets-static", kValueBytes, NULL, NULL) != NULL);
}

int main(void) {
  storage_reset_cases();
  EXPECT(weave_tls_set_destructor("valgrind.driver:value", free_storage_value) == 0);
  pthread_t threads[kThreads];
  for (long t = 0; t < kThreads; ++t) {
    EXPECT(pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t) == 0);
  }
  struct timespec ms = {0, 1000000};
  nanosleep(&ms, NULL);
  weave_event_notify(&start);
  for (int t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
  }
  EXPECT(counter == 2L * kThreads * kRounds);
  EXPECT(raw_counter == (long)kThreads * kRounds);
  EXPECT(recursive_counter == (long)kThreads * kRounds);
  EXPECT(rw_counter == (long)kThreads * (kRounds / 4));
  EXPECT(atomic_load(&once_runs) == 1);
  EXPECT(cond_turn == 3 * kThreads);
  /* kThreads registrations, plus one registered by a destructor. */
  EXPECT(atomic_load(&destructor_runs) == kThreads + 1);
  EXPECT(atomic_load(&storage_destructor_runs) == kThreads);
  long *shared = weave_static_get("valgrind.driver:static", sizeof(long), NULL, NULL);
  EXPECT(shared != NULL && *shared == (long)kThreads * kRounds);

  /* The main thread: a destructor run early, a storage value dropped by reset. */
  scratch_a = malloc(16);
  EXPECT(weave_register_destructor(&scratch_a, free_scratch) == 0);
  EXPECT(weave_run_thread_destructors() == 1);
  void **value = weave_tls_get("valgrind.driver:value", sizeof(void *), NULL, NULL);
  EXPECT(value != NULL);
  if (value != NULL) *value = malloc(8);
  /* reset runs this thread's value destructors, frees the static. */
  EXPECT(weave_storage_reset() >= 2);
  EXPECT(atomic_load(&storage_destructor_runs) == kThreads + 1);
  if (failures != 0) {
    fprintf(stderr, "valgrind_driver: %d failure(s)\n", failures);
    return 1;
  }
  printf("valgrind_driver: ok\n");
  return 0;
}
