"""Mutex, Event, RWMutex, Once and the parking lot from Python threads."""

import copy
import ctypes
import pickle
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


CLASSES = (ft_weave.Mutex, ft_weave.Event, ft_weave.RWMutex, ft_weave.Once)


def threading_error(**kwargs):
    """The exception threading.Lock().acquire(**kwargs) raises here."""
    try:
        threading.Lock().acquire(**kwargs)
    except Exception as e:  # noqa: B902
        return e
    raise AssertionError("threading.Lock accepted %r" % (kwargs,))


class TestCommon(unittest.TestCase):
    """What every class shares: no copies, no pickling, a repr with the
    state, the address of the C struct and from_address."""

    def test_copy_and_pickle_refused(self):
        for cls in CLASSES:
            obj = cls()
            for what, call in (
                ("copy", copy.copy),
                ("copy", copy.deepcopy),
                ("pickle", pickle.dumps),
                ("pickle", lambda o: pickle.dumps(o, protocol=0)),
            ):
                with self.subTest(cls=cls.__name__, call=call):
                    with self.assertRaisesRegex(TypeError, "cannot %s 'ft_weave.%s' object" % (what, cls.__name__)):
                        call(obj)
            # Inside a container too (deepcopy recurses into it).
            with self.assertRaises(TypeError):
                copy.deepcopy({"lock": obj})

    def test_repr_names_the_state(self):
        m = ft_weave.Mutex()
        self.assertRegex(repr(m), r"^<ft_weave\.Mutex object at 0x[0-9a-f]+: unlocked, address 0x[0-9a-f]+>$")
        with m:
            self.assertIn(": locked,", repr(m))
        self.assertIn("address %#x" % m.address, repr(m))
        e = ft_weave.Event()
        self.assertIn(": unset,", repr(e))
        e.set()
        self.assertIn(": set,", repr(e))
        rw = ft_weave.RWMutex()
        self.assertIn(": unlocked,", repr(rw))
        with rw.read(), rw.read():
            self.assertIn(": read-locked by 2,", repr(rw))
        with rw.write():
            self.assertIn(": write-locked,", repr(rw))
        once = ft_weave.Once()
        self.assertIn(": not done,", repr(once))
        seen = []
        once.call(lambda: seen.append(repr(once)))
        self.assertIn(": running,", seen[0])
        self.assertIn(": done,", repr(once))

    def test_address_is_the_struct_c_code_uses(self):
        lib = ctypes.CDLL(ft_weave.library_path())
        trylock = lib.weave_mutex_trylock
        trylock.argtypes = [ctypes.c_void_p]
        m = ft_weave.Mutex()
        self.assertEqual(trylock(m.address), 1)  # C locks what Python sees
        self.assertTrue(m.locked())
        self.assertFalse(m.acquire(blocking=False))
        m.release()
        notify = lib.weave_event_notify
        notify.argtypes = [ctypes.c_void_p]
        e = ft_weave.Event()
        notify(e.address)
        self.assertTrue(e.wait(0))
        for cls in CLASSES:
            obj = cls()
            self.assertIsInstance(obj.address, int)
            self.assertEqual(obj.address % ctypes.alignment(cls._ctype), 0)

    def test_from_address_wraps_memory_owned_elsewhere(self):
        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                memory = (ctypes.c_uint64 * 2)()  # zeroed, aligned for every struct
                a = cls.from_address(ctypes.addressof(memory), owner=memory)
                b = cls.from_address(ctypes.addressof(memory))
                self.assertEqual(a.address, ctypes.addressof(memory))
                self.assertEqual(b.address, a.address)
        memory = (ctypes.c_uint64 * 1)()
        a = ft_weave.Mutex.from_address(ctypes.addressof(memory), owner=memory)
        b = ft_weave.Mutex.from_address(ctypes.addressof(memory))
        with a:
            self.assertTrue(b.locked())
            self.assertNotEqual(memory[0], 0)
        self.assertFalse(b.locked())
        # The wrapper keeps its owner alive.
        import weakref

        class Owner:
            pass

        owner = Owner()
        ref = weakref.ref(owner)
        keep = ft_weave.Event.from_address(ctypes.addressof(memory), owner=owner)
        del owner
        self.assertIsNotNone(ref())
        del keep
        self.assertIsNone(ref())

    def test_from_address_rejects_bad_addresses(self):
        memory = (ctypes.c_uint64 * 2)()
        base = ctypes.addressof(memory)
        for bad in (0, -8, 2**64):
            with self.assertRaises(ValueError):
                ft_weave.Mutex.from_address(bad)
        with self.assertRaisesRegex(ValueError, "not aligned"):
            ft_weave.RWMutex.from_address(base + 1)
        ft_weave.Mutex.from_address(base + 1)  # two one-byte fields: any address
        for bad in ("1", 1.5, None, True):
            with self.assertRaises(TypeError):
                ft_weave.Mutex.from_address(bad)


