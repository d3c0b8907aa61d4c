#!/usr/bin/env python3
"""Runs this build's lockbench and a previous build's in turn (A/B/A/B).

    previous.py --new build/bench/bench/lockbench --old /path/to/old/lockbench
                --out previous.csv [--rounds 3] [--smoke]
                [--same-new same_source_bench --same-old same_source_bench_previous]

Two builds of ft_weave cannot share one process (their exported names are the
same), so "the same run" for a before/after comparison means the two
processes alternated, round after round, on the same machine. Each round runs
every scenario below for ft_weave's peers only (lockbench --peer ft_weave);
the CSV keeps, per configuration, the median over the rounds of each build,
named "ft_weave [this build]" and "ft_weave [previous build]" (and the same
for "ft_weave (exported call)"). report.py turns these rows into the targets
"no worse than 0.95x the previous algorithm" and a before/after table.

The two lockbench binaries differ in more than the lock: the harness source
changed between the builds too, and on the `small` workload the layout of a
binary alone moves throughput by 10-15%. With --same-new/--same-old (one
harness source, bench/same_source_bench.c, built against each build's header
and library) each round also alternates that pair, whose rows are named
"ft_weave (same source) [...]"; report.py bases the contended and one-thread
RW targets on them when they are there.
"""

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile

SCENARIOS = ["uncontended", "contended", "pingpong", "event", "cond", "rwlock"]
TAGS = {"new": "this build", "old": "previous build"}
SAME_SOURCE = "ft_weave (same source)"


def run(lockbench, scenario, smoke, extra=()):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.csv")
        cmd = [lockbench, "--only", scenario, "--peer", "ft_weave", "--out", out, *extra]
        if smoke:
            cmd.append("--smoke")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as f:
            body = [line for line in f.read().splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(body))))


def run_same(binary, smoke):
    """One run of same_source_bench (lockbench's CSV on stdout)."""
    cmd = [binary, "--label", SAME_SOURCE] + (["--smoke"] if smoke else [])
    text = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    body = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(body))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", required=True)
    ap.add_argument("--old", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--same-new", help="same_source_bench built against this build")
    ap.add_argument("--same-old", help="same_source_bench built against the previous build")
    a = ap.parse_args()
    if not os.access(a.old, os.X_OK):
        sys.exit(f"previous.py: {a.old} is not an executable lockbench")
    if bool(a.same_new) != bool(a.same_old):
        sys.exit("previous.py: --same-new and --same-old go together")
    same = {"new": a.same_new, "old": a.same_old} if a.same_new else None

    values = {}  # (build, scenario, peer, threads, workload) -> [value per round]
    units = {}

    def record(build, r):
        key = (build, r["scenario"], r["peer"], r["threads"], r["workload"])
        values.setdefault(key, []).append(float(r["value"]))
        units[key] = r["unit"]

    for rnd in range(a.rounds):
        # Alternate which build goes first, so neither always runs on a
        # machine the other has just warmed or loaded.
        order = ("new", "old") if rnd % 2 == 0 else ("old", "new")
        for scenario in SCENARIOS:
            for build in order:
                # The previous build's rwlock loop read no clock; this build's
                # times every write unless told not to, so the same work is
                # compared (its writer-wait rows are not compared anyway).
                extra = ("--no-writer-wait",) if build == "new" and scenario == "rwlock" else ()
                for r in run(getattr(a, build), scenario, a.smoke, extra):
                    if r["scenario"] == "regimes":
                        continue  # run counts per regime: the main rows carry the figures compared
                    record(build, r)
        if same:
            for build in order:
                for r in run_same(same[build], a.smoke):
                    record(build, r)
        print(f"previous.py: round {rnd + 1}/{a.rounds} done", flush=True)

    with open(a.out, "w", encoding="utf-8", newline="") as f:
        f.write(f"# previous build: {a.old}; {a.rounds} alternated rounds, median per configuration\n")
        if same:
            f.write(f"# same harness source: {a.same_new} against {a.same_old}, alternated in the same rounds\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["scenario", "peer", "threads", "workload", "value", "unit", "min_acq", "max_acq"])
        for key in sorted(values, key=lambda k: (k[1], k[4], k[2], int(k[3]), k[0])):
            build, scenario, peer, threads, workload = key
            # Keep only configurations both builds ran (a scenario one of them
            # lacks says nothing about the change).
            other = ("old" if build == "new" else "new",) + key[1:]
            if other not in values:
                continue
            name = f"{peer} [{TAGS[build]}]"
            w.writerow([scenario, name, threads, workload, f"{statistics.median(values[key]):.6g}", units[key], 0, 0])
    print(f"previous.py: wrote {a.out}")


if __name__ == "__main__":
    main()
