"""Code ported from ft_utils: `if (_py_register_wvls_destructor(...)) return NULL;`.

ft_utils' helper goes through Python (ft_utils.weave.register_native_destructor),
so when it fails a Python exception is set and the extension function's NULL
propagates it. ft_weave's must do the same, with the exception types of
ft_weave.weave (ValueError for rejected arguments, MemoryError, RuntimeError)
and a message carrying weave_last_error(); not a SystemError about a NULL
returned without an exception. Run by CTest for every test interpreter, with
the extension module ftw_sections_ext (ctests/python/sections_ext.c) on
PYTHONPATH.
"""

import ctypes
import unittest

import ftw_sections_ext as ext


class PortedRegisterTest(unittest.TestCase):
    def check_failure(self, call, what, detail):
        with self.assertRaises(ValueError) as caught:
            call()
        message = str(caught.exception)
        # The library's own text, as weave_last_error() has it now.
        last = ext.last_error()
        self.assertIn(detail, last)
        self.assertEqual(message, "%s: %s" % (what, last))

    def test_null_variable_raises_value_error(self):
        self.check_failure(lambda: ext.ported_register(1), "_py_register_wvls_destructor", "var is NULL")

    def test_null_destructor_raises_value_error(self):
        self.check_failure(lambda: ext.ported_register(2), "_py_register_wvls_destructor", "destructor is NULL")

    def test_unregister_null_is_not_a_failure(self):
        # As ft_utils (its helper unregisters address 0 through Python and
        # gets False): 0 with *unregistered = 0, no exception.
        self.assertFalse(ext.ported_unregister(True))

    def test_success_sets_nothing(self):
        self.assertEqual(ext.register_ok_status(), (0, False))
        self.assertIsNone(ext.ported_register(0))
        self.assertTrue(ext.ported_unregister(False))
        self.assertFalse(ext.ported_unregister(False))

    def test_failure_after_success_and_again(self):
        # The exception is set by each failing call, not left over.
        for _ in range(100):
            self.assertIsNone(ext.ported_register(0))
            with self.assertRaises(ValueError):
                ext.ported_register(1)
            self.assertTrue(ext.ported_unregister(False))

    def test_native_thread_without_thread_state(self):
        entered, rc, error, exc_is_value, exc_text = ext.register_in_native_thread(False)
        self.assertEqual(rc, 1)
        self.assertIn("var is NULL", error)
        self.assertFalse(exc_is_value)
        self.assertEqual(exc_text, "")

    def test_native_thread_with_pinned_state(self):
        entered, rc, error, exc_is_value, exc_text = ext.register_in_native_thread(True)
        self.assertTrue(entered)
        self.assertEqual(rc, 1)
        self.assertTrue(exc_is_value)
        self.assertEqual(exc_text, "_py_register_wvls_destructor: " + error)

    def test_exported_helper_through_ctypes(self):
        # The exported symbol (for FFIs) behaves the same. The library is
        # already loaded by the extension module: its soname finds that copy.
        # ctypes.PyDLL keeps the thread state attached during the call and
        # raises the exception the function set.
        def helper(loader):
            f = loader("libft_weave.so.1")._py_register_wvls_destructor
            f.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            f.restype = ctypes.c_int
            return f

        with self.assertRaises(ValueError) as caught:
            helper(ctypes.PyDLL)(None, None)
        self.assertEqual(str(caught.exception), "_py_register_wvls_destructor: " + ext.last_error())
        # ctypes.CDLL detaches the thread state around the call: 1, nothing set.
        self.assertEqual(helper(ctypes.CDLL)(None, None), 1)
        self.assertIn("var is NULL", ext.last_error())


if __name__ == "__main__":
    unittest.main()
