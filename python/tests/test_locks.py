"""Mutex, Event, RWMutex, Once and the parking lot from Python threads."""

import ctypes
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import ft_weave

import support

THREADS = 8


def start_threads(n, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def join_all(test, threads):
    for t in threads:
        t.join(support.WAIT_LIMIT)
        test.assertFalse(t.is_alive(), "thread did not finish in time")


class TestMutex(unittest.TestCase):
    def test_counter_with_8_threads(self):
        m = ft_weave.Mutex()
        iterations = 2000
        state = {"count": 0, "inside": 0, "overlaps": 0}

        def work(index):
            for i in range(iterations):
                with m:
                    state["inside"] += 1
                    if state["inside"] != 1:
                        state["overlaps"] += 1
                    value = state["count"]
                    if i % 50 == index % 50:
                        time.sleep(0)  # give up the GIL inside the critical section
                    state["count"] = value + 1
                    state["inside"] -= 1

        join_all(self, start_threads(THREADS, work))
        self.assertEqual(state["overlaps"], 0)
        self.assertEqual(state["count"], THREADS * iterations)
        self.assertFalse(m.locked())
        self.assertEqual(m._m._bits, 0)  # back to unlocked, nobody parked

    def test_acquire_release_like_threading_lock(self):
        m = ft_weave.Mutex()
        self.assertFalse(m.locked())
        self.assertTrue(m.acquire())
        self.assertTrue(m.locked())
        self.assertFalse(m.acquire(blocking=False))
        self.assertFalse(m.acquire(False))
        self.assertFalse(m.acquire(timeout=0))
        m.release()
        self.assertFalse(m.locked())
        self.assertTrue(m.acquire(blocking=False))
        m.release()
        self.assertTrue(m.acquire(timeout=0))
        m.release()
        with self.assertRaisesRegex(RuntimeError, "release unlocked lock"):
            m.release()
        self.assertIn("unlocked", repr(m))

    def test_argument_errors_like_threading_lock(self):
        m = ft_weave.Mutex()
        with self.assertRaises(ValueError):
            m.acquire(blocking=False, timeout=1)
        with self.assertRaises(ValueError):
            m.acquire(timeout=-2)
        with self.assertRaises(OverflowError):
            m.acquire(timeout=threading.TIMEOUT_MAX * 2)
        self.assertFalse(m.locked())

    def test_timeout(self):
        m = ft_weave.Mutex()
        m.acquire()
        start = time.monotonic()
        self.assertFalse(m.acquire(timeout=0.1))
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.09)
        self.assertLess(elapsed, 5)
        m.release()

    def test_blocked_waiter_does_not_stall_other_threads(self):
        m = ft_weave.Mutex()
        m.acquire()
        acquired = []
        t = threading.Thread(target=lambda: acquired.append(m.acquire(timeout=support.WAIT_LIMIT)))
        t.start()
        # The waiter is parked inside a ctypes call (GIL released): this
        # thread keeps running Python meanwhile.
        spins = 0
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            spins += 1
        self.assertGreater(spins, 1000)
        self.assertTrue(t.is_alive())
        m.release()
        t.join(support.WAIT_LIMIT)
        self.assertEqual(acquired, [True])
        m.release()

    def test_release_by_another_thread(self):
        # Like threading.Lock, the mutex has no owner.
        m = ft_weave.Mutex()
        m.acquire()
        t = threading.Thread(target=m.release)
        t.start()
        t.join(support.WAIT_LIMIT)
        self.assertFalse(m.locked())


