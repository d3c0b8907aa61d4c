/*
 * Thread-exit probe: programs that use libft_weave.so at the edges of a
 * thread's and the process's life, run one per process by test_thread_exit.cpp
 * (each mode needs a fresh process: whether a pthread key exists before the
 * library is loaded, or main() ends with pthread_exit, is decided once).
 *
 * The library is dlopen()ed, never linked: in mode "matrix before" the
 * program's pthread key must exist before the library is loaded, so that its
 * destructor runs before the library's own keys' in every glibc pass.
 *
 * Prints one line per check, "ok ..." or "FAIL ...", and exits 0 when every
 * check passed. A crash or hang is the test's failure (the driver bounds it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ft_weave.h"

/* The exports this probe calls, looked up after dlopen. */
static struct {
  const char *(*version)(void);
  const char *(*last_error)(void);
  uint64_t (*thread_id)(void);
  void (*mutex_lock)(weave_mutex_t *);
  int (*mutex_unlock)(weave_mutex_t *);
  int (*mutex_lock_timed)(weave_mutex_t *, int64_t, int);
  int (*mutex_is_locked)(const weave_mutex_t *);
  int (*cond_wait)(weave_cond_t *, weave_mutex_t *, int64_t);
  int (*cond_signal)(weave_cond_t *);
  void *(*tls_get)(const char *, size_t, weave_storage_init_fn *, void *);
  void *(*static_get)(const char *, size_t, weave_storage_init_fn *, void *);
  int (*register_destructor)(void **, wvls_destructor_t);
  int (*stats)(weave_stats_t *);
  void (*cs_begin)(weave_critical_section_t *, weave_mutex_t *);
  void (*cs_end)(weave_critical_section_t *);
  void (*cs2_begin)(weave_critical_section2_t *, weave_mutex_t *, weave_mutex_t *);
  void (*cs2_end)(weave_critical_section2_t *);
} w;

static int failures;

static void check(int ok, const char *what, long value) {
  printf("%s %s (%ld)\n", ok ? "ok" : "FAIL", what, value);
  fflush(stdout);
  if (!ok) {
    failures++;
  }
}

static void *load(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    exit(2);
  }
#define LOOK(field, name)                                   \
  do {                                                      \
    *(void **)&w.field = dlsym(lib, name);                  \
    if (w.field == NULL) {                                  \
      fprintf(stderr, "dlsym %s: %s\n", name, dlerror());   \
      exit(2);                                              \
    }                                                       \
  } while (0)
  LOOK(version, "weave_version");
  LOOK(last_error, "weave_last_error");
  LOOK(thread_id, "weave_thread_id");
  LOOK(mutex_lock, "weave_mutex_lock");
  LOOK(mutex_unlock, "weave_mutex_unlock");
  LOOK(mutex_lock_timed, "weave_mutex_lock_timed");
  LOOK(mutex_is_locked, "weave_mutex_is_locked");
  LOOK(cond_wait, "weave_cond_wait");
  LOOK(cond_signal, "weave_cond_signal");
  LOOK(tls_get, "weave_tls_get");
  LOOK(static_get, "weave_static_get");
  LOOK(register_destructor, "weave_register_destructor");
  LOOK(stats, "weave_stats");
  LOOK(cs_begin, "weave_critical_section_begin");
  LOOK(cs_end, "weave_critical_section_end");
  LOOK(cs2_begin, "weave_critical_section2_begin");
  LOOK(cs2_end, "weave_critical_section2_end");
#undef LOOK
  return lib;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static uint64_t parks(void) {
  weave_stats_t s;
  w.stats(&s);
  return s.parks;
}

/* Waits (bounded) until the lot has seen more parks than `before`. */
static int wait_parks_above(uint64_t before) {
  for (int i = 0; i < 5000; i++) {
    if (parks() > before) {
      return 1;
    }
    sleep_ms(1);
  }
  return 0;
}

static void *run(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    exit(2);
  }
  void *result;
  pthread_join(t, &result);
  return result;
}

/* ------------------------------------------------------------------------ */
/* The matrix: one thread per cell; the cell's operation runs in the
 * destructor of the program's pthread key, at the thread's exit.            */

