"""Ctrl-C (SIGINT) while the main thread waits in ft_weave through ctypes.

CPython installs its signal handlers without SA_RESTART, so every futex wait
of the library that the signal lands in returns EINTR. The waits must either
continue or return their documented status (Mutex.acquire gets
WEAVE_LOCK_INTR and lets Python raise KeyboardInterrupt), and the lock must
stay intact: other threads use it afterwards, counts exact, no crash, no
hang. The first signals land while the waiters wait for the parking lot's
bucket lock (a word lock), which another thread keeps locked through an
unpark callback: where an interrupted wait used to corrupt the lock (issue
11, finding 1). Each scenario runs in a subprocess, bounded by its timeout
(a hang) and its return code (a crash).
"""

import subprocess
import sys
import textwrap
import unittest


PRELUDE = textwrap.dedent(
    """\
    import ctypes, faulthandler, os, signal, sys, threading, time
    import ft_weave
    from ft_weave import _native

    faulthandler.enable()
    faulthandler.dump_traceback_later(40, exit=True)  # a hang: stacks, then exit 1
    lib = _native.lib()
    MAIN_IDENT = threading.get_ident()
    MAIN_TID = threading.get_native_id()
    UNPARK_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)

    def thread_state(tid):
        with open("/proc/self/task/%d/stat" % tid) as f:
            text = f.read()
        return text[text.rindex(")") + 2]

    def asleep_for_a_while(tid):
        # 20 polls in a row in state S: in its futex wait, not on the way there.
        quiet, deadline = 0, time.monotonic() + 10
        while quiet < 20:
            if time.monotonic() > deadline:
                return False
            quiet = quiet + 1 if thread_state(tid) == "S" else 0
            time.sleep(0.001)
        return True

    def fail(message):
        print("FAIL: " + message)
        sys.stdout.flush()
        os._exit(2)
    """
)

# The main thread and 15 others wait on one object while another thread
# keeps its parking-lot bucket locked, so all 16 sleep in that bucket's word
# lock; each gets one SIGINT there (a Ctrl-C lands on any thread that does
# not block it), then the main thread gets more until its KeyboardInterrupt.
# Afterwards the object must work: the others complete their waits, counts
# exact, words idle. Eight rounds, each with a fresh object (what an
# interrupted wait used to break depended on the order the waiters ran in).
INTERRUPT_SCRIPT = textwrap.dedent(
    """\
    KIND = sys.argv[1]
    OTHERS = 15
    ROUNDS = 8

    # Python's default SIGINT handler, raising once per round: a signal still
    # in flight when the wait has ended must not interrupt the checks.
    raised = []
    def on_sigint(signum, frame):
        if not raised:
            raised.append(True)
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_sigint)

    def one_round():
        raised.clear()
        if KIND == "mutex":
            obj = ft_weave.Mutex()
            obj.acquire()  # held: every acquire below waits
            address = ctypes.addressof(obj._s)
            wait = obj.acquire
        else:
            obj = ft_weave.Event()
            address = ctypes.addressof(obj._s)
            wait = obj.wait

        # Another thread keeps the bucket of `address` locked (weave_unpark
        # runs its callback under that lock): every park there waits for it.
        bucket_held = threading.Event()
        release_bucket = threading.Event()
        def hold(arg, park_arg, more):
            bucket_held.set()
            release_bucket.wait(20)
        hold_cb = UNPARK_FN(hold)
        holder = threading.Thread(
            target=lambda: lib.weave_unpark(address, ctypes.cast(hold_cb, ctypes.c_void_p), None))
        holder.start()
        if not bucket_held.wait(10):
            fail("the bucket holder did not start")

        count = [0]
        results = []
        ids = []
        def other():
            ids.append((threading.get_ident(), threading.get_native_id()))
            if KIND == "mutex":
                for _ in range(100):
                    with obj:
                        value = count[0]
                        time.sleep(0)
                        count[0] = value + 1
                results.append(True)
            else:
                # Short timed waits, retried: more work for the bucket's
                # word lock than one long wait.
                deadline = time.monotonic() + 20
                while not obj.wait(0.002) and time.monotonic() < deadline:
                    pass
                results.append(obj.is_set())
        others = [threading.Thread(target=other) for _ in range(OTHERS)]
        for t in others:
            t.start()

        wait_over = threading.Event()
        sent = []
        def signaller():
            deadline = time.monotonic() + 10
            while len(ids) < OTHERS and time.monotonic() < deadline:
                time.sleep(0.001)
            waiters = [(MAIN_IDENT, MAIN_TID)] + ids
            for ident, tid in waiters:
                if not asleep_for_a_while(tid):
                    fail("a waiter never slept")
            for ident, tid in waiters:  # each lands in the bucket-lock wait
                signal.pthread_kill(ident, signal.SIGINT)
                sent.append(1)
            time.sleep(0.02)
            release_bucket.set()
            # Then the main thread until its wait ends: a signal that lands
            # in a wait that goes on (the bucket lock's) does not end it.
            deadline = time.monotonic() + 20
            while not wait_over.wait(0.01) and time.monotonic() < deadline:
                signal.pthread_kill(MAIN_IDENT, signal.SIGINT)
                sent.append(1)
        s = threading.Thread(target=signaller)
        s.start()

        interrupted = False
        result = None
        try:
            result = wait()
        except KeyboardInterrupt:
            interrupted = True
        wait_over.set()
        s.join()
        holder.join()
        if not interrupted:
            fail("no KeyboardInterrupt: the wait returned %r" % (result,))

        # The object is intact: the others complete, counts exact.
        if KIND == "mutex":
            if not obj.locked():
                fail("the interrupted acquire left the mutex unlocked")
            obj.release()  # the main thread's first acquire
        else:
            if obj.is_set():
                fail("the event is set")
            time.sleep(0.01)
            threading.Thread(target=obj.set).start()
        for t in others:
            t.join(20)
            if t.is_alive():
                fail("a waiter did not finish")
        if results != [True] * OTHERS:
            fail("results %r" % (results,))
        if KIND == "mutex":
            if count[0] != OTHERS * 100:
                fail("count %d (expected %d)" % (count[0], OTHERS * 100))
            if list(obj._s._bytes) != [0, 0]:
                fail("mutex byte %d at the end (expected 0)" % (obj._s._bytes[0] | obj._s._bytes[1] << 1))
            with obj:  # and the main thread can still take it
                pass
        elif obj._s.v != 1:
            fail("event byte %d at the end (expected 1)" % obj._s.v)
        return len(sent)

    sent = [one_round() for _ in range(ROUNDS)]
    print("OK: KeyboardInterrupt in each of %d rounds (signals sent %r)" % (ROUNDS, sent))
    """
)

