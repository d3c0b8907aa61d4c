"""Per-call cost of the ctypes package against the standard library and
ft_utils, in one process, interleaved (A/B/A/B) so that load on the machine
hits every contender alike.

    PYTHONPATH=python FT_WEAVE_LIBRARY=build/test/lib/libft_weave.so.1 \
        python bench/python_package_bench.py [--seconds S] [--repeats R] [--ft-utils DIR]

Scenarios:
- ``with lock: pass`` uncontended: ft_weave.Mutex against threading.Lock;
- 4 threads each doing ``with lock: counter += 1``: ns per critical section
  (wall time / total sections), same pair;
- register_native_destructor + unregister_native_destructor from Python:
  ft_weave.weave against ft_utils' ``_weave`` extension when ``--ft-utils``
  names a directory holding one built for this interpreter (ft_utils'
  native/src/_weave.c compiled as a CPython extension).

Prints the median of the repeats for each, with the ratio to the standard
library (or ft_utils). A run whose counts are wrong prints "FAIL: ..." and
exits with status 1; timings never fail it.
"""

import argparse
import ctypes
import os
import statistics
import sys
import threading
import time

import ft_weave
from ft_weave import weave


def per_op_ns(fn, seconds):
    """fn(n) runs n operations; returns ns per operation over ~seconds."""
    n = 1000
    while True:
        start = time.perf_counter()
        fn(n)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 10 or n > 10**8:
            break
        n *= 4
    n = max(1000, int(n * seconds / max(elapsed, 1e-9) / 10))
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n * 1e9


def uncontended(lock):
    def run(n):
        for _ in range(n):
            with lock:
                pass

    return run


def contended(lock, threads=4):
    def run(n):
        per_thread = max(1, n // threads)
        state = [0]
        barrier = threading.Barrier(threads)

        def work():
            barrier.wait()
            for _ in range(per_thread):
                with lock:
                    state[0] += 1

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if state[0] != per_thread * threads:
            raise SystemExit("FAIL: counter %d, expected %d" % (state[0], per_thread * threads))

    return run


def destructor_pair(module, var, destructor):
    register = module.register_native_destructor
    unregister = module.unregister_native_destructor

    def run(n):
        for _ in range(n):
            register(var, destructor)
            if not unregister(var):
                raise SystemExit("FAIL: unregister found nothing")

    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ft-utils", help="directory with ft_utils' _weave extension for this Python")
    args = parser.parse_args()

    ft_weave.ENABLE_EXPERIMENTAL = True
    # A C variable and a C function for the destructor pair (never run: each
    # registration is removed right away).
    libc = ctypes.CDLL(None)
    cell = ctypes.c_void_p()
    var = ctypes.addressof(cell)
    destructor = ctypes.cast(libc.free, ctypes.c_void_p).value

    groups = [
        ("with lock: pass, uncontended", [
            ("threading.Lock", uncontended(threading.Lock())),
            ("ft_weave.Mutex", uncontended(ft_weave.Mutex())),
        ]),
        ("4 threads, with lock: counter += 1 (per section)", [
            ("threading.Lock", contended(threading.Lock())),
            ("ft_weave.Mutex", contended(ft_weave.Mutex())),
        ]),
    ]
    pair = [("ft_weave.weave", destructor_pair(weave, var, destructor))]
    if args.ft_utils:
        sys.path.insert(0, args.ft_utils)
        import _weave  # ft_utils' extension module

        pair.insert(0, ("ft_utils _weave", destructor_pair(_weave, var, destructor)))
    groups.append(("register + unregister_native_destructor", pair))

    free_threaded = not getattr(sys, "_is_gil_enabled", lambda: True)()
    print("Python %s%s, %d CPUs, load %s" % (
        sys.version.split()[0], " free-threaded (GIL off)" if free_threaded else "",
        os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    for title, contenders in groups:
        samples = {name: [] for name, _ in contenders}
        for _ in range(args.repeats):
            for name, fn in contenders:  # interleaved: A, B, A, B, ...
                samples[name].append(per_op_ns(fn, args.seconds))
        base_name = contenders[0][0]
        base = statistics.median(samples[base_name])
        print(title)
        for name, _ in contenders:
            median = statistics.median(samples[name])
            print("  %-18s %8.0f ns  (x%.1f vs %s; min %.0f, max %.0f)" % (
                name, median, median / base, base_name, min(samples[name]), max(samples[name])))


if __name__ == "__main__":
    main()