enum op {
  OP_UNCONTENDED_LOCK,
  OP_CONTENDED_LOCK_UNLOCK,
  OP_COND_SIGNAL,
  OP_TLS_GET,
  OP_STATIC_GET,
  OP_REGISTER_DESTRUCTOR,
  OP_THREAD_ID,
  OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
    "uncontended lock", "contended lock and unlock", "cond signal", "weave_tls_get",
    "weave_static_get", "weave_register_destructor", "weave_thread_id"};

static pthread_key_t program_key;
static enum op current_op;
static weave_mutex_t m;
static weave_mutex_t cond_mutex;
static weave_cond_t cond;
static atomic_long result1, result2;
static atomic_int destructor_ran;
static atomic_int acquired_in_destructor;
static atomic_int waiter_may_go;
static __thread void *registered_slot;

static void registered_destructor(void *value) {
  (void)value;
  atomic_fetch_add(&destructor_ran, 1);
}

static int init_static(void *storage, void *arg) {
  (void)arg;
  *(long *)storage = 77;
  return 0;
}

static void program_key_destructor(void *value) {
  (void)value;
  switch (current_op) {
    case OP_UNCONTENDED_LOCK:
      w.mutex_lock(&m);
      result1 = w.mutex_is_locked(&m);
      result2 = w.mutex_unlock(&m);
      break;
    case OP_CONTENDED_LOCK_UNLOCK: {
      /* The main thread holds m: this lock parks. */
      result1 = w.mutex_lock_timed(&m, 5000000000LL, WEAVE_LOCK_DONT_DETACH);
      uint64_t before = parks();
      atomic_store(&acquired_in_destructor, 1);
      /* A waiter parks behind us: our unlock must wake it. */
      wait_parks_above(before);
      result2 = w.mutex_unlock(&m);
      break;
    }
    case OP_COND_SIGNAL:
      result1 = w.cond_signal(&cond);
      result2 = 0;
      break;
    case OP_TLS_GET: {
      long *p = w.tls_get("probe:tls", sizeof(long), NULL, NULL);
      result1 = p != NULL ? 1 : 0;
      result2 = p != NULL ? (*p == 0 ? 0 : -1) : 0;
      break;
    }
    case OP_STATIC_GET: {
      long *p = w.static_get("probe:static", sizeof(long), init_static, NULL);
      result1 = p != NULL && *p == 77;
      result2 = 0;
      break;
    }
    case OP_REGISTER_DESTRUCTOR:
      registered_slot = &registered_slot;
      result1 = w.register_destructor(&registered_slot, registered_destructor);
      result2 = 0;
      break;
    case OP_THREAD_ID:
      result1 = w.thread_id() != 0;
      result2 = 0;
      break;
    default:
      break;
  }
}

static void *cell_thread(void *entered) {
  if (entered != NULL) {
    (void)w.thread_id(); /* the runtime attaches the thread here */
  }
  pthread_setspecific(program_key, (void *)1);
  return NULL;
}

static void *contending_waiter(void *unused) {
  (void)unused;
  while (!atomic_load(&waiter_may_go)) {
    sleep_ms(1);
  }
  w.mutex_lock(&m);
  w.mutex_unlock(&m);
  return NULL;
}

static void *cond_waiter(void *out) {
  w.mutex_lock(&cond_mutex);
  *(int *)out = w.cond_wait(&cond, &cond_mutex, 5000000000LL);
  w.mutex_unlock(&cond_mutex);
  return NULL;
}

