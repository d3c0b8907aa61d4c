"""ft_utils' seven weave cases (ft_utils/tests/test_weave.py), rewritten over
ctypes: Python threads register C destructors of the helper library, and the
destructors' effects are checked after the native thread has exited. Plus the
ENABLE_EXPERIMENTAL gate and every argument error."""

import ctypes
import threading
import unittest

import ft_weave
from ft_weave import weave

import support


class WeaveTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.helper = support.helper_library()
        h = cls.helper
        cls.ptr1 = support.variable_address(h, "ptr1")
        cls.ptr2 = support.variable_address(h, "ptr2")
        cls.add_1 = support.function_address(h, "destructor_add_1")
        cls.add_2 = support.function_address(h, "destructor_add_2")
        cls.reset_1 = support.function_address(h, "destructor_reset_1")

    def setUp(self):
        self._saved = ft_weave.ENABLE_EXPERIMENTAL
        ft_weave.ENABLE_EXPERIMENTAL = True
        self.helper.reset()

    def tearDown(self):
        ft_weave.ENABLE_EXPERIMENTAL = self._saved

    # ft_utils' _test_weave.c functions, as calls through the package.
    def register_destructor_1(self):
        weave.register_native_destructor(self.ptr1, self.add_1)

    def register_destructor_2(self):
        weave.register_native_destructor(self.ptr2, self.add_2)

    def register_destructor_reset_1(self):
        weave.register_native_destructor(self.ptr1, self.reset_1)

    def unregister_destructor_1(self):
        return int(weave.unregister_native_destructor(self.ptr1))

    def unregister_destructor_2(self):
        return int(weave.unregister_native_destructor(self.ptr2))

    def called_1(self):
        return self.helper.get_destructor_called_1()

    def called_2(self):
        return self.helper.get_destructor_called_2()


