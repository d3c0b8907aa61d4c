using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;

namespace FtWeave.Diagnostics;

/// <summary>
/// weave_debug_check_deadlocks and the watchdog: which threads are blocked,
/// right now, on locks held by each other. Each checked acquisition that
/// may block records its lock in the thread's record (WaitingOn) for as
/// long as it waits; each checked acquisition records the lock as held. The
/// check builds the wait-for graph between threads (T -> U when T waits for
/// a lock U's record holds; a read-locked rwmutex has several holders) and
/// reports each strongly connected component with a cycle, as parking_lot's
/// deadlock detector does with its per-thread resource lists.
///
/// The records are read without stopping their threads, so a thread that
/// is just acquiring or releasing can be seen half-way: a component is
/// reported only if every thread in it is still waiting on the same lock
/// when the search ends (a real deadlock does not move).
/// </summary>
internal static unsafe class LiveDeadlocks
{
    private static readonly Lock s_reportedLock = new();
    private static HashSet<string> s_reported = new(StringComparer.Ordinal);
    private static int s_watchdogStarted;

    internal static void ForgetReported()
    {
        lock (s_reportedLock)
        {
            s_reported = new HashSet<string>(StringComparer.Ordinal);
        }
    }

    internal static void StartWatchdog()
    {
        if (Interlocked.Exchange(ref s_watchdogStarted, 1) != 0)
        {
            return;
        }
        var thread = new Thread(Watch) { IsBackground = true, Name = "ft_weave debug watchdog" };
        thread.Start();
    }

    private static void Watch()
    {
        while (true)
        {
            Thread.Sleep(Math.Max(1, Volatile.Read(ref DebugSwitch.s_watchdogMs)));
            int flags = Volatile.Read(ref DebugSwitch.s_flags);
            if (flags > 0 && (flags & DebugFlags.Watchdog) != 0)
            {
                Check(onlyNew: true);
            }
        }
    }

    /// <summary>Reports the deadlocked sets (each once when <paramref name="onlyNew"/>); returns how many there are.</summary>
    internal static int Check(bool onlyNew)
    {
        if (DebugMode.Flags == 0)
        {
            return 0;
        }
        DebugThread* table = DebugThreads.s_table;
        if (table == null)
        {
            return 0;
        }
        int used = Volatile.Read(ref DebugThreads.s_high);
        var waitOn = new nint[used];
        var outgoing = new List<int>[used];
        for (int i = 0; i < used; i++)
        {
            DebugThread* r = table + i;
            if (Volatile.Read(ref r->InUse) != 0)
            {
                waitOn[i] = Volatile.Read(ref r->WaitingOn);
            }
        }
        for (int i = 0; i < used; i++)
        {
            if (waitOn[i] == 0)
            {
                continue;
            }
            for (int j = 0; j < used; j++)
            {
                DebugThread* r = table + j;
                if (Volatile.Read(ref r->InUse) == 0)
                {
                    continue;
                }
                int n = Math.Min(Volatile.Read(ref r->HeldCount), DebugThread.MaxHeld);
                for (int k = 0; k < n; k++)
                {
                    if (r->HeldLock[k] == waitOn[i])
                    {
                        (outgoing[i] ??= new List<int>()).Add(j);
                        break;
                    }
                }
            }
        }

        int found = 0;
        foreach (List<int> component in StronglyConnected(used, outgoing))
        {
            bool cycle = component.Count > 1 || (outgoing[component[0]]?.Contains(component[0]) ?? false);
            if (!cycle || !StillWaiting(table, component, waitOn))
            {
                continue;
            }
            found++;
            component.Sort();
            string report = Describe(table, component, waitOn, out string signature);
            if (onlyNew)
            {
                lock (s_reportedLock)
                {
                    if (!s_reported.Add(signature))
                    {
                        continue;
                    }
                }
            }
            DebugMode.Report(report);
        }
        return found;
    }

    private static bool StillWaiting(DebugThread* table, List<int> component, nint[] waitOn)
    {
        foreach (int i in component)
        {
            if (Volatile.Read(ref table[i].WaitingOn) != waitOn[i] || Volatile.Read(ref table[i].InUse) == 0)
            {
                return false;
            }
        }
        return true;
    }

    private static string Describe(DebugThread* table, List<int> component, nint[] waitOn, out string signature)
    {
        var text = new StringBuilder();
        var key = new StringBuilder();
        text.Append("ft_weave debug: deadlock: ").Append(component.Count).Append(component.Count == 1 ? " thread waits for itself:" : " threads wait for each other:");
        for (int c = 0; c < component.Count; c++)
        {
            DebugThread* r = table + component[c];
            text.Append(c == 0 ? " " : "; ").Append("thread ").Append(r->ThreadId).Append(" waits for ")
                .Append(LockKind.Name(r->WaitingKind)).Append(' ').Append(DebugMode.Address(waitOn[component[c]]))
                .Append(" at ").Append(DebugMode.Site(r->WaitingSite)).Append(", held by");
            key.Append(r->ThreadId).Append(':').Append(waitOn[component[c]]).Append(',');
            bool first = true;
            foreach (int j in component)
            {
                DebugThread* h = table + j;
                int n = Math.Min(Volatile.Read(ref h->HeldCount), DebugThread.MaxHeld);
                for (int k = 0; k < n; k++)
                {
                    if (h->HeldLock[k] == waitOn[component[c]])
                    {
                        text.Append(first ? " " : " and ").Append("thread ").Append(h->ThreadId)
                            .Append(" (acquired at ").Append(DebugMode.Site(h->HeldSite[k])).Append(')');
                        first = false;
                        break;
                    }
                }
            }
        }
        signature = key.ToString();
        return text.ToString();
    }

    /// <summary>Tarjan's algorithm, iterative (a thread table may be long).</summary>
    private static List<List<int>> StronglyConnected(int count, List<int>[] outgoing)
    {
        var result = new List<List<int>>();
        var index = new int[count];
        var low = new int[count];
        var onStack = new bool[count];
        Array.Fill(index, -1);
        var stack = new Stack<int>();
        var work = new Stack<(int Node, int Next)>();
        int counter = 0;
        for (int root = 0; root < count; root++)
        {
            if (index[root] >= 0 || outgoing[root] == null)
            {
                continue;
            }
            work.Push((root, 0));
            while (work.Count > 0)
            {
                (int node, int next) = work.Pop();
                if (next == 0 && index[node] < 0)
                {
                    index[node] = low[node] = counter++;
                    stack.Push(node);
                    onStack[node] = true;
                }
                List<int>? edges = outgoing[node];
                bool descended = false;
                if (edges != null)
                {
                    for (int e = next; e < edges.Count; e++)
                    {
                        int to = edges[e];
                        if (index[to] < 0)
                        {
                            work.Push((node, e + 1));
                            work.Push((to, 0));
                            descended = true;
                            break;
                        }
                        if (onStack[to])
                        {
                            low[node] = Math.Min(low[node], index[to]);
                        }
                    }
                }
                if (descended)
                {
                    continue;
                }
                if (low[node] == index[node])
                {
                    var component = new List<int>();
                    int w;
                    do
                    {
                        w = stack.Pop();
                        onStack[w] = false;
                        component.Add(w);
                    } while (w != node);
                    result.Add(component);
                }
                if (work.Count > 0)
                {
                    int parent = work.Peek().Node;
                    low[parent] = Math.Min(low[parent], low[node]);
                }
            }
        }
        return result;
    }
}
