"""The contention profile from Python: ft_weave.contention() and the
profile_* functions."""

import ctypes
import gzip
import os
import tempfile
import threading
import time
import unittest

import ft_weave
from ft_weave import profile

import support


class ContentionProfileTest(unittest.TestCase):
    def setUp(self):
        self.previous_rate = ft_weave.set_profile_rate(1)

    def tearDown(self):
        try:
            ft_weave.profile_stop()
        except RuntimeError:
            pass
        ft_weave.set_profile_rate(self.previous_rate)

    def contend(self, hot, cold, threads=4, rounds=40):
        def work():
            for i in range(rounds):
                with hot:
                    time.sleep(0.0005)
                if i % 10 == 0:
                    with cold:
                        pass

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(support.WAIT_LIMIT)
            self.assertFalse(t.is_alive(), "thread did not finish in time")
        return threads * rounds

    def test_hot_lock_on_top(self):
        hot, cold = ft_weave.Mutex(), ft_weave.Mutex()
        ft_weave.profile_start()
        acquisitions = self.contend(hot, cold)
        ft_weave.profile_stop()
        rows = ft_weave.contention()
        self.assertTrue(rows, "no contention recorded")
        hot_address = ctypes.addressof(hot._s)
        self.assertEqual(rows[0].lock, hot_address)  # longest total wait first
        hot_rows = [r for r in rows if r.lock == hot_address]
        count = sum(r.count for r in hot_rows)
        self.assertGreater(count, 0)
        self.assertLessEqual(count, acquisitions)
        for r in rows:
            self.assertIsInstance(r, ft_weave.profile.ContentionRow)
            self.assertLessEqual(r.max_ns, r.total_ns)
            self.assertNotEqual(r.wait_site, 0)
            self.assertNotEqual(r.release_site, 0)
            self.assertIsInstance(profile.describe(r.wait_site), str)
        # Rows are sorted by total wait.
        totals = [r.total_ns for r in rows]
        self.assertEqual(totals, sorted(totals, reverse=True))

    def test_stopped_records_nothing_and_start_clears(self):
        hot, cold = ft_weave.Mutex(), ft_weave.Mutex()
        ft_weave.profile_start()
        self.contend(hot, cold, threads=2, rounds=20)
        ft_weave.profile_stop()
        before = ft_weave.contention()
        self.contend(hot, cold, threads=2, rounds=20)
        self.assertEqual(ft_weave.contention(), before)
        ft_weave.profile_start()
        self.assertEqual(ft_weave.contention(), [])

    def test_write_and_errors(self):
        ft_weave.profile_start()
        with self.assertRaisesRegex(RuntimeError, "already running"):
            ft_weave.profile_start()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "contention.pb.gz")
            ft_weave.profile_write(path)
            with open(path, "rb") as f:
                gzip.decompress(f.read())  # a valid gzip stream
            with self.assertRaisesRegex(ValueError, "cannot write"):
                ft_weave.profile_write(os.path.join(d, "missing", "p.pb.gz"))
        ft_weave.profile_stop()
        with self.assertRaisesRegex(RuntimeError, "not running"):
            ft_weave.profile_stop()
        with self.assertRaisesRegex(ValueError, ">= 1"):
            ft_weave.set_profile_rate(0)


if __name__ == "__main__":
    unittest.main()
