/* FT_WEAVE_DEBUG, read at the library's first use (ft_weave.h, "Diagnostics:
 * debug mode"). Run by CTest with the variable set in its ENVIRONMENT:
 *   test_debug_env <expected flags> [<text expected on stderr>] [deadlock]
 * stderr goes to a pipe before the first call into the library, so that the
 * default reports (one line each on stderr) can be checked; "deadlock" makes
 * two threads deadlock for 1.5 s (timed locks) while the watchdog runs. */
#define _GNU_SOURCE
#include <ft_weave.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static weave_mutex_t locks[2];
static int holding;

static void *cross(void *arg) {
  int i = (int)(intptr_t)arg;
  (void)weave_mutex_lock_timed(&locks[i], -1, 0); /* exported: tracked */
  __atomic_add_fetch(&holding, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&holding, __ATOMIC_ACQUIRE) < 2) {
    sched_yield();
  }
  if (weave_mutex_lock_timed(&locks[1 - i], 1500000000LL, 0) == WEAVE_LOCK_ACQUIRED) {
    (void)weave_mutex_unlock(&locks[1 - i]);
  }
  (void)weave_mutex_unlock(&locks[i]);
  return NULL;
}

int main(int argc, char **argv) {
  int fds[2];
  int saved;
  char captured[8192];
  ssize_t n;
  int expected;
  int flags;
  if (argc < 2) {
    fprintf(stderr, "usage: %s <flags> [<stderr text>] [deadlock]\n", argv[0]);
    return 2;
  }
  expected = atoi(argv[1]);
  saved = dup(2);
  if (saved < 0 || pipe(fds) != 0 || dup2(fds[1], 2) < 0) {
    perror("pipe");
    return 2;
  }
  (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);

  flags = weave_debug_flags();
  if (argc > 3 && strcmp(argv[3], "deadlock") == 0) {
    pthread_t t[2];
    int i;
    for (i = 0; i < 2; i++) {
      pthread_create(&t[i], NULL, cross, (void *)(intptr_t)i);
    }
    for (i = 0; i < 2; i++) {
      pthread_join(t[i], NULL);
    }
  }

  fflush(stderr);
  dup2(saved, 2);
  close(fds[1]);
  n = read(fds[0], captured, sizeof captured - 1);
  captured[n > 0 ? n : 0] = '\0';
  printf("FT_WEAVE_DEBUG=%s -> flags %d (expected %d); stderr:\n%s\n", getenv("FT_WEAVE_DEBUG") ? getenv("FT_WEAVE_DEBUG") : "(unset)",
         flags, expected, captured);
  if (flags != expected) {
    return 1;
  }
  if (argc > 2 && argv[2][0] != '\0' && strstr(captured, argv[2]) == NULL) {
    printf("missing on stderr: %s\n", argv[2]);
    return 1;
  }
  if (argc <= 2 && captured[0] != '\0') {
    printf("unexpected output on stderr\n");
    return 1;
  }
  return 0;
}
