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

// The section-suspension helpers and macros (called with a thread state).
[[maybe_unused]] PyObject *use_suspension_helpers(weave_mutex_t *m, PyObject *callable) {
  PyObject *r;
  WEAVE_BEGIN_CRITICAL_SECTION(m);
  r = weave_py_call_suspended(callable, nullptr, nullptr);
  WEAVE_PY_BEGIN_SUSPEND_SECTIONS
  Py_XDECREF(r);
  r = PyObject_CallNoArgs(callable);
  WEAVE_PY_END_SUSPEND_SECTIONS
  WEAVE_PY_BEGIN_ALLOW_THREADS
  weave_mutex_lock(m);
  (void)weave_mutex_unlock(m);
  WEAVE_PY_END_ALLOW_THREADS
  WEAVE_END_CRITICAL_SECTION();
  return r;
}
}  // namespace