static void run_cell(int entered, enum op op) {
  char what[160];
  current_op = op;
  result1 = result2 = -999;
  atomic_store(&destructor_ran, 0);
  atomic_store(&acquired_in_destructor, 0);
  atomic_store(&waiter_may_go, 0);
  void *arg = entered ? (void *)1 : NULL;
  const char *who = entered ? "entered" : "fresh";

  if (op == OP_CONTENDED_LOCK_UNLOCK) {
    w.mutex_lock(&m);
    pthread_t cell, waiter;
    uint64_t before = parks();
    pthread_create(&cell, NULL, cell_thread, arg);
    pthread_create(&waiter, NULL, contending_waiter, NULL);
    int parked = wait_parks_above(before); /* the cell's destructor waits for m */
    sleep_ms(5);
    w.mutex_unlock(&m);
    for (int i = 0; i < 5000 && !atomic_load(&acquired_in_destructor); i++) {
      sleep_ms(1);
    }
    atomic_store(&waiter_may_go, 1);
    pthread_join(cell, NULL);
    pthread_join(waiter, NULL);
    snprintf(what, sizeof what, "%s thread, %s: parked", who, op_names[op]);
    check(parked, what, 0);
    snprintf(what, sizeof what, "%s thread, %s: lock acquired", who, op_names[op]);
    check(result1 == WEAVE_LOCK_ACQUIRED, what, result1);
    snprintf(what, sizeof what, "%s thread, %s: unlock", who, op_names[op]);
    check(result2 == 0, what, result2);
    snprintf(what, sizeof what, "%s thread, %s: mutex idle after", who, op_names[op]);
    check(!w.mutex_is_locked(&m), what, 0);
    return;
  }
  if (op == OP_COND_SIGNAL) {
    int woken = -1;
    uint64_t before = parks();
    pthread_t waiter;
    pthread_create(&waiter, NULL, cond_waiter, &woken);
    int parked = wait_parks_above(before);
    run(cell_thread, arg);
    pthread_join(waiter, NULL);
    snprintf(what, sizeof what, "%s thread, %s: waiter parked", who, op_names[op]);
    check(parked, what, 0);
    snprintf(what, sizeof what, "%s thread, %s: one waiter signalled", who, op_names[op]);
    check(result1 == 1, what, result1);
    snprintf(what, sizeof what, "%s thread, %s: the waiter woke", who, op_names[op]);
    check(woken == 1, what, woken);
    return;
  }

  run(cell_thread, arg);
  snprintf(what, sizeof what, "%s thread, %s", who, op_names[op]);
  switch (op) {
    case OP_UNCONTENDED_LOCK:
      check(result1 == 1 && result2 == 0, what, result2);
      break;
    case OP_TLS_GET:
      /* A thread-local value (or WEAVE_E_STATE), never a crash. */
      check(result1 == 1 && result2 == 0, what, result1);
      break;
    case OP_REGISTER_DESTRUCTOR:
      /* Registered and then run by the teardown, never 0-and-lost. */
      check((result1 == 0 && atomic_load(&destructor_ran) == 1) ||
                (result1 == WEAVE_E_STATE && atomic_load(&destructor_ran) == 0),
            what, result1);
      break;
    default:
      check(result1 == 1, what, result1);
      break;
  }
}

