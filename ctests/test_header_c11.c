/* Compiled as strict C11 with -Wall -Wextra -pedantic -Werror, and included by
 * test_header_cxx17.cpp to be compiled as strict C++17: the header must be clean
 * in both languages, and its inline helpers must work from both. */
#include <ft_weave.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static weave_local void *t_value;
static int calls;
static void *seen;

static void destructor(void *value) {
  calls++;
  seen = value;
}

static void *worker(void *arg) {
  t_value = arg;
  if (_py_register_wvls_destructor(&t_value, destructor) != 0) {
    return NULL;
  }
  return NULL;
}

#define EXPECT(cond)                                             \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                  \
    }                                                            \
  } while (0)

int main(void) {
  static int mark;
  pthread_t t;
  int unregistered = -1;
  wvls_key_t key;

  EXPECT(strcmp(weave_version(), FT_WEAVE_VERSION_STRING) == 0);
  EXPECT(weave_abi_version() == FT_WEAVE_ABI_VERSION);
  EXPECT(pthread_create(&t, NULL, worker, &mark) == 0);
  EXPECT(pthread_join(t, NULL) == 0);
  EXPECT(calls == 1);
  EXPECT(seen == &mark);

  EXPECT(_py_register_wvls_destructor(&t_value, destructor) == 0);
  EXPECT(_py_unregister_wvls_destructor(&t_value, &unregistered) == 0);
  EXPECT(unregistered == 1);
  EXPECT(_py_register_wvls_destructor(NULL, destructor) == 1);
  EXPECT(weave_register_destructor(NULL, NULL) == WEAVE_E_INVALID);
  EXPECT(strlen(weave_last_error()) > 0);

  EXPECT(wvls_key_create(&key, NULL) == 0);
  EXPECT(wvls_set_value(key, &mark) == 0);
  EXPECT(wvls_get_value(key) == &mark);
  EXPECT(wvls_key_delete(key) == 0);
  EXPECT(wvls_key_create(NULL, NULL) == EINVAL);
  #ifdef __cplusplus
  puts("header_cxx17: ok");
#else
  puts("header_c11: ok");
#endif
  return 0;
}