# A storm of SIGINT at the main thread while it and other threads take one
# mutex, with a Python handler that only counts: every interrupted acquire
# continues (the package waits again), and a bucket holder makes the parking
# lot's word locks contended.
STORM_SCRIPT = textwrap.dedent(
    """\
    handled = [0]
    def on_sigint(signum, frame):
        handled[0] += 1
    signal.signal(signal.SIGINT, on_sigint)

    m = ft_weave.Mutex()
    address = ctypes.addressof(m._s)
    stop = threading.Event()
    def nap(arg, park_arg, more):
        time.sleep(0.0002)  # keeps the mutex's bucket locked a moment
    nap_cb = UNPARK_FN(nap)
    def bucket_holder():
        while not stop.is_set():
            lib.weave_unpark(address, ctypes.cast(nap_cb, ctypes.c_void_p), None)
            time.sleep(0.0003)
    sent = [0]
    def storm():
        while not stop.is_set():
            signal.pthread_kill(MAIN_IDENT, signal.SIGINT)
            sent[0] += 1
            time.sleep(0.0002)

    count = [0]
    acquired = [0] * 9
    def work(index, until):
        n = 0
        while time.monotonic() < until:
            with m:
                value = count[0]
                if n % 4 == 0:
                    time.sleep(0)  # give the GIL away while holding it
                count[0] = value + 1
            n += 1
        acquired[index] = n

    until = time.monotonic() + 1.5
    helpers = [threading.Thread(target=bucket_holder), threading.Thread(target=storm)]
    workers = [threading.Thread(target=work, args=(i, until)) for i in range(8)]
    for t in helpers + workers: t.start()
    work(8, until)
    for t in workers: t.join()
    stop.set()
    for t in helpers: t.join()
    total = sum(acquired)
    if count[0] != total:
        fail("count %d, acquisitions %d" % (count[0], total))
    if list(m._s._bytes) != [0, 0]:
        fail("mutex byte %d at the end (expected 0)" % (m._s._bytes[0] | m._s._bytes[1] << 1))
    if handled[0] == 0:
        fail("no signal was handled (%d sent)" % sent[0])
    print("OK: %d acquisitions, %d signals sent, %d handled" % (total, sent[0], handled[0]))
    """
)


class TestSigintDuringWaits(unittest.TestCase):
    def run_script(self, script, *args):
        try:
            proc = subprocess.run(
                [sys.executable, "-c", PRELUDE + script] + list(args),
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired as e:
            out = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr)]
            self.fail("hang: no exit within 60 s\n" + "".join(out))
        self.assertEqual(proc.returncode, 0, "rc %d\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
        self.assertIn("OK:", proc.stdout)

    def test_keyboard_interrupt_in_mutex_acquire(self):
        self.run_script(INTERRUPT_SCRIPT, "mutex")

    def test_keyboard_interrupt_in_event_wait(self):
        self.run_script(INTERRUPT_SCRIPT, "event")

    def test_sigint_storm_while_threads_share_a_mutex(self):
        self.run_script(STORM_SCRIPT)


if __name__ == "__main__":
    unittest.main()
