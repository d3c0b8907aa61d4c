/* C side of python/tests/test_weave.py (ft_utils' _test_weave.c without
 * Python): two thread-local-style variables holding sentinel pointers, and
 * destructors that count their calls. The tests register these with
 * ft_weave.weave.register_native_destructor through ctypes addresses; the
 * destructors run at native thread exit, where no Python may run. */
#include <pthread.h>

#define FTW_HELPER_API __attribute__((visibility("default")))

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;

static int g_value1 = 0x12345678;
static int g_value2 = 0x7654321;

/* The registered variables (ft_utils' ptr1 / ptr2). */
FTW_HELPER_API void *ptr1 = &g_value1;
FTW_HELPER_API void *ptr2 = &g_value2;

static int g_called_1;
static int g_called_2;
static int g_wrong_value_1; /* a destructor saw another value than the sentinel */
static int g_wrong_value_2;

FTW_HELPER_API void reset(void) {
  pthread_mutex_lock(&g_mutex);
  g_called_1 = 0;
  g_called_2 = 0;
  g_wrong_value_1 = 0;
  g_wrong_value_2 = 0;
  pthread_mutex_unlock(&g_mutex);
}

FTW_HELPER_API void destructor_add_1(void *value) {
  pthread_mutex_lock(&g_mutex);
  if (value == &g_value1) {
    g_called_1 += 1;
  } else {
    g_wrong_value_1 = 1;
  }
  pthread_mutex_unlock(&g_mutex);
}

/* Sets the count to 100 instead: shows which of two destructors ran last. */
FTW_HELPER_API void destructor_reset_1(void *value) {
  pthread_mutex_lock(&g_mutex);
  if (value == &g_value1) {
    g_called_1 = 100;
  } else {
    g_wrong_value_1 = 1;
  }
  pthread_mutex_unlock(&g_mutex);
}

FTW_HELPER_API void destructor_add_2(void *value) {
  pthread_mutex_lock(&g_mutex);
  if (value == &g_value2) {
    g_called_2 += 1;
  } else {
    g_wrong_value_2 = 1;
  }
  pthread_mutex_unlock(&g_mutex);
}

/* The count, or -1 if a destructor was called with a wrong value. */
FTW_HELPER_API int get_destructor_called_1(void) {
  int n;
  pthread_mutex_lock(&g_mutex);
  n = g_wrong_value_1 ? -1 : g_called_1;
  pthread_mutex_unlock(&g_mutex);
  return n;
}

FTW_HELPER_API int get_destructor_called_2(void) {
  int n;
  pthread_mutex_lock(&g_mutex);
  n = g_wrong_value_2 ? -1 : g_called_2;
  pthread_mutex_unlock(&g_mutex);
  return n;
}
