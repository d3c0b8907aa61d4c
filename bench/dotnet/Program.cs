using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Threading;

namespace FtWeave.Bench;

/// <summary>
/// The .NET peers of lockbench.cpp, in the same loops: a 32-bit LCG step per
/// unit of work, the same workloads and thread counts, median of the
/// repetitions, per-thread acquisition counts, the same CSV columns.
/// </summary>
internal static class Program
{
    private static bool smoke;
    private static int durationMs = 300;
    private static int reps = 3;
    private static TextWriter? csv;
    private static int failures;

    private static readonly (string Name, uint In, uint Out)[] Workloads = { ("tiny", 1, 1), ("small", 10, 50) };
    private static readonly int[] ThreadCounts = { 1, 2, 4, 8, 16 };

    /// <summary>The lock interface every peer implements (a struct, so calls are direct).</summary>
    private interface IPeer
    {
        static abstract string Name { get; }
        void Enter();
        void Exit();
    }

    private readonly struct LockPeer : IPeer
    {
        private readonly Lock l;
        public LockPeer() => l = new Lock();
        public static string Name => ".NET Lock";
        public void Enter() => l.Enter();
        public void Exit() => l.Exit();
    }

    private readonly struct MonitorPeer : IPeer
    {
        private readonly object o;
        public MonitorPeer() => o = new object();
        public static string Name => ".NET Monitor";
        public void Enter() => Monitor.Enter(o);
        public void Exit() => Monitor.Exit(o);
    }

    private sealed class Shared<T> where T : struct, IPeer
    {
        public T Lock = new();
        public ulong Counter;
        public uint X = 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Work(uint x, uint n)
    {
        for (uint i = 0; i < n; i++)
        {
            x = unchecked(x * 1103515245u + 12345u);
        }
        return x;
    }

    private static void Row(string scenario, string peer, int threads, string workload, double value, string unit,
                            ulong minAcq = 0, ulong maxAcq = 0)
    {
        string line = string.Format(CultureInfo.InvariantCulture, "{0},{1},{2},{3},{4:G6},{5},{6},{7}",
                                    scenario, peer, threads, workload, value, unit, minAcq, maxAcq);
        Console.WriteLine(line);
        csv?.WriteLine(line);
        csv?.Flush();
    }

    /// <summary>The row and the regime rows of a round-trip latency scenario, as lockbench's
    /// latency_rows: a run is in the fast regime when its median is below 2.5 us per wake (5 us).</summary>
    private static void LatencyRows(string scenario, string peer, List<double> runs, string unit)
    {
        Row(scenario, peer, 2, "-", Median(new List<double>(runs)), unit);
        var fast = runs.FindAll(us => us < 5.0);
        var slow = runs.FindAll(us => us >= 5.0);
        Row("regimes", peer, 2, scenario + ":fast", fast.Count, "runs");
        Row("regimes", peer, 2, scenario + ":slow", slow.Count, "runs");
        if (fast.Count > 0)
        {
            Row("regimes", peer, 2, scenario + ":fast-median", Median(fast), unit);
        }
        if (slow.Count > 0)
        {
            Row("regimes", peer, 2, scenario + ":slow-median", Median(slow), unit);
        }
    }

    private static double Median(List<double> v)
    {
        v.Sort();
        return v[v.Count / 2];
    }

    private static double UncontendedBatch<T>(T peer, long iters) where T : struct, IPeer
    {
        long t0 = Stopwatch.GetTimestamp();
        for (long i = 0; i < iters; i++)
        {
            peer.Enter();
            peer.Exit();
        }
        return Stopwatch.GetElapsedTime(t0).TotalNanoseconds / iters;
    }

    /// <summary>As lockbench.cpp: 15 batches of 2 M pairs, the peers interleaved, the median.</summary>
    private static void Uncontended()
    {
        long iters = smoke ? 100_000 : 2_000_000;
        int batches = smoke ? 1 : 15;
        LockPeer l = new();
        MonitorPeer m = new();
        UncontendedBatch(l, iters / 4);
        UncontendedBatch(m, iters / 4);
        var nsLock = new List<double>();
        var nsMonitor = new List<double>();
        for (int b = 0; b < batches; b++)
        {
            nsLock.Add(UncontendedBatch(l, iters));
            nsMonitor.Add(UncontendedBatch(m, iters));
        }
        Row("uncontended", LockPeer.Name, 1, "-", Median(nsLock), "ns/op");
        Row("uncontended", MonitorPeer.Name, 1, "-", Median(nsMonitor), "ns/op");
    }