class TestThreadingArguments(unittest.TestCase):
    """Every acquire takes threading.Lock.acquire's blocking and timeout, with
    its errors (for the version of Python running the test)."""

    def acquires(self):
        m = ft_weave.Mutex()
        rw = ft_weave.RWMutex()
        word = ctypes.c_uint32(1)
        return {
            "Mutex.acquire": m.acquire,
            "RWMutex.acquire_read": rw.acquire_read,
            "RWMutex.acquire_write": rw.acquire_write,
            "park": lambda **kw: ft_weave.park(word, 0, **kw),
        }

    def test_bad_timeout_types_get_threadings_message(self):
        for name, acquire in self.acquires().items():
            for bad in ("x", None, b"1", [1], object()):
                expected = threading_error(timeout=bad)
                with self.subTest(acquire=name, timeout=bad):
                    with self.assertRaises(type(expected)) as caught:
                        acquire(timeout=bad)
                    self.assertEqual(str(caught.exception), str(expected))

    def test_bad_timeout_values(self):
        for name, acquire in self.acquires().items():
            for kwargs in (
                dict(timeout=-2),
                dict(timeout=-0.5),
                dict(timeout=float("nan")),
                dict(timeout=threading.TIMEOUT_MAX * 2),
                dict(blocking=False, timeout=1),
            ):
                expected = threading_error(**kwargs)
                with self.subTest(acquire=name, **kwargs):
                    with self.assertRaises(type(expected)):
                        acquire(**kwargs)

    def test_event_wait_bad_timeout_type(self):
        expected = threading_error(timeout="x")
        with self.assertRaises(TypeError) as caught:
            ft_weave.Event().wait("x")
        self.assertEqual(str(caught.exception), str(expected))

    def test_numbers_accepted_like_threading(self):
        m = ft_weave.Mutex()
        for timeout in (0, 0.0, 1, True, -1, -1.0):
            with self.subTest(timeout=timeout):
                self.assertTrue(m.acquire(timeout=timeout))
                m.release()


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
        self.assertEqual(list(m._s._bytes), [0, 0])  # back to unlocked, nobody parked

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
        self.assertEqual(e._s.v, 1)

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
        self.assertEqual(rw._s.bits, 0)

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
        self.assertEqual(rw._s.bits & ~ft_weave._native.RWMUTEX_READER_BIAS, 0)

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
        self.assertEqual(rw._s.bits, 0)

    def test_blocking_and_timeout(self):
        rw = ft_weave.RWMutex()
        self.assertTrue(rw.acquire_write(blocking=False))
        self.assertFalse(rw.acquire_read(blocking=False))
        self.assertFalse(rw.acquire_write(timeout=0))
        start = time.monotonic()
        self.assertFalse(rw.acquire_read(timeout=0.05))
        self.assertGreaterEqual(time.monotonic() - start, 0.045)
        rw.release_write()
        self.assertTrue(rw.acquire_read(blocking=False))
        self.assertTrue(rw.acquire_read(timeout=0))  # readers share
        start = time.monotonic()
        self.assertFalse(rw.acquire_write(timeout=0.05))
        self.assertGreaterEqual(time.monotonic() - start, 0.045)
        self.assertEqual(rw.readers, 2)
        self.assertFalse(rw._s.bits & 2)  # the writer that gave up left no has-parked bit
        rw.release_read()
        rw.release_read()
        self.assertEqual(rw._s.bits, 0)

    def test_timed_writer_that_gives_up_lets_queued_readers_in(self):
        rw = ft_weave.RWMutex()
        rw.acquire_read()
        results = {}
        writer = threading.Thread(target=lambda: results.update(writer=rw.acquire_write(timeout=0.2)))
        writer.start()
        deadline = time.monotonic() + support.WAIT_LIMIT
        while not rw._s.bits & 2 and time.monotonic() < deadline:
            time.sleep(0.001)

        def late_reader():
            results["reader"] = rw.acquire_read(timeout=support.WAIT_LIMIT)
            if results["reader"]:
                rw.release_read()

        reader = threading.Thread(target=late_reader)
        reader.start()
        writer.join(support.WAIT_LIMIT)
        reader.join(support.WAIT_LIMIT)  # while this thread still reads
        self.assertEqual(results, {"writer": False, "reader": True})
        rw.release_read()
        self.assertEqual(rw._s.bits, 0)

    def test_release_read_by_a_thread_that_holds_none(self):
        # Another thread holds a read lock: the C lock's reader count alone
        # would let this release succeed and steal that thread's lock.
        rw = ft_weave.RWMutex()
        holding, done = threading.Event(), threading.Event()

        def reader():
            with rw.read():
                holding.set()
                done.wait(support.WAIT_LIMIT)

        t = threading.Thread(target=reader)
        t.start()
        self.assertTrue(holding.wait(support.WAIT_LIMIT))
        with self.assertRaisesRegex(RuntimeError, "holds no read lock"):
            rw.release_read()
        self.assertEqual(rw.readers, 1)
        done.set()
        t.join(support.WAIT_LIMIT)
        self.assertEqual(rw._s.bits, 0)

    def test_release_write_by_another_thread(self):
        rw = ft_weave.RWMutex()
        rw.acquire_write()
        errors = []

        def other():
            try:
                rw.release_write()
            except RuntimeError as e:
                errors.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join(support.WAIT_LIMIT)
        self.assertEqual(len(errors), 1)
        self.assertIn("does not hold the write lock", errors[0])
        self.assertTrue(rw.write_locked)
        rw.release_write()
        self.assertEqual(rw._s.bits, 0)

    def test_misuse(self):
        rw = ft_weave.RWMutex()
        with self.assertRaises(RuntimeError):
            rw.release_read()
        with self.assertRaises(RuntimeError):
            rw.release_write()
        self.assertEqual(rw._s.bits, 0)


