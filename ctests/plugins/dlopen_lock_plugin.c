/*
 * A plugin whose constructor takes a weave_mutex_t of the program that
 * dlopen()s it (test_parking_lot.cpp, issue 11 finding 11). The mutex's
 * address comes in FTW_DLOPEN_LOCK ("%p"). While the constructor waits,
 * the dlopen()ing thread holds the dynamic loader's lock.
 */
#include <ft_weave.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void take_the_programs_lock(void) {
  const char *text = getenv("FTW_DLOPEN_LOCK");
  void *address = NULL;
  if (text == NULL || sscanf(text, "%p", &address) != 1 || address == NULL) {
    return;
  }
  weave_mutex_t *m = (weave_mutex_t *)address;
  weave_mutex_lock(m); /* parks (detached) until the program's thread releases it */
  (void)weave_mutex_unlock(m);
}
