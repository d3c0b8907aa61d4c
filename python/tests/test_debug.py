"""ft_weave.debug: deadlock detection seen from Python's ft_weave.Mutex."""

import threading
import time
import unittest

import ft_weave
import ft_weave.debug as debug

import support


class DebugModeTest(unittest.TestCase):
    def setUp(self):
        self.reports = []
        self.lock = threading.Lock()

    def tearDown(self):
        debug.set(0)

    def collect(self, text):
        with self.lock:
            self.reports.append(text)

    def test_inverted_order_is_reported_once(self):
        debug.set(debug.LOCK_ORDER, self.collect)
        self.assertEqual(debug.flags(), debug.LOCK_ORDER)
        a, b = ft_weave.Mutex(), ft_weave.Mutex()

        def a_then_b():
            for _ in range(3):
                with a:
                    with b:
                        pass

        def b_then_a():
            for _ in range(3):
                with b:
                    with a:
                        pass

        for target in (a_then_b, b_then_a):
            t = threading.Thread(target=target)
            t.start()
            t.join(support.WAIT_LIMIT)
        self.assertEqual(len([r for r in self.reports if "lock order" in r]), 1, self.reports)

    def test_live_deadlock_is_found(self):
        debug.set(debug.LIVE_DEADLOCK, self.collect)
        locks = [ft_weave.Mutex(), ft_weave.Mutex()]
        holding = threading.Barrier(2)
        ids = [0, 0]

        def cross(i):
            ids[i] = ft_weave._native.lib().weave_thread_id()
            locks[i].acquire()
            holding.wait()
            if locks[1 - i].acquire(timeout=2.0):  # the timeout ends the deadlock
                locks[1 - i].release()
            locks[i].release()

        threads = [threading.Thread(target=cross, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        found = 0
        deadline = time.monotonic() + 1.5
        while found == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
            found = debug.check_deadlocks()
        for t in threads:
            t.join(support.WAIT_LIMIT)
        self.assertEqual(found, 1)
        text = "\n".join(self.reports)
        self.assertIn("deadlock", text)
        for thread_id in ids:
            self.assertIn("thread %d" % thread_id, text)
        self.assertEqual(debug.check_deadlocks(), 0)

    def test_bad_flags(self):
        with self.assertRaises(ValueError) as cm:
            debug.set(64)
        self.assertIn("unknown flags", str(cm.exception))
        self.assertEqual(debug.flags(), 0)


if __name__ == "__main__":
    unittest.main()