static int matrix(const char *library, int key_before_load) {
  if (key_before_load) {
    /* The program's key exists before the library: a lower index than the
     * library's keys, so glibc runs its destructor first in each pass. */
    pthread_key_create(&program_key, program_key_destructor);
    load(library);
    w.version();
  } else {
    load(library);
    w.version(); /* initialises the runtime */
    pthread_key_create(&program_key, program_key_destructor);
  }
  printf("program key %u\n", (unsigned)program_key);
  for (int entered = 1; entered >= 0; entered--) {
    for (int op = 0; op < OP_COUNT; op++) {
      run_cell(entered, (enum op)op);
    }
  }
  return failures == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* main() ends with pthread_exit.                                            */

static __thread void *main_slot;
static atomic_int main_destructor_runs;
static atomic_int worker_done;
static int expect_main_destructor;

static void main_destructor(void *value) {
  printf("main destructor ran (%p)\n", value);
  atomic_fetch_add(&main_destructor_runs, 1);
}

static void *late_worker(void *call_library) {
  sleep_ms(200);
  if (call_library != NULL) {
    (void)w.thread_id();
  }
  printf("worker done\n");
  atomic_store(&worker_done, 1);
  return NULL;
}

/* The process ends through exit(0) once the last thread is gone: check there. */
static void check_at_exit(void) {
  check(atomic_load(&worker_done) == 1, "the worker finished before the process ended", 0);
  check(atomic_load(&main_destructor_runs) == expect_main_destructor, "main's destructor ran as expected",
        atomic_load(&main_destructor_runs));
  fflush(stdout);
  if (failures != 0) {
    _exit(1);
  }
}

static int main_pthread_exit(const char *library, int main_calls) {
  load(library);
  expect_main_destructor = main_calls;
  atexit(check_at_exit);
  pthread_t t;
  if (main_calls) {
    main_slot = (void *)0x5;
    if (w.register_destructor(&main_slot, main_destructor) != 0) {
      return 1;
    }
    pthread_create(&t, NULL, late_worker, NULL);
  } else {
    /* Only a worker ever calls the library: the runtime starts its threads
     * there, and main never enters. */
    pthread_create(&t, NULL, late_worker, (void *)1);
  }
  pthread_detach(t);
  pthread_exit(NULL);
}

/* ------------------------------------------------------------------------ */
/* dlclose after a worker used the library, then the worker exits.          */

static void *use_then_linger(void *unused) {
  (void)unused;
  (void)w.version();
  (void)w.thread_id();
  sleep_ms(100); /* exits after the dlclose below */
  return NULL;
}

static int dlclose_then_exit(const char *library) {
  void *lib = load(library);
  pthread_t t;
  pthread_create(&t, NULL, use_then_linger, NULL);
  sleep_ms(20);
  check(dlclose(lib) == 0, "dlclose", 0);
  pthread_join(t, NULL);
  /* The library stays mapped once used (-z nodelete). */
  check(dlopen(library, RTLD_NOW | RTLD_NOLOAD) != NULL, "still loaded after dlclose", 0);
  printf("worker exited\n");
  return failures == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* Threads whose first ft_weave call is a registration made from a pthread
 * key destructor: it runs, and nothing leaks per thread.                    */

static pthread_key_t first_call_key;
static atomic_int first_call_registered;

static void first_call_destructor(void *value) {
  (void)value;
  registered_slot = &registered_slot;
  if (w.register_destructor(&registered_slot, registered_destructor) == 0) {
    atomic_fetch_add(&first_call_registered, 1);
  }
}

static void *first_call_thread(void *unused) {
  (void)unused;
  pthread_setspecific(first_call_key, (void *)1);
  return NULL;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
      resident = 0;
    }
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int first_call_in_key_destructor(const char *library, int threads) {
  load(library);
  w.version();
  pthread_key_create(&first_call_key, first_call_destructor);
  atomic_store(&destructor_ran, 0);
  for (int i = 0; i < 1000; i++) { /* warm-up: allocator arenas, runtime */
    run(first_call_thread, NULL);
  }
  long before = rss_kb();
  for (int i = 0; i < threads; i++) {
    run(first_call_thread, NULL);
  }
  long after = rss_kb();
  int total = threads + 1000;
  check(atomic_load(&first_call_registered) == total, "every registration accepted",
        atomic_load(&first_call_registered));
  check(atomic_load(&destructor_ran) == total, "every registration ran", atomic_load(&destructor_ran));
  printf("rss before %ld KB, after %ld KB, growth %ld KB over %d threads\n", before, after, after - before,
         threads);
  /* 560 bytes a thread leaked before: about 11 MB over 20,000 threads. */
  check(after - before < 2048, "resident memory growth under 2 MB", after - before);
  return failures == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* The process uses up its pthread keys after loading the library, before
 * its first call: every call still works.                                   */

static int keys_exhausted_after_load(const char *library) {
  load(library);
  static pthread_key_t keys[2048];
  int used = 0;
  while (used < 2048 && pthread_key_create(&keys[used], NULL) == 0) {
    used++;
  }
  check(used < 2048, "pthread keys used up", used);
  printf("version %s\n", w.version());
  main_slot = (void *)1;
  check(w.register_destructor(&main_slot, main_destructor) == 0, "register_destructor", 0);
  check(w.tls_get("probe:keys", 8, NULL, NULL) != NULL, "tls_get", 0);
  w.mutex_lock(&m);
  check(w.mutex_unlock(&m) == 0, "lock and unlock", 0);
  check(run(use_then_linger, NULL) == NULL, "a new thread uses the library", 0);
  for (int i = 0; i < used; i++) {
    pthread_key_delete(keys[i]);
  }
  return failures == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* A two-mutex section begun after the calling thread's teardown (the main
 * thread inside exit(): its thread_local-style hooks registered before its
 * first ft_weave call run after the library's own) has no per-thread state;
 * it must still take its pair in address order, holding nothing while it
 * waits for the lower one.                                                  */

int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;

static weave_mutex_t pair[2]; /* pair[0] has the lower address */
static atomic_int late_step;
static atomic_int checker_done;
static char late_error[256];

static void late_begin2(void *unused) {
  (void)unused;
  weave_critical_section2_t cs;
  atomic_store(&late_step, 1);
  w.cs2_begin(&cs, &pair[1], &pair[0]); /* higher address first */
  snprintf(late_error, sizeof late_error, "%s", w.last_error());
  atomic_store(&late_step, 2);
  w.cs2_end(&cs);
  atomic_store(&late_step, 3);
  for (int i = 0; i < 10000 && !atomic_load(&checker_done); i++) {
    sleep_ms(1);
  }
  check(strstr(late_error, "past its thread-exit teardown") != NULL, "the begin had no per-thread state", 0);
  check(!w.mutex_is_locked(&pair[0]) && !w.mutex_is_locked(&pair[1]), "both released by the end", 0);
  if (failures != 0) {
    _exit(1);
  }
}

static uint64_t parks_before_exit;

static void *pair_checker(void *unused) {
  (void)unused;
  uint64_t before = parks_before_exit;
  for (int i = 0; i < 10000 && atomic_load(&late_step) < 1; i++) {
    sleep_ms(1);
  }
  check(wait_parks_above(before), "the late begin waits for the lower mutex", 0);
  check(!w.mutex_is_locked(&pair[1]), "holding nothing meanwhile (address order)", 0);
  w.mutex_unlock(&pair[0]);
  for (int i = 0; i < 10000 && atomic_load(&late_step) < 3; i++) {
    sleep_ms(1);
  }
  check(atomic_load(&late_step) == 3, "the late section began and ended", atomic_load(&late_step));
  atomic_store(&checker_done, 1);
  return NULL;
}

static int section2_after_teardown(const char *library) {
  load(library);
  if ((uintptr_t)&pair[1] < (uintptr_t)&pair[0]) {
    fprintf(stderr, "unexpected layout\n");
    return 2;
  }
  /* Registered before the thread's first ft_weave call: runs after the
   * library's teardown hook in exit() (last in, first out). */
  __cxa_thread_atexit_impl(late_begin2, NULL, __dso_handle);
  weave_mutex_t first = {0};
  weave_critical_section_t cs;
  w.cs_begin(&cs, &first); /* the thread's ft_weave state starts here */
  w.cs_end(&cs);
  w.mutex_lock(&pair[0]);
  /* Read before the late begin can park (it runs inside the exit() below). */
  parks_before_exit = parks();
  pthread_t checker;
  pthread_create(&checker, NULL, pair_checker, NULL);
  pthread_detach(checker);
  exit(0);
}

/* ------------------------------------------------------------------------ */
/* Uncontended sections begun after the calling thread's teardown (the main
 * thread inside exit(), as above). The library's C fast path reaches the
 * thread's chain through a thread-local pointer that the teardown clears
 * before it frees the thread's state: these sections must be the untracked
 * ones of a thread without state (locked, not pushed, the error recorded),
 * never pushed onto the freed state.                                        */

static weave_mutex_t late_one, late_two[2];
static atomic_int late_sections_ran;

static int late_error_is_teardown(void) { return strstr(w.last_error(), "past its thread-exit teardown") != NULL; }

static void late_sections(void *unused) {
  (void)unused;
  weave_critical_section_t cs;
  weave_critical_section2_t cs2;
  w.cs_begin(&cs, &late_one);
  check(late_error_is_teardown(), "a late begin finds no per-thread state", 0);
  check(w.mutex_is_locked(&late_one), "and locks its mutex", 0);
  /* Another message in between, so the next check sees the next begin's. */
  check(w.mutex_lock_timed(NULL, 0, 0) == WEAVE_E_INVALID && !late_error_is_teardown(), "error reset", 0);
  w.cs2_begin(&cs2, &late_two[1], &late_two[0]);
  check(late_error_is_teardown(), "a late two-mutex begin finds no per-thread state", 0);
  check(w.mutex_is_locked(&late_two[0]) && w.mutex_is_locked(&late_two[1]), "and locks both", 0);
  w.cs2_end(&cs2);
  check(!w.mutex_is_locked(&late_two[0]) && !w.mutex_is_locked(&late_two[1]), "its end unlocks both", 0);
  w.cs_end(&cs);
  check(!w.mutex_is_locked(&late_one), "the first end unlocks", 0);
  atomic_store(&late_sections_ran, 1);
  if (failures != 0) {
    _exit(1);
  }
}

static void late_sections_must_have_run(void) {
  if (!atomic_load(&late_sections_ran)) {
    printf("FAIL the late sections did not run\n");
    _exit(1);
  }
}

static int sections_after_teardown(const char *library) {
  load(library);
  /* atexit handlers run after the thread_local-style hooks. */
  atexit(late_sections_must_have_run);
  /* Registered before the thread's first ft_weave call: runs after the
   * library's teardown hook in exit() (last in, first out). */
  __cxa_thread_atexit_impl(late_sections, NULL, __dso_handle);
  weave_mutex_t first = {0};
  weave_critical_section_t cs;
  w.cs_begin(&cs, &first); /* the thread's ft_weave state starts here */
  w.cs_end(&cs);
  exit(0);
}

/* ------------------------------------------------------------------------ */
/* fork from a thread that is not main: in the child that thread is the main
 * thread (its tid is the child's pid), so exit() must run the destructors it
 * registers there, as it does for main's. The library learns the main
 * thread once and keeps its pthread_t; this checks that a fork child
 * re-learns it (the atfork handler of src/native/thread_exit.c).           */

static int fork_child_pipe[2];
static void *fork_child_slot;

static void fork_child_destructor(void *value) {
  char byte = value == (void *)0x7 ? 'y' : 'n';
  if (write(fork_child_pipe[1], &byte, 1) != 1) {
    _exit(3);
  }
}

static void *fork_from_worker(void *unused) {
  (void)unused;
  (void)w.thread_id(); /* attached and with a context before the fork */
  fork_child_slot = (void *)0x7;
  pid_t pid = fork();
  if (pid == 0) {
    if (w.register_destructor(&fork_child_slot, fork_child_destructor) != 0) {
      _exit(4);
    }
    exit(0); /* runs the calling (now main) thread's exit destructors */
  }
  int status = 0;
  check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "fork child exited normally", (long)status);
  char byte = 0;
  close(fork_child_pipe[1]);
  long got = read(fork_child_pipe[0], &byte, 1);
  check(got == 1 && byte == 'y', "destructor registered on the fork child's main thread ran in exit()", got);
  return NULL;
}

static int fork_child_main_exit(const char *library) {
  load(library);
  (void)w.thread_id(); /* main is known to the library, and it is not the forker */
  if (pipe(fork_child_pipe) != 0) {
    return 2;
  }
  pthread_t t;
  pthread_create(&t, NULL, fork_from_worker, NULL);
  pthread_join(t, NULL);
  return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: %s LIBRARY matrix-before|matrix-after|main-pthread-exit|"
            "main-pthread-exit-unattached|dlclose|first-call-in-key-destructor [N]|"
            "keys-exhausted-after-load|section2-after-teardown|sections-after-teardown|"
            "fork-child-main-exit\n",
            argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *library = argv[1];
  const char *mode = argv[2];
  if (strcmp(mode, "matrix-before") == 0) return matrix(library, 1);
  if (strcmp(mode, "matrix-after") == 0) return matrix(library, 0);
  if (strcmp(mode, "main-pthread-exit") == 0) return main_pthread_exit(library, 1);
  if (strcmp(mode, "main-pthread-exit-unattached") == 0) return main_pthread_exit(library, 0);
  if (strcmp(mode, "dlclose") == 0) return dlclose_then_exit(library);
  if (strcmp(mode, "first-call-in-key-destructor") == 0)
    return first_call_in_key_destructor(library, argc > 3 ? atoi(argv[3]) : 20000);
  if (strcmp(mode, "keys-exhausted-after-load") == 0) return keys_exhausted_after_load(library);
  if (strcmp(mode, "section2-after-teardown") == 0) return section2_after_teardown(library);
  if (strcmp(mode, "sections-after-teardown") == 0) return sections_after_teardown(library);
  if (strcmp(mode, "fork-child-main-exit") == 0) return fork_child_main_exit(library);
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
