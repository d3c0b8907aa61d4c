/* What loading libft_weave.so and its first calls cost a process: the
 * threads the .NET runtime starts, the signal handlers it installs, resident
 * memory and time. The README's "Run-time footprint" figures come from this
 * program (CTest `footprint`, which prints them).
 *
 *   footprint <path of libft_weave.so.1> [max-threads]
 *
 * The library is dlopen()ed so that the state before it is loaded can be
 * measured too. Stages: before dlopen; after dlopen; after the first call
 * (weave_version, an export written in C#: it starts the runtime); after a
 * contended mutex (a second thread parks in the parking lot and is woken).
 * Checks what the README says: the first call starts at most `max-threads`
 * threads (default 2), a contended lock none; the signals whose disposition
 * changes are exactly SIGSEGV, SIGFPE, SIGPIPE (SIG_DFL -> SIG_IGN) and
 * SIGRTMIN (the .NET runtime's); and a second run ("preinstalled") in which
 * the program installs its own SIGPIPE, SIGSEGV, SIGFPE and SIGINT handlers
 * before loading the library checks which of them survive the first call
 * (SIGINT does; SIGPIPE becomes SIG_IGN even then).
 *
 *   footprint <lib> [max-threads [preinstalled]] */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSIG_MAX 65

typedef struct {
  int threads;
  long rss_kb;
  struct sigaction sa[NSIG_MAX];
} snapshot_t;

static int count_threads(void) {
  int n = 0;
  DIR *dir = opendir("/proc/self/task");
  struct dirent *e;
  if (dir == NULL) return -1;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(dir);
  return n;
}

/* Prints the names (comm) of the process's threads other than the caller. */
static void print_thread_names(void) {
  char path[300], name[64];
  struct dirent *e;
  DIR *dir = opendir("/proc/self/task");
  long me = (long)getpid();
  if (dir == NULL) return;
  printf("footprint: threads other than main:");
  while ((e = readdir(dir)) != NULL) {
    FILE *f;
    if (e->d_name[0] == '.' || atol(e->d_name) == me) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    f = fopen(path, "r");
    if (f == NULL) continue;
    if (fgets(name, sizeof name, f) != NULL) {
      name[strcspn(name, "\n")] = 0;
      printf(" \"%s\"", name);
    }
    fclose(f);
  }
  closedir(dir);
  printf("\n");
}

static long rss_kb(void) {
  char line[256];
  long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  }
  fclose(f);
  return kb;
}

