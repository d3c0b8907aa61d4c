"""Detach while blocked, with a real interpreter (run by CTest, see
free_threaded.cmake): threads blocked on a weave_mutex_t from C (the
detach_probe extension calls weave_mutex_lock with its thread state
attached) and from Python (ctypes ft_weave.Mutex.acquire).

    detach_blocked.py gc           16 blocked threads (8 C, 8 ctypes) while the
                                   main thread and a collector thread run
                                   gc.collect(): it returns while they stay
                                   blocked (stop-the-world in the free-threaded
                                   build, the GIL in the others).
    detach_blocked.py gc-control   the hazard is real: a C thread that waits
                                   with WEAVE_LOCK_DONT_DETACH (1 s) keeps
                                   gc.collect() (or the GIL) until it gives up.
    detach_blocked.py finalize     20 daemon threads still blocked when the
                                   main thread returns (8 from C, 4 from C
                                   inside a critical section on a shared
                                   mutex `a`, 8 from ctypes): the process
                                   exits with 0, without hanging.
    detach_blocked.py finalize-release
                                   as finalize, and a Py_AtExit function
                                   unlocks their mutexes once the interpreter
                                   is finalized: the C threads wake inside the
                                   library and re-attach to a finalized
                                   interpreter, which CPython 3.11-3.13
                                   answers with pthread_exit (a forced
                                   unwind). The library must keep that unwind
                                   out of its frames: the function then
                                   checks that `a` is still unlocked (a
                                   thread that left its wait with its section
                                   still listed re-locks it from its
                                   thread-exit destructor) and exits with 3
                                   if not.
    detach_blocked.py repeat N MODE
                                   runs MODE in N fresh interpreters (30 s
                                   each at most): every run must exit with 0
                                   and print its "MODE:" line.

Every wait is bounded; a hang ends the run through faulthandler (exit 1).
"""

import faulthandler
import gc
import os
import subprocess
import sys
import threading
import time

import ft_weave
import detach_probe

LIMIT = 10.0  # seconds: every wait here is bounded
C_THREADS = 8
CTYPES_THREADS = 8


def gil_enabled():
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else check()


def addr(mutex):
    return mutex.address


def wait_for(predicate, what):
    deadline = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.001)


def start_blocked(mutexes, daemon, results, section=None):
    """One thread per mutex (held by the caller): the first C_THREADS block
    in C (detach_probe.lock), the next CTYPES_THREADS in ctypes
    (Mutex.acquire), the rest in C inside a critical section
    (detach_probe.section_lock, with section = (a, c)). Returns the threads
    once all of them are parked."""
    parks_before = detach_probe.parks()
    threads = []

    def in_c(m, i):
        detach_probe.lock(addr(m))
        results[i] = "c"
        detach_probe.unlock(addr(m))

    def in_ctypes(m, i):
        ok = m.acquire(timeout=2 * LIMIT)
        results[i] = "ctypes" if ok else "timeout"
        if ok:
            m.release()

    def in_section(m, i):
        a, c = section
        detach_probe.section_lock(addr(a), addr(m), addr(c))
        results[i] = "section"

    for i, m in enumerate(mutexes):
        if i < C_THREADS:
            target = in_c
        elif i < C_THREADS + CTYPES_THREADS:
            target = in_ctypes
        else:
            target = in_section
        t = threading.Thread(target=target, args=(m, i), daemon=daemon)
        t.start()
        threads.append(t)
        if target is in_section:
            # One at a time: each takes `a` before it blocks (and releases it
            # when it parks), so the next one parks on its own mutex only.
            wait_for(lambda: detach_probe.parks() >= parks_before + i + 1, "the section thread to park")
    wait_for(lambda: detach_probe.parks() >= parks_before + len(mutexes), "the threads to park")
    return threads


def held_mutexes(n):
    mutexes = [ft_weave.Mutex() for _ in range(n)]
    for m in mutexes:
        assert m.acquire(blocking=False)
    return mutexes


def mode_gc():
    n = C_THREADS + CTYPES_THREADS
    mutexes = held_mutexes(n)
    results = [None] * n
    threads = start_blocked(mutexes, daemon=False, results=results)

    # gc.collect() on the main thread, and on another thread at the same time.
    collector_done = []

    def collector():
        for _ in range(5):
            gc.collect()
        collector_done.append(True)

    c = threading.Thread(target=collector)
    t0 = time.monotonic()
    c.start()
    for _ in range(5):
        gc.collect()
    c.join(LIMIT)
    elapsed = time.monotonic() - t0
    assert collector_done, "the collector thread's gc.collect() did not return"
    assert detach_probe.returns() == 0, "a blocked thread got its mutex early"
    assert all(r is None for r in results), results
    assert all(t.is_alive() for t in threads)

    for m in mutexes:
        m.release()
    for t in threads:
        t.join(LIMIT)
        assert not t.is_alive(), "a thread did not finish after its mutex was released"
    assert results == ["c"] * C_THREADS + ["ctypes"] * CTYPES_THREADS, results
    assert detach_probe.returns() == C_THREADS
    print("gc: 10 gc.collect() calls (2 threads) took %.3f s with %d threads blocked (%d in C, attached)"
          % (elapsed, n, C_THREADS))


