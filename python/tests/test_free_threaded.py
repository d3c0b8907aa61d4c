"""Many threading.Thread workers at once on Mutex, RWMutex, Event, Once and
park/unpark: 16 threads released together by a barrier, every wait bounded,
invariants checked. They run on every interpreter; on a free-threaded build
(3.13t, GIL disabled) the workers really run in parallel, which
TestParallel proves (skipped, with the reason, where the GIL is enabled)."""

import ctypes
import sys
import threading
import time
import unittest

import ft_weave

import support

THREADS = 16


def gil_enabled():
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else check()


def run_together(test, n, work):
    """Runs work(index) on n threads released at once by a barrier; fails on
    a worker's exception or a thread still running after the limit."""
    barrier = threading.Barrier(n)
    errors = []

    def body(index):
        try:
            barrier.wait(support.WAIT_LIMIT)
            work(index)
        except BaseException as e:  # reported below
            errors.append((index, e))

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 3 * support.WAIT_LIMIT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    test.assertFalse(any(t.is_alive() for t in threads), "workers did not finish in time")
    if errors:
        raise AssertionError("worker %d failed: %r" % errors[0]) from errors[0][1]


class TestManyThreads(unittest.TestCase):
    def test_mutex_16_threads_counter(self):
        m = ft_weave.Mutex()
        iterations = 1500
        state = {"count": 0, "inside": 0, "overlaps": 0}

        def work(index):
            for _ in range(iterations):
                with m:
                    state["inside"] += 1
                    if state["inside"] != 1:
                        state["overlaps"] += 1
                    value = state["count"]
                    state["count"] = value + 1
                    state["inside"] -= 1

        run_together(self, THREADS, work)
        self.assertEqual(state["overlaps"], 0)
        self.assertEqual(state["count"], THREADS * iterations)
        self.assertFalse(m.locked())
        self.assertEqual(list(m._s._bytes), [0, 0])

    def test_rwmutex_12_readers_4_writers(self):
        rw = ft_weave.RWMutex()
        pair = [0, 0]  # writers set both halves, one after the other
        writers, readers, iterations = 4, 12, 400
        torn = []
        shared = []

        def work(index):
            if index < writers:
                for i in range(iterations):
                    with rw.write():
                        if rw.readers != 0 or not rw.write_locked:
                            torn.append(("writer sees", rw.readers, rw.write_locked))
                        value = index * iterations + i + 1
                        pair[0] = value
                        if i % 64 == 0:
                            time.sleep(0)
                        pair[1] = value
            else:
                for i in range(iterations):
                    with rw.read():
                        a = pair[0]
                        if i % 64 == 0:
                            time.sleep(0)
                        b = pair[1]
                        n = rw.readers
                        # Not write_locked: with the reader bias on, a writer
                        # sets that bit first and then waits for the readers
                        # in the table (this one included) to leave.
                        if a != b or n < 1:
                            torn.append(("reader sees", a, b, rw.write_locked, n))
                        if n > 1:
                            shared.append(n)

        run_together(self, writers + readers, work)
        self.assertEqual(torn, [])
        self.assertEqual(pair[0], pair[1])
        # Contending readers may have left the reader bias on (the top bit).
        self.assertEqual(rw._s.bits & ~ft_weave._native.RWMUTEX_READER_BIAS, 0)

    def test_event_16_waiters_and_a_relay(self):
        start = ft_weave.Event()
        relay = [ft_weave.Event() for _ in range(THREADS + 1)]
        order = []
        before = []

        def work(index):
            before.append(start.is_set())
            if not start.wait(support.WAIT_LIMIT):
                raise AssertionError("start event not seen")
            # Relay: thread i waits for event i and sets event i + 1.
            if not relay[index].wait(support.WAIT_LIMIT):
                raise AssertionError("relay %d not seen" % index)
            order.append(index)
            relay[index + 1].set()

        runner = threading.Thread(target=run_together, args=(self, THREADS, work))
        runner.start()
        deadline = time.monotonic() + support.WAIT_LIMIT
        while len(before) < THREADS and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertEqual(before, [False] * THREADS)
        start.set()
        relay[0].set()
        runner.join(3 * support.WAIT_LIMIT)
        self.assertFalse(runner.is_alive())
        self.assertEqual(order, list(range(THREADS)))
        self.assertTrue(relay[THREADS].wait(0))

    def test_once_16_callers(self):
        once = ft_weave.Once()
        ran = []
        value = {}
        returned = []
        seen = []

        def init():
            ran.append(threading.get_ident())
            time.sleep(0.05)  # the others wait meanwhile
            value["v"] = 42
            return {"config": 42}

        def work(index):
            returned.append(once.call(init))
            seen.append(value.get("v"))

        run_together(self, THREADS, work)
        self.assertEqual(len(ran), 1)
        # Every caller gets the one run's result (the same object).
        self.assertEqual(len(returned), THREADS)
        self.assertTrue(all(r is returned[0] for r in returned))
        self.assertEqual(returned[0], {"config": 42})
        self.assertEqual(seen, [42] * THREADS)  # nobody returned before init finished
        self.assertTrue(once.done)

    def test_park_unpark_16_thread_ring(self):
        # Turn-taking on one word: thread i goes when turn == round * 16 + i,
        # then advances the turn and wakes everyone parked on it.
        turn = ctypes.c_uint32(0)
        rounds = 20
        log = []

        def work(index):
            for r in range(rounds):
                target = r * THREADS + index
                deadline = time.monotonic() + support.WAIT_LIMIT
                while True:
                    seen = turn.value
                    if seen == target:
                        break
                    if time.monotonic() > deadline:
                        raise AssertionError("thread %d never got turn %d (at %d)" % (index, target, seen))
                    ft_weave.park(turn, seen, timeout=1.0)
                log.append(index)
                turn.value = target + 1
                ft_weave.unpark_all(turn)

        run_together(self, THREADS, work)
        self.assertEqual(turn.value, rounds * THREADS)
        self.assertEqual(log, list(range(THREADS)) * rounds)
        self.assertEqual(ft_weave.unpark_all(turn), 0)  # nobody left parked


