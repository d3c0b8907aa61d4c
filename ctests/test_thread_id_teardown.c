/*
 * weave_thread_id is the same in a thread's weave_register_destructor
 * destructors and pthread key destructors as during its life (issue 11,
 * finding 18). glibc clears every key's value before it runs that key's
 * destructor; the library's id key puts its value back, so key destructors
 * that run after it still see the thread's id.
 *
 * A plain program: the test's key must be created before the library's
 * runtime starts in the process, so that its destructor runs before the
 * runtime detaches the thread (calls after that are issue 11, finding 4,
 * handled elsewhere). Exit status 0 = pass.
 */
#include <ft_weave.h>

#include <pthread.h>
#include <stdio.h>

static pthread_key_t early_key;
static void *registered;
static uint64_t id_alive, id_in_registered_destructor, id_in_key_destructor;

static void record_in_key_destructor(void *value) {
  (void)value;
  id_in_key_destructor = weave_thread_id();
}

static void record_in_registered_destructor(void *value) {
  (void)value;
  id_in_registered_destructor = weave_thread_id();
}

static void *thread_main(void *arg) {
  (void)arg;
  id_alive = weave_thread_id();
  (void)pthread_setspecific(early_key, &early_key);
  if (weave_register_destructor(&registered, record_in_registered_destructor) != 0) {
    return NULL;
  }
  return NULL;
}

int main(void) {
  /* Before any call into the library in this process. */
  if (pthread_key_create(&early_key, record_in_key_destructor) != 0) {
    return 2;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
    return 2;
  }
  printf("alive %llu, registered destructor %llu, key destructor %llu\n", (unsigned long long)id_alive,
         (unsigned long long)id_in_registered_destructor, (unsigned long long)id_in_key_destructor);
  return id_alive != 0 && id_in_registered_destructor == id_alive && id_in_key_destructor == id_alive ? 0 : 1;
}