def mode_gc_control():
    m = held_mutexes(1)[0]
    outcome = []
    parks_before = detach_probe.parks()
    start = detach_probe.now()

    def waiter():
        outcome.append(detach_probe.lock_timed(addr(m), 1.0, False))

    t = threading.Thread(target=waiter)
    t.start()
    # With the GIL this poll itself waits until the waiter gives up: it
    # cannot run while the waiter sleeps holding the GIL.
    wait_for(lambda: detach_probe.parks() > parks_before, "the waiter to park")
    gc.collect()
    gc_end = detach_probe.now()
    t.join(LIMIT)
    assert not t.is_alive()
    waited_until = detach_probe.last_return()
    assert outcome == [0], outcome  # gave up: nobody unlocked
    assert waited_until - start >= 0.9, waited_until - start
    # The collection (or the GIL) had to wait for the waiter to give up.
    assert gc_end >= waited_until, (gc_end, waited_until)
    m.release()
    print("gc-control: gc.collect() returned %.3f s after the DONT_DETACH waiter started, "
          "%.3f s after it gave up (%s)" % (gc_end - start, gc_end - waited_until,
                                            "GIL" if gil_enabled() else "stop-the-world"))


SECTION_THREADS = 4


def mode_finalize(release):
    n = C_THREADS + CTYPES_THREADS + SECTION_THREADS
    mutexes = held_mutexes(n)
    a, c = ft_weave.Mutex(), ft_weave.Mutex()
    results = [None] * n
    # The section threads park one after the other (see start_blocked).
    start_blocked(mutexes, daemon=True, results=results, section=(a, c))
    assert not a.locked(), "a section suspended while its thread sleeps must release its mutex"
    if release:
        # Never freed: the Py_AtExit function unlocks them after the
        # interpreter (and every module dict) is gone, then checks `a`.
        _leak(mutexes + [a, c])
        detach_probe.unlock_after_finalize([addr(m) for m in mutexes], 0.3, addr(a))
    # A collection with everyone blocked, then return: the interpreter
    # finalizes with the daemon threads still blocked.
    gc.collect()
    assert detach_probe.returns() == 0
    print("finalize%s: %d daemon threads blocked (%d in C, %d of them inside a critical section) at exit"
          % ("-release" if release else "", n, C_THREADS + SECTION_THREADS, SECTION_THREADS), flush=True)


def _leak(objects):
    # One extra reference each, never dropped: their ctypes buffers stay
    # valid after the interpreter is finalized.
    import ctypes

    for o in objects:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(o))


def mode_repeat(count, mode):
    failures = []
    start = time.monotonic()
    for i in range(count):
        try:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), mode],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=30)
        except subprocess.TimeoutExpired:
            failures.append((i, "hang (30 s)", ""))
            continue
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0 or (mode + ":") not in out:
            failures.append((i, "exit code %d" % r.returncode, out[-2000:]))
    print("repeat %s: %d/%d runs failed in %.1f s" % (mode, len(failures), count, time.monotonic() - start))
    for i, why, out in failures[:3]:
        print("--- run %d: %s\n%s" % (i, why, out))
    if failures:
        sys.exit(1)


def main(argv):
    faulthandler.dump_traceback_later(60, exit=True)
    print("detach_blocked: Python %s, GIL %s" % (sys.version.split()[0], "enabled" if gil_enabled() else "disabled"))
    if argv[:1] == ["repeat"]:
        faulthandler.cancel_dump_traceback_later()
        mode_repeat(int(argv[1]), argv[2])
    elif argv == ["gc"]:
        mode_gc()
    elif argv == ["gc-control"]:
        mode_gc_control()
    elif argv == ["finalize"]:
        mode_finalize(False)
    elif argv == ["finalize-release"]:
        mode_finalize(True)
    else:
        sys.exit("usage: detach_blocked.py gc|gc-control|finalize|finalize-release|repeat N MODE")
    # The daemon threads of the finalize modes are still blocked: only the
    # interpreter's finalization is left (bounded by CTest's TIMEOUT, or by
    # the repeat driver's).
    faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    main(sys.argv[1:])