    private static (double PerS, ulong Min, ulong Max) ContendedOnce<T>(int threads, uint workIn, uint workOut, int ms)
        where T : struct, IPeer
    {
        var shared = new Shared<T>();
        const int Stride = 16; // 128 bytes between two threads' counters
        var counts = new ulong[threads * Stride];
        int ready = 0;
        bool go = false;
        bool stop = false;
        var ts = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int me = t;
            ts[t] = new Thread(() =>
            {
                uint local = (uint)me + 1;
                ulong n = 0;
                Interlocked.Increment(ref ready);
                while (!Volatile.Read(ref go))
                {
                    Thread.Yield();
                }
                while (!Volatile.Read(ref stop))
                {
                    shared.Lock.Enter();
                    shared.Counter++;
                    shared.X = Work(shared.X, workIn);
                    shared.Lock.Exit();
                    local = Work(local, workOut);
                    n++;
                }
                GC.KeepAlive(local);
                Volatile.Write(ref counts[me * Stride], n);
            });
            ts[t].Start();
        }
        while (Volatile.Read(ref ready) != threads)
        {
            Thread.Yield();
        }
        long t0 = Stopwatch.GetTimestamp();
        Volatile.Write(ref go, true);
        Thread.Sleep(ms);
        Volatile.Write(ref stop, true);
        double elapsedNs = Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
        foreach (Thread th in ts)
        {
            th.Join();
        }
        ulong total = 0, min = ulong.MaxValue, max = 0;
        for (int t = 0; t < threads; t++)
        {
            ulong c = counts[t * Stride];
            total += c;
            min = Math.Min(min, c);
            max = Math.Max(max, c);
        }
        if (total != shared.Counter)
        {
            Console.Error.WriteLine($"LockBench: {T.Name} lost updates");
            failures++;
        }
        return (total * 1e9 / elapsedNs, min, max);
    }

    /// <summary>As lockbench.cpp: per configuration, the two peers' repetitions interleaved.</summary>
    private static void Contended()
    {
        foreach (var w in Workloads)
        {
            foreach (int threads in ThreadCounts)
            {
                ContendedOnce<LockPeer>(threads, w.In, w.Out, smoke ? 2 : 30);
                ContendedOnce<MonitorPeer>(threads, w.In, w.Out, smoke ? 2 : 30);
                var runsLock = new List<(double PerS, ulong Min, ulong Max)>();
                var runsMonitor = new List<(double PerS, ulong Min, ulong Max)>();
                for (int r = 0; r < reps; r++)
                {
                    runsLock.Add(ContendedOnce<LockPeer>(threads, w.In, w.Out, durationMs));
                    runsMonitor.Add(ContendedOnce<MonitorPeer>(threads, w.In, w.Out, durationMs));
                }
                ReportMedian(LockPeer.Name, threads, w.Name, runsLock);
                ReportMedian(MonitorPeer.Name, threads, w.Name, runsMonitor);
            }
        }
    }

    private static void ReportMedian(string peer, int threads, string workload, List<(double PerS, ulong Min, ulong Max)> runs)
    {
        runs.Sort((a, b) => a.PerS.CompareTo(b.PerS));
        var m = runs[runs.Count / 2];
        Row("contended", peer, threads, workload, m.PerS, "ops/s", m.Min, m.Max);
    }

    /// <summary>Condition ping-pong with Monitor.Wait/Pulse, lockbench.cpp's protocol.</summary>
    private static double CondOnce(int rounds)
    {
        object gate = new();
        int turn = 0;
        var peer = new Thread(() =>
        {
            for (int i = 0; i < rounds; i++)
            {
                lock (gate)
                {
                    while (turn != 1)
                    {
                        Monitor.Wait(gate);
                    }
                    turn = 0;
                    Monitor.Pulse(gate);
                }
            }
        });
        peer.Start();
        // Each round trip timed on its own, the median kept (as lockbench.cpp).
        var rt = new List<double>(rounds);
        for (int i = 0; i < rounds; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            lock (gate)
            {
                turn = 1;
                Monitor.Pulse(gate);
                while (turn != 0)
                {
                    Monitor.Wait(gate);
                }
            }
            rt.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }
        peer.Join();
        return Median(rt);
    }

    private static void Cond()
    {
        int rounds = smoke ? 200 : 20000;
        CondOnce(rounds / 10);
        var us = new List<double>();
        for (int r = 0; r < (smoke ? reps : Math.Max(reps, 5)); r++)
        {
            us.Add(CondOnce(rounds));
        }
        LatencyRows("cond", ".NET Monitor.Wait/Pulse", us, "us/rt");
    }

    private static int Main(string[] args)
    {
        string? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--smoke":
                    smoke = true;
                    durationMs = 10;
                    reps = 1;
                    break;
                case "--out" when i + 1 < args.Length:
                    csv = new StreamWriter(args[++i], append: false);
                    break;
                case "--duration-ms" when i + 1 < args.Length:
                    durationMs = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--reps" when i + 1 < args.Length:
                    reps = Math.Max(1, int.Parse(args[++i], CultureInfo.InvariantCulture));
                    break;
                case "--only" when i + 1 < args.Length:
                    only = args[++i];
                    break;
                default:
                    Console.Error.WriteLine("usage: LockBench [--smoke] [--out FILE] [--duration-ms N] [--reps N] [--only SCENARIO]");
                    return 2;
            }
        }
        csv?.WriteLine("scenario,peer,threads,workload,value,unit,min_acq,max_acq");
        if (only is null or "uncontended")
        {
            Uncontended();
        }
        if (only is null or "contended")
        {
            Contended();
        }
        if (only is null or "cond")
        {
            Cond();
        }
        csv?.Dispose();
        return failures == 0 ? 0 : 1;
    }
}
