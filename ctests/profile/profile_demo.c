/* A program with one hot and one cold weave_mutex_t, for the contention
 * profile's format tests (read_pprof.py, go tool pprof).
 *
 *   profile_demo api PATH   starts the profile, runs, writes PATH
 *   profile_demo env PATH   runs only: FT_WEAVE_PROFILE=contention:PATH
 *                           (set by the caller) writes PATH at exit; a fork
 *                           child that exits first must not write it
 *
 * Four threads run 200 rounds of the hot section (100 us asleep) and every
 * tenth round the cold one (5 us busy). Prints "hot=<address> cold=<address>". Linked with -rdynamic so that
 * dladdr names the two section functions. */
#define _GNU_SOURCE
#include <ft_weave.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static weave_mutex_t hot;
static weave_mutex_t cold;

/* Holds a lock asleep (the hot section), so that waiters park whatever the
 * machine's load, or busy (the cold one). */
static void hold_asleep(long ns) {
  struct timespec ts = {0, ns};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void hold_for(long ns) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

__attribute__((noinline)) void profile_demo_hot_section(void) {
  weave_mutex_lock(&hot);
  hold_asleep(100000);
  weave_mutex_unlock(&hot);
}

__attribute__((noinline)) void profile_demo_cold_section(void) {
  weave_mutex_lock(&cold);
  hold_for(5000);
  weave_mutex_unlock(&cold);
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) {
    profile_demo_hot_section();
    if (i % 10 == 0) {
      profile_demo_cold_section();
    }
  }
  return NULL;
}

static void run(void) {
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) {
    if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
      perror("pthread_create");
      exit(2);
    }
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
  }
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "api") != 0 && strcmp(argv[1], "env") != 0)) {
    fprintf(stderr, "usage: profile_demo api|env PATH\n");
    return 2;
  }
  const char *path = argv[2];
  printf("hot=%p cold=%p\n", (void *)&hot, (void *)&cold);
  fflush(stdout);
  if (strcmp(argv[1], "api") == 0) {
    if (weave_profile_set_rate(1) < 0 || weave_profile_start() != 0) {
      fprintf(stderr, "weave_profile_start: %s\n", weave_last_error());
      return 1;
    }
    run();
    if (weave_profile_write(path) != 0) {
      fprintf(stderr, "weave_profile_write: %s\n", weave_last_error());
      return 1;
    }
    return 0;
  }
  unlink(path);
  /* A call into the library starts it, which reads FT_WEAVE_PROFILE and
   * registers the exit write, before the fork. */
  if (weave_mutex_lock_timed(&cold, -1, WEAVE_LOCK_DONT_DETACH) != WEAVE_LOCK_ACQUIRED) {
    return 1;
  }
  weave_mutex_unlock(&cold);
  pid_t child = fork();
  if (child == 0) {
    /* The child inherits the atexit registration: it must not write. */
    profile_demo_hot_section();
    exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (access(path, F_OK) == 0) {
    fprintf(stderr, "the fork child wrote %s at its exit\n", path);
    return 1;
  }
  run();
  return 0; /* the profile is written after main returns */
}
