/* weave-demo: a few native threads each keep a thread-local buffer and
 * register a thread-exit destructor for it; the destructors run as each thread
 * ends, with the buffer's value at that moment, and free it. */
#include <ft_weave.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4

static weave_local void *t_buffer;          /* one per thread */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static int freed;

static void free_buffer(void *value) {
  pthread_mutex_lock(&print_lock);
  printf("  destructor: freeing \"%s\"\n", value ? (const char *)value : "(null)");
  freed++;
  pthread_mutex_unlock(&print_lock);
  free(value);
}

static void *worker(void *arg) {
  int n = (int)(intptr_t)arg;
  t_buffer = malloc(64);
  snprintf((char *)t_buffer, 64, "thread %d, first buffer", n);
  if (weave_register_destructor(&t_buffer, free_buffer) != 0) {
    fprintf(stderr, "register failed: %s\n", weave_last_error());
    return NULL;
  }
  /* The destructor sees the value at exit, not at registration. */
  free(t_buffer);
  t_buffer = malloc(64);
  snprintf((char *)t_buffer, 64, "thread %d, replaced buffer", n);
  pthread_mutex_lock(&print_lock);
  printf("thread %d (id %#llx) registered a destructor and is exiting\n", n,
         (unsigned long long)weave_thread_id());
  pthread_mutex_unlock(&print_lock);
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS];
  printf("ft_weave %s (ABI %d)\n", weave_version(), weave_abi_version());
  for (int i = 0; i < THREADS; i++) {
    if (pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
  }
  /* Bad input is an error code, never a crash. */
  int rc = weave_register_destructor(NULL, free_buffer);
  printf("register(NULL) -> %d (%s): %s\n", rc, weave_strerror(rc), weave_last_error());
  printf("%d of %d destructors ran\n", freed, THREADS);
  return freed == THREADS ? 0 : 1;
}
