/* Links against the installed libft_weave and checks that the header and the
 * library it found agree, and that a thread-exit destructor runs. */
#include <ft_weave.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static weave_local void *t_value;
static int calls;

static void destructor(void *value) {
  if (value == &calls) {
    calls++;
  }
}

static void *worker(void *arg) {
  (void)arg;
  t_value = &calls;
  weave_register_destructor(&t_value, destructor);
  return NULL;
}

int main(void) {
  pthread_t t;
  if (strcmp(weave_version(), FT_WEAVE_VERSION_STRING) != 0 || weave_abi_version() != FT_WEAVE_ABI_VERSION) {
    fprintf(stderr, "version mismatch: header %s, library %s\n", FT_WEAVE_VERSION_STRING, weave_version());
    return 1;
  }
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0) {
    return 2;
  }
  if (calls != 1) {
    fprintf(stderr, "destructor ran %d times\n", calls);
    return 3;
  }
  printf("consumer: ft_weave %s ok\n", weave_version());
  return 0;
}
