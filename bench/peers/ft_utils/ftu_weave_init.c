/*
 * Bench-only glue for the ft_utils weave peer (bench/CMakeLists.txt builds
 * ft_utils' _weave.c from FT_WEAVE_BENCH_FT_UTILS_DIR into the same shared
 * library as this file, with its public names prefixed ftu_).
 *
 * _weave.c creates its destructor key in the module's Py_mod_exec slot, i.e.
 * when Python imports it. lockbench runs no interpreter: ftu_weave_init finds
 * that slot through the module definition PyInit__weave returns (multi-phase
 * init: PyModuleDef_Init only tags the static definition, it needs no
 * interpreter) and calls it once. On Linux the slot ignores its module
 * argument and only calls pthread_key_create.
 */
#include <Python.h>

PyMODINIT_FUNC PyInit__weave(void);

int ftu_weave_init(void) {
  PyModuleDef *def = (PyModuleDef *)PyInit__weave();
  if (def == NULL || def->m_slots == NULL) {
    return -1;
  }
  for (PyModuleDef_Slot *slot = def->m_slots; slot->slot != 0; slot++) {
    if (slot->slot == Py_mod_exec) {
      int (*exec)(PyObject *) = (int (*)(PyObject *))slot->value;
      return exec(NULL);
    }
  }
  return -1;
}
