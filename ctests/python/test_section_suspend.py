"""ft_weave critical sections and blocking inside Python (ft_weave_python.h).

The pattern: thread A is inside an ft_weave section and calls back into
Python; the callback waits on a threading.Lock that thread B holds while B
enters the same section. A section is suspended only while its thread blocks
inside ft_weave, so without help A keeps the section locked while it waits
for the lock, and B waits for the section: a deadlock. Here A's wait is timed
(the bounded control reports it); with weave_py_call_suspended or the
WEAVE_PY_BEGIN/END_SUSPEND_SECTIONS pair around the call, the section is
free during the callback and the pattern completes, every time.

The same for blocking native code inside a section: Py_BEGIN_ALLOW_THREADS
keeps the section locked, WEAVE_PY_BEGIN_ALLOW_THREADS suspends it.

Run by CTest for every test interpreter (threads truly parallel on 3.13t).
"""

import sys
import threading
import unittest

import ftw_sections_ext as ext

PLAIN, SUSPENDED, BLOCK = 0, 1, 2
ROUNDS = 200           # pattern repetitions with a helper
CONTROL_ROUNDS = 3     # without: each costs CONTROL_TIMEOUT
CONTROL_TIMEOUT = 0.3  # seconds A waits for the lock before reporting the deadlock
HELPER_TIMEOUT = 20.0  # only reached if the helper did not help


def callback_pattern(mode, timeout, nested=False):
    """One round: True if A's callback got the lock, False if it timed out
    (the deadlock, reported instead of hanging)."""
    lock = threading.Lock()
    b_has_lock = threading.Event()
    a_inside = threading.Event()
    b_errors = []

    def thread_b():
        try:
            with lock:
                b_has_lock.set()
                if not a_inside.wait(HELPER_TIMEOUT):
                    b_errors.append("A never entered its section")
                ext.section_enter()  # waits while A holds the section
        except BaseException as e:  # reported by the main thread
            b_errors.append(repr(e))

    def callback():
        a_inside.set()
        if not b_has_lock.wait(HELPER_TIMEOUT):
            raise AssertionError("B never took the lock")
        if nested:
            ext.other_section_enter()
        got = lock.acquire(timeout=timeout)
        if got:
            lock.release()
        return got

    b = threading.Thread(target=thread_b)
    b.start()
    try:
        if not b_has_lock.wait(HELPER_TIMEOUT):
            raise AssertionError("B never took the lock")
        got = ext.section_call(callback, mode)
    finally:
        b.join(HELPER_TIMEOUT)
    if b.is_alive():
        raise AssertionError("B is still blocked after A left its section")
    if b_errors:
        raise AssertionError("B: %s" % b_errors)
    return got


def native_pattern(suspend, timeout):
    """One round of the native variant: True if the waiter inside the section
    was woken by a thread that entered the same section."""
    posted = []

    def poster():
        posted.append(ext.post_in_section(HELPER_TIMEOUT))

    p = threading.Thread(target=poster)
    p.start()
    try:
        woken = ext.wait_in_section(timeout, suspend)
    finally:
        p.join(HELPER_TIMEOUT)
    if p.is_alive() or posted != [True]:
        raise AssertionError("the poster did not finish: %r" % posted)
    return woken


class CallbackDeadlockTest(unittest.TestCase):
    def test_control_plain_call_deadlocks(self):
        # Without a helper the callback cannot get the lock: B holds it and
        # waits for the section A holds. The timed acquire reports it.
        for _ in range(CONTROL_ROUNDS):
            self.assertFalse(callback_pattern(PLAIN, CONTROL_TIMEOUT))

    def test_call_suspended_completes(self):
        before = ext.counter()
        for i in range(ROUNDS):
            self.assertTrue(callback_pattern(SUSPENDED, HELPER_TIMEOUT), "round %d" % i)
        # Each round: A's section counts twice, B's once.
        self.assertEqual(ext.counter() - before, 3 * ROUNDS)

    def test_suspend_block_completes(self):
        for i in range(ROUNDS):
            self.assertTrue(callback_pattern(BLOCK, HELPER_TIMEOUT), "round %d" % i)

    def test_nested_section_does_not_resume_the_suspended_one(self):
        # Python code that begins and ends a section of its own during the
        # call must not re-take the caller's (suspended) section as it ends:
        # the helpers nest the call's sections inside a barrier of their own.
        for mode in (SUSPENDED, BLOCK):
            def callback():
                before = ext.section_is_locked()
                ext.other_section_enter()
                return before, ext.section_is_locked()
            self.assertEqual(ext.section_call(callback, mode), (False, False))
        # Control: a plain call keeps it locked throughout.
        self.assertEqual(ext.section_call(lambda: (ext.section_is_locked(),), PLAIN), (True,))

    def test_nested_section_then_lock_completes(self):
        # The pattern with a section begun and ended by the callback before
        # it waits for the lock.
        for i in range(ROUNDS // 2):
            self.assertTrue(callback_pattern(SUSPENDED, HELPER_TIMEOUT, nested=True), "round %d" % i)

    def test_exception_passes_through(self):
        def boom():
            raise KeyError("from the callback")

        for mode in (PLAIN, SUSPENDED, BLOCK):
            with self.assertRaises(KeyError):
                ext.section_call(boom, mode)
        self.assertIsInstance(ext.counter(), int)  # the section is free again


class NativeBlockingTest(unittest.TestCase):
    def test_control_allow_threads_deadlocks(self):
        for _ in range(CONTROL_ROUNDS):
            self.assertFalse(native_pattern(False, CONTROL_TIMEOUT))

    def test_weave_allow_threads_completes(self):
        for i in range(ROUNDS):
            self.assertTrue(native_pattern(True, HELPER_TIMEOUT), "round %d" % i)


class ParallelTest(unittest.TestCase):
    def test_many_threads_call_suspended(self):
        # Several threads use the helper at once while others enter the same
        # section: nothing deadlocks, and the counter (updated only inside the
        # section) adds up.
        threads = 4
        per_thread = 300
        before = ext.counter()
        errors = []

        def caller():
            try:
                for _ in range(per_thread):
                    ext.section_call(ext.section_enter, SUSPENDED)
            except BaseException as e:
                errors.append(repr(e))

        def enterer():
            try:
                for _ in range(per_thread):
                    ext.section_enter()
            except BaseException as e:
                errors.append(repr(e))

        ts = [threading.Thread(target=caller) for _ in range(threads)]
        ts += [threading.Thread(target=enterer) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in ts), "threads still running after 60 s")
        self.assertEqual(errors, [])
        # caller: 2 in its section + 1 in the nested section_enter; enterer: 1.
        self.assertEqual(ext.counter() - before, threads * per_thread * 4)

    @unittest.skipUnless(hasattr(sys, "_is_gil_enabled"), "no free-threaded build before 3.13")
    def test_module_keeps_the_gil_off(self):
        if "t" in sys.abiflags:
            self.assertFalse(sys._is_gil_enabled())


if __name__ == "__main__":
    unittest.main()