static void snap(snapshot_t *s) {
  int sig;
  s->threads = count_threads();
  s->rss_kb = rss_kb();
  for (sig = 1; sig < NSIG_MAX; sig++) {
    memset(&s->sa[sig], 0, sizeof s->sa[sig]);
    (void)sigaction(sig, NULL, &s->sa[sig]); /* EINVAL for SIGKILL... leaves zeros */
  }
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int changed(const snapshot_t *a, const snapshot_t *b, int sig) {
  return a->sa[sig].sa_handler != b->sa[sig].sa_handler || a->sa[sig].sa_flags != b->sa[sig].sa_flags;
}

static const char *disposition(const struct sigaction *sa) {
  if (sa->sa_handler == SIG_DFL) return "SIG_DFL";
  if (sa->sa_handler == SIG_IGN) return "SIG_IGN";
  return "handler";
}

/* Prints the signals whose disposition changed; returns how many differ from
 * the documented set `expected` (a 0-terminated list). */
static int report_signals(const char *stage, const snapshot_t *a, const snapshot_t *b, const int *expected) {
  int sig, wrong = 0, any = 0;
  printf("footprint: %s: signal dispositions changed:", stage);
  for (sig = 1; sig < NSIG_MAX; sig++) {
    int listed = 0;
    const int *e;
    for (e = expected; *e != 0; e++) listed |= *e == sig;
    if (changed(a, b, sig)) {
      const char *name = sigabbrev_np(sig);
      any = 1;
      if (name != NULL) {
        printf(" SIG%s", name);
      } else {
        printf(" SIGRTMIN+%d", sig - SIGRTMIN);
      }
      printf("(%s->%s)", disposition(&a->sa[sig]), disposition(&b->sa[sig]));
    }
    wrong += changed(a, b, sig) != listed;
  }
  printf("%s\n", any ? "" : " none");
  return wrong;
}

static void program_handler(int sig) { (void)sig; }

static void time_thread_calls(void);

typedef void lock_fn(void *);
typedef int unlock_fn(void *);
static lock_fn *mutex_lock;
static unlock_fn *mutex_unlock;
static uint8_t mutex_bytes[2];

static void *contender(void *arg) {
  (void)arg;
  mutex_lock(mutex_bytes); /* parks until main unlocks */
  mutex_unlock(mutex_bytes);
  return NULL;
}

int main(int argc, char **argv) {
  static snapshot_t s0, s1, s2, s3;
  const char *(*version)(void);
  void *lib;
  int64_t t0, t_open, t_first, t_second, t_third;
  int max_threads = argc > 2 ? atoi(argv[2]) : 2, wrong = 0;
  int preinstalled = argc > 3 && strcmp(argv[3], "preinstalled") == 0;
  static const int none[] = {0};
  int runtime_signals[] = {SIGSEGV, SIGFPE, SIGPIPE, 0, 0};
  pthread_t t;
  struct timespec ms20 = {0, 20 * 1000 * 1000};

  if (argc < 2) {
    fprintf(stderr, "usage: footprint <libft_weave.so.1> [max-threads]\n");
    return 2;
  }
  runtime_signals[3] = SIGRTMIN;
  if (preinstalled) {
    static const int mine[] = {SIGPIPE, SIGSEGV, SIGFPE, SIGINT};
    struct sigaction sa;
    size_t i;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_handler;
    for (i = 0; i < sizeof mine / sizeof mine[0]; i++) sigaction(mine[i], &sa, NULL);
  }
  snap(&s0);
  t0 = now_ns();
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  t_open = now_ns() - t0;
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  snap(&s1);
  *(void **)&version = dlsym(lib, "weave_version");
  *(void **)&mutex_lock = dlsym(lib, "weave_mutex_lock");
  *(void **)&mutex_unlock = dlsym(lib, "weave_mutex_unlock");
  if (version == NULL || mutex_lock == NULL || mutex_unlock == NULL) {
    fprintf(stderr, "dlsym: %s\n", dlerror());
    return 2;
  }
  t0 = now_ns();
  (void)version();
  t_first = now_ns() - t0;
  t0 = now_ns();
  (void)version();
  t_second = now_ns() - t0;
  t0 = now_ns();
  (void)version();
  t_third = now_ns() - t0;
  /* Let threads the runtime starts in the background show up. */
  nanosleep(&ms20, NULL);
  snap(&s2);

  mutex_lock(mutex_bytes);
  if (pthread_create(&t, NULL, contender, NULL) != 0) return 2;
  nanosleep(&ms20, NULL); /* the contender spins, then parks */
  mutex_unlock(mutex_bytes);
  pthread_join(t, NULL);
  nanosleep(&ms20, NULL);
  snap(&s3);

  printf("footprint: library %s, version %s\n", argv[1], version());
  printf("footprint: threads: %d before dlopen, %d after dlopen, %d after the first call, %d after a contended lock\n",
         s0.threads, s1.threads, s2.threads, s3.threads);
  printf("footprint: VmRSS: %ld kB before dlopen, +%ld kB after dlopen, +%ld kB after the first call, +%ld kB after a "
         "contended lock\n",
         s0.rss_kb, s1.rss_kb - s0.rss_kb, s2.rss_kb - s1.rss_kb, s3.rss_kb - s2.rss_kb);
  printf("footprint: time: dlopen %.1f us, first call %.1f us, second call %.3f us, third call %.3f us\n",
         t_open / 1e3, t_first / 1e3, t_second / 1e3, t_third / 1e3);
  time_thread_calls();
  print_thread_names();
  wrong += report_signals("dlopen", &s0, &s1, none);
  /* With the program's own handlers installed before, the same four change:
   * the runtime installs its SIGSEGV/SIGFPE handlers over the program's
   * (chaining to them for faults outside managed code) and sets SIGPIPE to
   * SIG_IGN even over a handler of the program's; SIGINT stays the
   * program's. */
  wrong += report_signals(preinstalled ? "first call (program's handlers installed before)" : "first call", &s1, &s2,
                          runtime_signals);
  wrong += report_signals("contended lock", &s2, &s3, none);

  if (s2.threads - s0.threads > max_threads) {
    fprintf(stderr, "FAIL: the library started %d threads (at most %d documented)\n", s2.threads - s0.threads,
            max_threads);
    return 1;
  }
  if (s3.threads != s2.threads) {
    fprintf(stderr, "FAIL: a contended lock changed the thread count (%d -> %d)\n", s2.threads, s3.threads);
    return 1;
  }
  if (wrong != 0) {
    fprintf(stderr, "FAIL: %d signal dispositions differ from the documented ones (README)\n", wrong);
    return 1;
  }
  return 0;
}

/* The first call on a thread the runtime has not seen (it attaches the
 * thread) against later calls on it. */
static const char *(*thread_version)(void);
static int64_t thread_first, thread_second;
static void *thread_calls(void *arg) {
  int64_t t0 = now_ns();
  (void)thread_version();
  thread_first = now_ns() - t0;
  t0 = now_ns();
  (void)thread_version();
  thread_second = now_ns() - t0;
  return arg;
}
static void time_thread_calls(void) {
  pthread_t t;
  *(void **)&thread_version = dlsym(RTLD_DEFAULT, "weave_version");
  if (thread_version == NULL) {
    void *lib = dlopen("libft_weave.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib != NULL) *(void **)&thread_version = dlsym(lib, "weave_version");
  }
  if (thread_version == NULL || pthread_create(&t, NULL, thread_calls, NULL) != 0) return;
  pthread_join(t, NULL);
  printf("footprint: time on a new thread: first call %.1f us, second call %.3f us\n", thread_first / 1e3,
         thread_second / 1e3);
}
