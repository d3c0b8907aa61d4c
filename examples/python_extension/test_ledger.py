"""Tests of the ledger example: invariants under many truly parallel threads
(on a free-threaded CPython), no deadlock whatever the argument order, the
per-thread tallies freed at thread exit, and error handling.

    python -m unittest -v test_ledger      # with `ledger` importable

Every multi-threaded test is bounded: threads are joined with a timeout and
a thread still alive afterwards fails the test (a deadlock shows as a
failure, not a hang).
"""

import gc
import os
import random
import sys
import sysconfig
import threading
import time
import unittest

import ledger

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
# PYTHON_GIL=1 or -X gil=1 turn the GIL on in a free-threaded build on purpose.
GIL_FORCED = os.environ.get("PYTHON_GIL") == "1" or sys._xoptions.get("gil") == "1"
JOIN_TIMEOUT = 60.0


def gil_enabled():
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else check()


def run_threads(targets, timeout=JOIN_TIMEOUT):
    """Starts one thread per callable (all released together by a barrier)
    and joins them; returns the exceptions they raised. Fails on a thread
    that does not finish in time (a deadlock)."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                fn()
            except BaseException as e:  # reported to the test, never lost
                errors.append(e)

        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        raise AssertionError("threads still running after %.0f s (deadlock?): %s" % (timeout, alive))
    return errors


def wait_for(predicate, timeout=10.0):
    """Polls `predicate` until it is true or `timeout` passes. A thread's
    thread-exit destructors run as its OS thread ends, which on CPython 3.11
    can be just after Thread.join() returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class FreeThreading(unittest.TestCase):
    @unittest.skipUnless(FREE_THREADED and not GIL_FORCED,
                         "needs a free-threaded CPython (3.13t or later) without PYTHON_GIL=1 / -X gil=1")
    def test_import_keeps_the_gil_disabled(self):
        # The module declares Py_MOD_GIL_NOT_USED; without it, importing it
        # into 3.13t would have re-enabled the GIL, and none of the threads
        # below would run in parallel.
        self.assertFalse(gil_enabled())


class Account(unittest.TestCase):
    def test_deposit_withdraw(self):
        a = ledger.Account(10)
        self.assertEqual(a.deposit(5), 15)
        self.assertEqual(a.withdraw(15), 0)
        self.assertEqual(a.balance, 0)
        self.assertEqual(a.ops, 2)
        self.assertEqual(repr(a), "<ledger.Account balance=0>")
        self.assertEqual(ledger.Account().balance, 0)
        self.assertEqual(ledger.Account(balance=7).balance, 7)

    def test_concurrent_deposits_lose_nothing(self):
        # Many threads on ONE object: the per-object mutex is all that keeps
        # the read-modify-write of the balance whole.
        a = ledger.Account()
        threads, per_thread = 8, 20000

        def work():
            for _ in range(per_thread):
                a.deposit(1)

        self.assertEqual(run_threads([work] * threads), [])
        self.assertEqual(a.balance, threads * per_thread)
        self.assertEqual(a.ops, threads * per_thread)