class TestOnce(unittest.TestCase):
    def test_runs_once_across_threads(self):
        once = ft_weave.Once()
        runs = []
        results = [None] * THREADS
        barrier = threading.Barrier(THREADS)

        def init():
            runs.append(threading.get_ident())
            time.sleep(0.05)
            return object()

        def work(i):
            barrier.wait(support.WAIT_LIMIT)
            results[i] = once.call(init)

        join_all(self, start_threads(THREADS, work))
        self.assertEqual(len(runs), 1)
        # Every caller got the result of the one run.
        self.assertIsNotNone(results[0])
        self.assertTrue(all(r is results[0] for r in results))
        self.assertTrue(once.done)
        self.assertIs(once.call(init), results[0])
        self.assertEqual(len(runs), 1)

    def test_returns_the_result(self):
        once = ft_weave.Once()
        self.assertEqual(once.call(lambda a, b=0: a + b, 40, b=2), 42)
        self.assertEqual(once.call(lambda: 7), 42)  # already done: the first result
        self.assertIsNone(ft_weave.Once().call(lambda: None))

    def test_failure_resets_and_propagates(self):
        once = ft_weave.Once()

        def fail():
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            once.call(fail)
        self.assertFalse(once.done)
        calls = []
        self.assertIsNone(once.call(calls.append, 1))
        self.assertEqual(calls, [1])
        self.assertTrue(once.done)

    def test_recursive_call_raises_instead_of_hanging(self):
        once = ft_weave.Once()
        inner = []

        def fn():
            try:
                once.call(lambda: "inner")
            except RuntimeError as e:
                inner.append(str(e))
                raise

        with self.assertRaisesRegex(RuntimeError, "inside fn on the same Once"):
            once.call(fn)
        self.assertEqual(len(inner), 1)
        # The failed run reset the flag: a later call runs.
        self.assertFalse(once.done)
        self.assertEqual(once.call(lambda: "later"), "later")

    def test_recursive_call_caught_inside_fn(self):
        once = ft_weave.Once()

        def fn():
            with self.assertRaises(RuntimeError):
                once.call(lambda: None)
            return "outer"

        self.assertEqual(once.call(fn), "outer")
        self.assertTrue(once.done)

    def test_other_flags_from_inside_fn(self):
        outer, inner = ft_weave.Once(), ft_weave.Once()
        self.assertEqual(outer.call(lambda: inner.call(lambda: 3) + 1), 4)


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

    def test_timeout_minus_one_waits_forever_like_threading(self):
        word = ctypes.c_uint32(1)
        results = []
        t = threading.Thread(target=lambda: results.append(ft_weave.park(word, 1, timeout=-1)))
        t.start()
        time.sleep(0.2)
        self.assertTrue(t.is_alive())  # -1 is "forever", not "check once"
        deadline = time.monotonic() + support.WAIT_LIMIT
        while not ft_weave.unpark(word) and time.monotonic() < deadline:
            time.sleep(0.001)
        t.join(support.WAIT_LIMIT)
        self.assertEqual(results, [ft_weave.PARK_OK])
        # blocking=False only checks, as threading.Lock.acquire(False).
        self.assertEqual(ft_weave.park(word, 1, blocking=False), ft_weave.PARK_TIMEOUT)
        self.assertEqual(ft_weave.park(word, 2, blocking=False), ft_weave.PARK_AGAIN)

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

    def test_rwmutex_acquire_write_forever(self):
        self.run_script(
            """
            rw = ft_weave.RWMutex()
            rw.acquire_read()
            rw.acquire_write()
            """
        )

    def test_rwmutex_acquire_read_with_timeout(self):
        self.run_script(
            """
            rw = ft_weave.RWMutex()
            rw.acquire_write()
            rw.acquire_read(timeout=30)
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
