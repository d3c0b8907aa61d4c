/* A tiny extension module built twice, under two names, against the
 * installed wheel with ft_weave.setup_helpers.WeaveExtension
 * (wheel_test.py one-copy). Each build links libft_weave.so.1 itself; one
 * copy of the library in the process means both modules and the ctypes
 * package get the same weave_static_get() storage for the same key.
 *
 *   FTW_EXT_NAME   the module's name (a C identifier), set by the build
 *
 *   static_address() -> int    address weave_static_get(KEY) returns
 *   static_value() -> int      the uint64_t stored there
 *   static_set(int)            store a value there
 *   library_path() -> str      the file the dynamic loader took ft_weave from
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <dlfcn.h>
#include <stdint.h>

#include <ft_weave.h>

#ifndef FTW_EXT_NAME
#error "build with -DFTW_EXT_NAME=<module name>"
#endif
#define FTW_CAT2(a, b) a##b
#define FTW_CAT(a, b) FTW_CAT2(a, b)
#define FTW_STR2(a) #a
#define FTW_STR(a) FTW_STR2(a)

#define KEY "ft_weave.test:wheel_one_copy"

static uint64_t *get_static(void) {
  uint64_t *p = (uint64_t *)weave_static_get(KEY, sizeof(uint64_t), NULL, NULL);
  if (p == NULL) {
    PyErr_Format(PyExc_RuntimeError, "weave_static_get: %s", weave_last_error());
  }
  return p;
}

static PyObject *static_address(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  uint64_t *p = get_static();
  return p == NULL ? NULL : PyLong_FromVoidPtr(p);
}

static PyObject *static_value(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  uint64_t *p = get_static();
  return p == NULL ? NULL : PyLong_FromUnsignedLongLong(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static PyObject *static_set(PyObject *self, PyObject *arg) {
  (void)self;
  unsigned long long v = PyLong_AsUnsignedLongLong(arg);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    return NULL;
  }
  uint64_t *p = get_static();
  if (p == NULL) {
    return NULL;
  }
  __atomic_store_n(p, (uint64_t)v, __ATOMIC_RELEASE);
  Py_RETURN_NONE;
}

static PyObject *library_path(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  Dl_info info;
  if (dladdr((void *)&weave_static_get, &info) == 0 || info.dli_fname == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "dladdr(weave_static_get) failed");
    return NULL;
  }
  return PyUnicode_DecodeFSDefault(info.dli_fname);
}

static PyMethodDef methods[] = {
    {"static_address", static_address, METH_NOARGS, NULL},
    {"static_value", static_value, METH_NOARGS, NULL},
    {"static_set", static_set, METH_O, NULL},
    {"library_path", library_path, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* no state of its own: safe without the GIL */
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, FTW_STR(FTW_EXT_NAME), NULL, 0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC FTW_CAT(PyInit_, FTW_EXT_NAME)(void) { return PyModuleDef_Init(&module); }
