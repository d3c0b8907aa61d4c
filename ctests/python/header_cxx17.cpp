// ft_weave_python.h must compile warning-free as C++17 (-Wall -Wextra
// -pedantic -Werror); the C programs next to it exercise its behaviour.
#include <ft_weave_python.h>

namespace {
[[maybe_unused]] int use_every_function() {
  if (weave_py_enter() != 0) {
    return -1;
  }
  weave_py_exit();
  weave_py_release();
  return static_cast<int>(weave_py_thread_states_created() + weave_py_thread_states_destroyed() +
                          weave_py_thread_states_abandoned());
}
}  // namespace
