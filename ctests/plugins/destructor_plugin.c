/* A plugin that registers thread-exit destructors and a wvls key destructor
 * living in its own code, for the unload tests (ctests/reliability/
 * test_unload.cpp): the host dlcloses it while registrations are live. */
#include <ft_weave.h>
#include <stddef.h>

static weave_local void *slot;
static int *ran;

static void plugin_destructor(void *value) {
  (void)value;
  __atomic_add_fetch(ran, 1, __ATOMIC_SEQ_CST);
}

int plugin_register(int *counter) {
  ran = counter;
  slot = &slot;
  return weave_register_destructor(&slot, plugin_destructor);
}

int plugin_unregister(void) { return weave_unregister_destructor(&slot); }

int plugin_key_create(int *counter, wvls_key_t *key) {
  ran = counter;
  return wvls_key_create(key, plugin_destructor);
}

int plugin_tls_set_destructor(int *counter, const char *key) {
  ran = counter;
  return weave_tls_set_destructor(key, plugin_destructor);
}