class TestTLSManagement(WeaveTestBase):
    """The seven cases of ft_utils, in its order and with its expectations."""

    def test_register_destructor_1(self):
        support.run_thread(self.register_destructor_1)
        self.assertEqual(self.called_1(), 1)

    def test_unregister_destructor_1(self):
        self.register_destructor_1()
        self.assertEqual(1, self.unregister_destructor_1())

        def thread_func():
            self.register_destructor_1()
            self.unregister_destructor_1()

        support.run_thread(thread_func)
        self.assertEqual(self.called_1(), 0)

    def test_register_destructor_2(self):
        support.run_thread(self.register_destructor_2)
        self.assertEqual(self.called_2(), 1)

    def test_unregister_destructor_2(self):
        self.register_destructor_2()
        self.register_destructor_2()
        self.unregister_destructor_2()
        self.unregister_destructor_2()
        self.assertEqual(0, self.unregister_destructor_2())

        self.register_destructor_2()
        self.assertEqual(1, self.unregister_destructor_2())
        self.assertEqual(0, self.unregister_destructor_1())

        def thread_func():
            self.register_destructor_2()
            self.unregister_destructor_2()

        support.run_thread(thread_func)
        self.assertEqual(self.called_2(), 0)

    def test_unregister_destructor_12(self):
        self.register_destructor_1()
        self.register_destructor_2()
        self.unregister_destructor_2()
        self.unregister_destructor_1()
        self.assertEqual(0, self.unregister_destructor_2())

        def thread_func():
            self.register_destructor_1()
            self.register_destructor_2()
            self.register_destructor_1()
            self.register_destructor_2()
            self.unregister_destructor_1()

        support.run_thread(thread_func)
        self.assertEqual(self.called_2(), 2)
        self.assertEqual(self.called_1(), 0)

    def test_unregister_destructor_sequence(self):
        # Registration order: add, add, reset -> the reset one runs last.
        def thread_func():
            self.register_destructor_1()
            self.register_destructor_1()
            self.register_destructor_reset_1()

        support.run_thread(thread_func)
        self.assertEqual(self.called_1(), 100)

    def test_multiple_threads(self):
        num_threads = 10
        ids = []
        lock = threading.Lock()

        def thread_func():
            with lock:
                ids.append(threading.get_native_id())
            self.register_destructor_1()

        threads = [threading.Thread(target=thread_func) for _ in range(num_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(support.WAIT_LIMIT)
            self.assertFalse(t.is_alive())
        self.assertEqual(len(ids), num_threads)
        for native_id in ids:
            self.assertTrue(support.wait_for_native_exit(native_id))
        self.assertEqual(self.called_1(), num_threads)


class TestDestructorsRunAtExitOnly(WeaveTestBase):
    def test_not_run_before_thread_exit(self):
        # Registered on this (main) thread and removed again: nothing ran.
        self.register_destructor_1()
        self.assertEqual(self.called_1(), 0)
        self.assertTrue(weave.unregister_native_destructor(self.ptr1))
        self.assertFalse(weave.unregister_native_destructor(self.ptr1))
        self.assertEqual(self.called_1(), 0)

    def test_value_read_at_exit(self):
        # The destructor gets *var as it is when the thread exits.
        cell = ctypes.c_void_p(None)

        def thread_func():
            weave.register_native_destructor(ctypes.addressof(cell), self.add_1)
            cell.value = ctypes.c_void_p.in_dll(self.helper, "ptr1").value

        support.run_thread(thread_func)
        self.assertEqual(self.called_1(), 1)


class TestGateAndErrors(WeaveTestBase):
    def test_gate(self):
        ft_weave.ENABLE_EXPERIMENTAL = False
        with self.assertRaisesRegex(RuntimeError, "^Experimental support not enabled for ft_weave$"):
            weave.register_native_destructor(self.ptr1, self.add_1)
        with self.assertRaisesRegex(RuntimeError, "Experimental support not enabled for ft_weave"):
            weave.unregister_native_destructor(self.ptr1)
        # The gate comes first, as in ft_utils: even bad arguments get RuntimeError.
        with self.assertRaises(RuntimeError):
            weave.register_native_destructor("x", None)
        # Checked on every call, not only until the first success.
        ft_weave.ENABLE_EXPERIMENTAL = True
        self.assertFalse(weave.unregister_native_destructor(self.ptr1))
        ft_weave.ENABLE_EXPERIMENTAL = False
        with self.assertRaises(RuntimeError):
            weave.unregister_native_destructor(self.ptr1)

    def test_type_errors(self):
        # ft_utils: TypeError ("an integer is required") for anything that is
        # not an int, objects with __index__ included. bool is an int there,
        # and register(var, True) stored address 1 (a crash at thread exit):
        # registering refuses it here.
        class Address:
            def __index__(self):
                return 1

        for bad in ("1", 1.0, None, b"\x01", [1], object(), Address(), True, False):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(TypeError, "an integer is required"):
                    weave.register_native_destructor(bad, self.add_1)
                with self.assertRaisesRegex(TypeError, "an integer is required"):
                    weave.register_native_destructor(self.ptr1, bad)
                if not isinstance(bad, bool):
                    with self.assertRaisesRegex(TypeError, "an integer is required"):
                        weave.unregister_native_destructor(bad)
        self.assertFalse(weave.unregister_native_destructor(self.ptr1))

    def test_register_refuses_zero_and_negative_addresses(self):
        # ft_utils stored them: 0 was skipped at thread exit, a negative
        # value became a huge address and crashed there. A clear error instead.
        for bad in (0, -1, -(2**63)):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, "must be a positive address"):
                    weave.register_native_destructor(bad, self.add_1)
                with self.assertRaisesRegex(ValueError, "must be a positive address"):
                    weave.register_native_destructor(self.ptr1, bad)
        # Nothing was registered by the refused calls.
        self.assertFalse(weave.unregister_native_destructor(self.ptr1))

    def test_unregister_takes_what_ft_utils_takes(self):
        # As ft_utils: any int that fits a pointer, signed or unsigned; 0,
        # negative values and bools were never registered here: False.
        for value in (0, -1, -(2**63), True, False, 2**64 - 1):
            with self.subTest(value=value):
                self.assertIs(weave.unregister_native_destructor(value), False)
        weave.register_native_destructor(self.ptr1, self.add_1)
        self.assertIs(weave.unregister_native_destructor(self.ptr1), True)

    def test_int_subclasses_accepted(self):
        class Address(int):
            pass

        weave.register_native_destructor(Address(self.ptr1), Address(self.add_1))
        self.assertTrue(weave.unregister_native_destructor(Address(self.ptr1)))

    def test_overflow_errors(self):
        for bad in (2**64, 2**100):
            with self.subTest(bad=bad):
                with self.assertRaises(OverflowError):
                    weave.register_native_destructor(bad, self.add_1)
                with self.assertRaises(OverflowError):
                    weave.register_native_destructor(self.ptr1, bad)
                with self.assertRaises(OverflowError):
                    weave.unregister_native_destructor(bad)
        with self.assertRaises(OverflowError):
            weave.unregister_native_destructor(-(2**63) - 1)

    def test_largest_address_accepted(self):
        top = 2**64 - 1
        self.assertFalse(weave.unregister_native_destructor(top))

    def test_arguments_by_keyword(self):
        # ft_utils takes positional arguments only; this also takes keywords.
        weave.register_native_destructor(var=self.ptr1, destructor=self.add_1)
        self.assertTrue(weave.unregister_native_destructor(var=self.ptr1))


if __name__ == "__main__":
    unittest.main()


_MAIN_THREAD_SCRIPT = r"""
import atexit, ctypes, os, sys
import support

helper = support.helper_library()

def check():
    # Registered before ft_weave's own callback, so it runs after it (atexit
    # is last in, first out), still before the interpreter frees anything.
    called = helper.get_destructor_called_1()
    print("destructor calls at atexit:", called, flush=True)
    if called != 1:
        os._exit(3)

atexit.register(check)

import ft_weave
from ft_weave import weave
ft_weave.ENABLE_EXPERIMENTAL = True

# The registered variable is Python-owned memory (a ctypes array): the
# destructor must run while it is still alive.
cell = (ctypes.c_void_p * 4)()
cell[0] = ctypes.c_void_p.in_dll(helper, "ptr1").value
weave.register_native_destructor(ctypes.addressof(cell),
                                 support.function_address(helper, "destructor_add_1"))
"""


class TestMainThreadAtExit(unittest.TestCase):
    def test_main_thread_destructors_run_before_the_interpreter_finalizes(self):
        import os
        import subprocess
        import sys

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(os.path.abspath(__file__))] + env.get("PYTHONPATH", "").split(os.pathsep))
        done = subprocess.run([sys.executable, "-c", _MAIN_THREAD_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("destructor calls at atexit: 1", done.stdout)