class Transfers(unittest.TestCase):
    def test_transfer(self):
        a, b = ledger.Account(100), ledger.Account(0)
        self.assertIsNone(ledger.transfer(a, b, 30))
        self.assertEqual(ledger.snapshot(a, b), (70, 30))
        ledger.transfer(a, a, 70)  # the same account twice: locked once, no change
        self.assertEqual(a.balance, 70)

    def test_total_conserved_in_both_orders(self):
        # Workers transfer between a few accounts in random directions, so
        # that every pair is locked in both argument orders at once. A
        # deadlock fails run_threads; a torn transfer breaks the total.
        accounts = [ledger.Account(1000) for _ in range(3)]
        total = sum(a.balance for a in accounts)
        threads, per_thread = 8, 20000

        def work(seed):
            rng = random.Random(seed)

            def run():
                for _ in range(per_thread):
                    src, dst = rng.sample(accounts, 2)
                    try:
                        ledger.transfer(src, dst, rng.randrange(1, 50))
                    except ledger.InsufficientFunds:
                        pass

            return run

        self.assertEqual(run_threads([work(i) for i in range(threads)]), [])
        self.assertEqual(sum(a.balance for a in accounts), total)
        self.assertTrue(all(a.balance >= 0 for a in accounts))

    def test_snapshot_never_sees_a_half_done_transfer(self):
        # Two accounts, transfers both ways, and auditors that read both
        # balances in one two-object critical section: the pair's total must
        # be the same at every instant, not just at the end.
        a, b = ledger.Account(500), ledger.Account(500)
        stop = threading.Event()
        bad = []

        def mover(src, dst):
            def run():
                for i in range(50000):
                    try:
                        ledger.transfer(src, dst, 1 + i % 7)
                    except ledger.InsufficientFunds:
                        pass
                stop.set()

            return run

        def auditor():
            seen = 0
            while not stop.is_set() or seen < 1000:
                x, y = ledger.snapshot(a, b) if seen % 2 else ledger.snapshot(b, a)
                if x + y != 1000:
                    bad.append((x, y))
                    return
                seen += 1

        errors = run_threads([mover(a, b), mover(b, a), mover(a, b), mover(b, a), auditor, auditor])
        self.assertEqual(errors, [])
        self.assertEqual(bad, [])
        self.assertEqual(a.balance + b.balance, 1000)

    def test_no_hang_with_garbage_collections(self):
        # gc.collect() on 3.13t stops the world: every thread must reach a
        # safe point. Threads blocked on an account's mutex release their
        # thread state while they wait, so the collection never waits for
        # them, and they never wait for it forever.
        a, b = ledger.Account(10**6), ledger.Account(10**6)
        done = threading.Event()

        def mover(src, dst):
            def run():
                for _ in range(20000):
                    ledger.transfer(src, dst, 1)

            return run

        def collector():
            # A pause between collections: each collection stops the world,
            # and back-to-back ones on 2 cores starve the movers of turns to
            # re-attach (CPython's own scheduling, not a hang) for minutes.
            while not done.is_set():
                gc.collect()
                time.sleep(0.001)

        collector_thread = threading.Thread(target=collector, daemon=True)
        collector_thread.start()
        try:
            errors = run_threads([mover(a, b), mover(b, a)] * 3)
        finally:
            done.set()
            collector_thread.join(JOIN_TIMEOUT)
        self.assertFalse(collector_thread.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(a.balance + b.balance, 2 * 10**6)


class ThreadExitTallies(unittest.TestCase):
    def setUp(self):
        # Start from a quiet state: every tally of an earlier test's threads
        # freed (only this thread's own, if it made transfers, stays), so
        # that the differences below are this test's alone.
        def settled():
            s = ledger.stats()
            own = 0 if ledger.thread_tally() is None else 1
            return s["tallies_freed"] == s["tallies_created"] - own

        self.assertTrue(wait_for(settled), "tallies of earlier threads not freed: %r" % ledger.stats())

    def test_tallies_are_freed_and_folded_at_thread_exit(self):
        before = ledger.stats()
        a, b = ledger.Account(10**6), ledger.Account(10**6)
        threads, per_thread = 6, 300
        tallies = []

        def work():
            self_check = ledger.thread_tally()
            for i in range(per_thread):
                ledger.transfer(a, b, 2) if i % 2 else ledger.transfer(b, a, 2)
            tallies.append((self_check, ledger.thread_tally()))

        self.assertEqual(run_threads([work] * threads), [])
        # Each new thread started without a tally and counted its own
        # transfers only.
        self.assertEqual(tallies, [(None, (per_thread, 2 * per_thread))] * threads)

        def folded():
            s = ledger.stats()
            return s["tallies_freed"] - before["tallies_freed"] == threads

        self.assertTrue(wait_for(folded), "thread-exit destructors did not run: %r -> %r" % (before, ledger.stats()))
        after = ledger.stats()
        self.assertEqual(after["tallies_created"] - before["tallies_created"], threads)
        self.assertEqual(after["transfers"] - before["transfers"], threads * per_thread)
        self.assertEqual(after["moved"] - before["moved"], threads * per_thread * 2)

    def test_thread_without_transfers_allocates_nothing(self):
        before = ledger.stats()
        a = ledger.Account(5)
        self.assertEqual(run_threads([lambda: a.deposit(1)] * 3), [])
        after = ledger.stats()
        self.assertEqual(after["tallies_created"], before["tallies_created"])

    def test_flush_tally(self):
        a, b = ledger.Account(10), ledger.Account(0)
        result = []

        def work():
            ledger.transfer(a, b, 3)
            ledger.transfer(a, b, 4)
            before = ledger.stats()
            ledger.flush_tally()
            after = ledger.stats()
            result.append((ledger.thread_tally(), after["transfers"] - before["transfers"],
                           after["moved"] - before["moved"]))

        self.assertEqual(run_threads([work]), [])
        tally, transfers, moved = result[0]
        self.assertEqual(tally, (0, 0))
        self.assertEqual((transfers, moved), (2, 7))


class Errors(unittest.TestCase):
    def test_bad_arguments(self):
        a, b = ledger.Account(10), ledger.Account(0)
        with self.assertRaises(TypeError):
            ledger.transfer(a, "b", 1)
        with self.assertRaises(TypeError):
            ledger.snapshot(a, None)
        with self.assertRaises(TypeError):
            ledger.transfer(a, b, "1")
        with self.assertRaises(ValueError):
            ledger.transfer(a, b, -1)
        with self.assertRaises(OverflowError):
            ledger.transfer(a, b, 2**70)
        with self.assertRaises(ValueError):
            ledger.Account(-1)
        with self.assertRaises(ValueError):
            a.deposit(-5)
        with self.assertRaises(TypeError):
            type(a)("not a number")
        with self.assertRaises(TypeError):

            class Sub(ledger.Account):  # not subclassable
                pass

        self.assertEqual(ledger.snapshot(a, b), (10, 0))

    def test_insufficient_funds_changes_nothing(self):
        a, b = ledger.Account(10), ledger.Account(0)
        self.assertTrue(issubclass(ledger.InsufficientFunds, ValueError))
        with self.assertRaisesRegex(ledger.InsufficientFunds, "cannot transfer 11 from a balance of 10"):
            ledger.transfer(a, b, 11)
        with self.assertRaises(ledger.InsufficientFunds):
            a.withdraw(11)
        self.assertEqual(ledger.snapshot(a, b), (10, 0))
        self.assertEqual((a.ops, b.ops), (0, 0))

    def test_overflow_changes_nothing(self):
        big = 2**63 - 1
        a, b = ledger.Account(5), ledger.Account(big)
        with self.assertRaises(OverflowError):
            ledger.transfer(a, b, 1)
        with self.assertRaises(OverflowError):
            b.deposit(1)
        self.assertEqual(ledger.snapshot(a, b), (5, big))

    def test_bench_arguments(self):
        a = ledger.Account()
        kinds = ledger._bench_kinds()
        self.assertIn("weave_mutex", kinds)
        with self.assertRaises(ValueError):
            ledger._bench(99, a, a, 1, 1)
        with self.assertRaises(ValueError):
            ledger._bench(kinds["weave_mutex"], a, a, -1, 1)
        with self.assertRaises(ValueError):
            ledger._bench(kinds["weave_mutex"], a, a, 1, 0)
        with self.assertRaises(TypeError):
            ledger._bench(kinds["weave_mutex"], a, 1, 1, 1)
        if not ledger.HAVE_PYMUTEX:
            with self.assertRaises(NotImplementedError):
                ledger._bench(1, a, a, 1, 1)
        ledger._bench_reset(a)
        start, end = ledger._bench(kinds["weave_mutex"], a, a, 1000, 1)
        self.assertGreaterEqual(end, start)
        self.assertEqual(ledger._bench_counter(a), 1000)


if __name__ == "__main__":
    unittest.main()