class TestEvent(unittest.TestCase):
    def test_set_wakes_every_waiter(self):
        e = ft_weave.Event()
        results = [None] * THREADS

        def wait(i):
            results[i] = e.wait(support.WAIT_LIMIT)

        threads = start_threads(THREADS, wait)
        time.sleep(0.05)
        self.assertFalse(e.is_set())
        e.set()
        join_all(self, threads)
        self.assertEqual(results, [True] * THREADS)
        self.assertTrue(e.is_set())

    def test_timeouts(self):
        e = ft_weave.Event()
        self.assertFalse(e.wait(0))
        self.assertFalse(e.wait(-1))
        start = time.monotonic()
        self.assertFalse(e.wait(0.25))  # more than one 100 ms slice
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.24)
        self.assertLess(elapsed, 5)
        e.set()
        self.assertTrue(e.wait(0))
        self.assertTrue(e.wait())
        e.set()  # idempotent
        self.assertTrue(e.is_set())
        self.assertEqual(e._e.v, 1)

    def test_set_from_another_thread_during_wait_without_timeout(self):
        e = ft_weave.Event()
        t = threading.Timer(0.15, e.set)
        t.start()
        start = time.monotonic()
        self.assertTrue(e.wait())
        self.assertLess(time.monotonic() - start, 5)
        t.join(support.WAIT_LIMIT)


class TestRWMutex(unittest.TestCase):
    def test_readers_share_writers_exclude(self):
        rw = ft_weave.RWMutex()
        with rw.read():
            self.assertEqual(rw.readers, 1)
            with rw.read():
                self.assertEqual(rw.readers, 2)
        self.assertEqual(rw.readers, 0)
        with rw.write():
            self.assertTrue(rw.write_locked)
        self.assertEqual(rw._rw.bits, 0)

    def test_concurrent_readers_and_exclusive_writers(self):
        rw = ft_weave.RWMutex()
        state = {"readers": 0, "max_readers": 0, "writers": 0, "violations": 0, "value": 0}
        guard = threading.Lock()
        barrier = threading.Barrier(THREADS)

        def work(index):
            barrier.wait(support.WAIT_LIMIT)
            for i in range(200):
                if index % 4 == 0:
                    with rw.write():
                        with guard:
                            state["writers"] += 1
                            if state["writers"] != 1 or state["readers"] != 0:
                                state["violations"] += 1
                        value = state["value"]
                        time.sleep(0)
                        state["value"] = value + 1
                        with guard:
                            state["writers"] -= 1
                else:
                    with rw.read():
                        with guard:
                            state["readers"] += 1
                            state["max_readers"] = max(state["max_readers"], state["readers"])
                            if state["writers"] != 0:
                                state["violations"] += 1
                        time.sleep(0)
                        with guard:
                            state["readers"] -= 1

        join_all(self, start_threads(THREADS, work))
        self.assertEqual(state["violations"], 0)
        self.assertEqual(state["value"], 2 * 200)
        self.assertGreaterEqual(state["max_readers"], 1)
        # Contending readers may have left the reader bias on (the top bit).
        self.assertEqual(rw._rw.bits & ~ft_weave._native.RWMUTEX_READER_BIAS, 0)

    def test_writer_waits_for_reader(self):
        rw = ft_weave.RWMutex()
        rw.acquire_read()
        wrote = threading.Event()

        def writer():
            with rw.write():
                wrote.set()

        t = threading.Thread(target=writer)
        t.start()
        self.assertFalse(wrote.wait(0.1))
        rw.release_read()
        self.assertTrue(wrote.wait(support.WAIT_LIMIT))
        t.join(support.WAIT_LIMIT)
        self.assertEqual(rw._rw.bits, 0)

    def test_misuse(self):
        rw = ft_weave.RWMutex()
        with self.assertRaises(RuntimeError):
            rw.release_read()
        with self.assertRaises(RuntimeError):
            rw.release_write()
        self.assertEqual(rw._rw.bits, 0)