def spin_until_all(slots, index, deadline):
    """Marks this thread arrived and spins, in pure Python (no call that
    could release a GIL), until every thread has arrived. False on timeout."""
    slots[index] += 1
    goal = slots[index]
    while True:
        if all(v >= goal for v in slots):
            return True
        if time.monotonic() > deadline:
            return False


@unittest.skipUnless(not gil_enabled(), "needs a free-threaded CPython with the GIL disabled "
                     "(sys._is_gil_enabled() is %s here)" % gil_enabled())
class TestParallel(unittest.TestCase):
    def test_workers_run_python_in_parallel(self):
        """16 threads inside one RWMutex read lock meet at two spin barriers
        written in pure Python. With a GIL this cannot complete: the first
        thread to spin keeps the GIL until the switch interval, set to 1000 s
        here, asks it to let go (checked: it times out on 3.11). Without a
        GIL each thread runs its own Python code at the same time as the
        others, preempted only by the OS (so it also holds on a loaded
        machine). The thread CPU time per wall second is reported, not
        asserted: other processes share the CPUs."""
        rw = ft_weave.RWMutex()
        slots = [0] * THREADS
        readers_seen = [0] * THREADS
        cpu = [0.0] * THREADS
        interval = sys.getswitchinterval()
        deadline = time.monotonic() + support.WAIT_LIMIT

        def work(index):
            t0 = time.thread_time()
            with rw.read():
                if not spin_until_all(slots, index, deadline):
                    raise AssertionError("thread %d: the others never arrived (serialized?)" % index)
                readers_seen[index] = rw.readers  # everyone holds the read lock now
                if not spin_until_all(slots, index, deadline):
                    raise AssertionError("thread %d: second barrier timed out" % index)
            cpu[index] = time.thread_time() - t0

        sys.setswitchinterval(1000.0)
        try:
            wall0 = time.monotonic()
            run_together(self, THREADS, work)
            wall = time.monotonic() - wall0
        finally:
            sys.setswitchinterval(interval)
        sys.stderr.write("\n  16 threads met twice in %.3f s (%.2f s of thread CPU time) ... " % (wall, sum(cpu)))
        self.assertEqual(slots, [2] * THREADS)
        self.assertEqual(readers_seen, [THREADS] * THREADS)
        self.assertEqual(rw._s.bits & ~ft_weave._native.RWMUTEX_READER_BIAS, 0)


if __name__ == "__main__":
    unittest.main()
