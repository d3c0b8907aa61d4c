/* Built through find_package(ft_weave) from the wheel's CMake package:
 * prints the file the library was loaded from and checks that it works. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ft_weave.h>

int main(void) {
  Dl_info info;
  if (dladdr((void *)&weave_version, &info) == 0 || info.dli_fname == NULL) {
    fprintf(stderr, "dladdr failed\n");
    return 1;
  }
  if (weave_abi_version() != 1) {
    fprintf(stderr, "ABI version %d\n", weave_abi_version());
    return 1;
  }
  static weave_mutex_t m;
  weave_mutex_lock(&m);
  int locked = weave_mutex_is_locked(&m);
  weave_mutex_unlock(&m);
  uint32_t *s = (uint32_t *)weave_static_get("ft_weave.test:wheel_cmake", sizeof(uint32_t), NULL, NULL);
  if (!locked || s == NULL || *s != 0) {
    fprintf(stderr, "library calls failed: %s\n", weave_last_error());
    return 1;
  }
  printf("library=%s\nversion=%s\n", info.dli_fname, weave_version());
  return 0;
}