class TestOnce(unittest.TestCase):
    def test_runs_once_across_threads(self):
        once = ft_weave.Once()
        runs = []
        ran = [None] * THREADS
        barrier = threading.Barrier(THREADS)

        def init():
            runs.append(threading.get_ident())
            time.sleep(0.05)

        def work(i):
            barrier.wait(support.WAIT_LIMIT)
            ran[i] = once.call(init)

        join_all(self, start_threads(THREADS, work))
        self.assertEqual(len(runs), 1)
        self.assertEqual(ran.count(True), 1)
        self.assertTrue(once.done)
        self.assertFalse(once.call(init))

    def test_failure_resets_and_propagates(self):
        once = ft_weave.Once()

        def fail():
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            once.call(fail)
        self.assertFalse(once.done)
        calls = []
        self.assertTrue(once.call(calls.append, 1))
        self.assertEqual(calls, [1])
        self.assertTrue(once.done)


class TestParkingLot(unittest.TestCase):
    def test_again_timeout_and_errors(self):
        word = ctypes.c_uint32(5)
        self.assertEqual(ft_weave.park(word, 4), ft_weave.PARK_AGAIN)
        self.assertEqual(ft_weave.park(word, 5, timeout=0), ft_weave.PARK_TIMEOUT)
        start = time.monotonic()
        self.assertEqual(ft_weave.park(word, 5, timeout=0.05), ft_weave.PARK_TIMEOUT)
        self.assertGreaterEqual(time.monotonic() - start, 0.045)
        self.assertFalse(ft_weave.unpark(word))
        self.assertEqual(ft_weave.unpark_all(word), 0)
        with self.assertRaises(TypeError):
            ft_weave.park(bytearray(4), 0)
        with self.assertRaises(TypeError):
            ft_weave.unpark(ctypes.c_double(0))

    def test_unpark_one_then_all(self):
        for ctype in (ctypes.c_uint8, ctypes.c_uint16, ctypes.c_int32, ctypes.c_uint64):
            with self.subTest(ctype=ctype.__name__):
                word = ctype(1)
                results = []
                guard = threading.Lock()

                def waiter(_i):
                    r = ft_weave.park(word, 1, timeout=support.WAIT_LIMIT)
                    with guard:
                        results.append(r)

                threads = start_threads(3, waiter)
                deadline = time.monotonic() + support.WAIT_LIMIT
                # unpark wakes exactly one (0 until the first waiter parked).
                while not ft_weave.unpark(word) and time.monotonic() < deadline:
                    time.sleep(0.001)
                while len(results) < 1 and time.monotonic() < deadline:
                    time.sleep(0.001)
                self.assertEqual(len(results), 1)
                # unpark_all wakes the other two (possibly over several calls,
                # if one had not parked yet).
                woken = 0
                while woken < 2 and time.monotonic() < deadline:
                    woken += ft_weave.unpark_all(word)
                    time.sleep(0.001)
                self.assertEqual(woken, 2)
                join_all(self, threads)
                self.assertEqual(results, [ft_weave.PARK_OK] * 3)


class TestInterruptible(unittest.TestCase):
    """A signal handler (Ctrl-C's KeyboardInterrupt) runs during a long wait on
    the main thread. In a subprocess, bounded by its timeout."""

    PRELUDE = textwrap.dedent(
        """\
        import signal, sys, time
        import ft_weave

        class Alarm(Exception):
            pass

        def on_alarm(signum, frame):
            raise Alarm()

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = time.monotonic()
        """
    )

    def run_script(self, body):
        script = (
            self.PRELUDE
            + "try:\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "    ")
            + "\nexcept Alarm:\n"
            + "    print('interrupted after %.2f s' % (time.monotonic() - start))\n"
            + "    sys.exit(0)\n"
            + "print('not interrupted')\n"
            + "sys.exit(1)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("interrupted after", proc.stdout)

    def test_mutex_acquire_forever(self):
        self.run_script(
            """
            m = ft_weave.Mutex()
            m.acquire()
            m.acquire()
            """
        )

    def test_mutex_acquire_with_timeout(self):
        self.run_script(
            """
            m = ft_weave.Mutex()
            m.acquire()
            m.acquire(timeout=30)
            """
        )

    def test_event_wait(self):
        self.run_script(
            """
            ft_weave.Event().wait()
            """
        )


if __name__ == "__main__":
    unittest.main()
