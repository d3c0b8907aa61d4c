using System.Collections.Generic;
using System.Text;
using System.Threading;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Diagnostics;

/// <summary>
/// The process-wide lock-order graph: a node per lock address, an edge
/// A -> B when a thread acquired B (through a checked path) while holding A.
/// Bounded: <see cref="MaxNodes"/> locks and <see cref="MaxEdges"/> edges;
/// past that, new locks and orders are not checked (reported once).
///
/// Lookups of existing edges are lock-free (open addressing; a slot's key is
/// published after its data, and slots are never reused within one graph),
/// so a thread repeating an order it took before costs one hash probe per
/// held lock. Only a new edge takes the graph lock, which also runs the
/// cycle search: a depth-first search for a path from the new edge's target
/// back to its source. abseil's GraphCycles keeps a topological order to make
/// that search cheap; orders settle early in a program's life, so new edges
/// are rare and a plain search over a bounded graph is enough here.
///
/// A new edge that closes a cycle is reported once (it is inserted anyway:
/// the same acquisition order does not report again), naming every edge of
/// the cycle with its thread and call sites. With WEAVE_DEBUG_FAIL_ON_CYCLE a
/// timed acquisition that would close one is refused instead (the edge is
/// not inserted, so each refusal is reported).
///
/// Reset (weave_debug_set) swaps in fresh tables: readers still probing the
/// old ones finish there harmlessly.
/// </summary>
internal static unsafe class LockOrderGraph
{
    internal const int MaxNodes = 16384;
    internal const int MaxEdges = 65536;
    private const int NodeSlots = MaxNodes * 2;
    private const int EdgeSlots = MaxEdges * 2;

    private sealed class Tables
    {
        public readonly long[] NodeKeys = new long[NodeSlots];
        public readonly int[] NodeAt = new int[NodeSlots];
        public readonly long[] NodeAddress = new long[MaxNodes];
        public readonly int[] AdjacencyHead = new int[MaxNodes];
        public readonly int[] Mark = new int[MaxNodes];
        public readonly int[] ReachedBy = new int[MaxNodes];
        public readonly int[] Stack = new int[MaxNodes];
        public readonly long[] EdgeKeys = new long[EdgeSlots];
        public readonly int[] EdgeFrom = new int[MaxEdges];
        public readonly int[] EdgeTo = new int[MaxEdges];
        public readonly int[] EdgeNext = new int[MaxEdges];
        public readonly int[] EdgeFromKind = new int[MaxEdges];
        public readonly int[] EdgeToKind = new int[MaxEdges];
        public readonly long[] EdgeFromSite = new long[MaxEdges];
        public readonly long[] EdgeToSite = new long[MaxEdges];
        public readonly ulong[] EdgeThread = new ulong[MaxEdges];
        public int NodeCount;
        public int EdgeCount;
        public int Generation;
        public bool FullReported;
    }

    private static Tables? s_tables;
    private static readonly Lock s_lock = new();

    internal static void Reset()
    {
        var tables = new Tables();
        System.Array.Fill(tables.AdjacencyHead, -1);
        lock (s_lock)
        {
            Volatile.Write(ref s_tables, tables);
        }
    }

    private static int Hash(long key, int mask)
    {
        ulong h = (ulong)key * 0x9E3779B97F4A7C15UL;
        return (int)(h >> 40) & mask;
    }

    private static int FindNode(Tables t, long address)
    {
        int mask = NodeSlots - 1;
        for (int slot = Hash(address, mask); ; slot = (slot + 1) & mask)
        {
            // Acquire: NodeAt[slot] was written before the key.
            long key = Volatile.Read(ref t.NodeKeys[slot]);
            if (key == address)
            {
                return t.NodeAt[slot];
            }
            if (key == 0)
            {
                return -1;
            }
        }
    }

    private static long EdgeKey(int from, int to) => ((long)(from + 1) << 32) | (uint)(to + 1);

    private static bool FindEdge(Tables t, long key)
    {
        int mask = EdgeSlots - 1;
        for (int slot = Hash(key, mask); ; slot = (slot + 1) & mask)
        {
            long k = Volatile.Read(ref t.EdgeKeys[slot]);
            if (k == key)
            {
                return true;
            }
            if (k == 0)
            {
                return false;
            }
        }
    }

    /// <summary>Lock-free: true when from -> to is known (or no graph exists).</summary>
    internal static bool HasEdge(nint from, nint to)
    {
        Tables? t = Volatile.Read(ref s_tables);
        if (t == null)
        {
            return true;
        }
        int a = FindNode(t, from);
        if (a < 0)
        {
            return false;
        }
        int b = FindNode(t, to);
        return b >= 0 && FindEdge(t, EdgeKey(a, b));
    }

    /// <summary>Under s_lock: the node of address, created if needed; -1 when the graph is full.</summary>
    private static int AddNode(Tables t, long address)
    {
        int mask = NodeSlots - 1;
        for (int slot = Hash(address, mask); ; slot = (slot + 1) & mask)
        {
            long key = t.NodeKeys[slot];
            if (key == address)
            {
                return t.NodeAt[slot];
            }
            if (key == 0)
            {
                if (t.NodeCount == MaxNodes)
                {
                    return -1;
                }
                int id = t.NodeCount++;
                t.NodeAddress[id] = address;
                t.NodeAt[slot] = id;
                // Release: NodeAt before the key that makes it findable.
                Volatile.Write(ref t.NodeKeys[slot], address);
                return id;
            }
        }
    }

    /// <summary>Under s_lock: the edges of a path from -> ... -> to, or null.</summary>
    private static List<int>? FindPath(Tables t, int from, int to)
    {
        int generation = ++t.Generation;
        int top = 0;
        t.Stack[top++] = from;
        t.Mark[from] = generation;
        t.ReachedBy[from] = -1;
        while (top > 0)
        {
            int node = t.Stack[--top];
            if (node == to)
            {
                var path = new List<int>();
                for (int e = t.ReachedBy[to]; e >= 0; e = t.ReachedBy[t.EdgeFrom[e]])
                {
                    path.Add(e);
                }
                path.Reverse();
                return path;
            }
            for (int e = t.AdjacencyHead[node]; e >= 0; e = t.EdgeNext[e])
            {
                int next = t.EdgeTo[e];
                if (t.Mark[next] != generation)
                {
                    t.Mark[next] = generation;
                    t.ReachedBy[next] = e;
                    t.Stack[top++] = next;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Records from -> to (a thread holding <paramref name="from"/> acquires
    /// <paramref name="to"/>). Returns 0, or WEAVE_E_DEADLOCK when
    /// <paramref name="refuseCycle"/> and the edge would close a cycle.
    /// </summary>
    internal static int Add(nint from, int fromKind, long fromSite, nint to, int toKind, long toSite, ulong thread, bool refuseCycle)
    {
        string? report = null;
        int result = 0;
        lock (s_lock)
        {
            Tables? t = s_tables;
            if (t == null)
            {
                return 0;
            }
            int a = AddNode(t, from);
            int b = a < 0 ? -1 : AddNode(t, to);
            if (a < 0 || b < 0 || t.EdgeCount == MaxEdges)
            {
                if (!t.FullReported)
                {
                    t.FullReported = true;
                    report = $"ft_weave debug: the lock-order graph is full ({t.NodeCount} locks, {t.EdgeCount} orders); new lock orders are not checked";
                }
            }
            else
            {
                long key = EdgeKey(a, b);
                if (FindEdge(t, key))
                {
                    return 0;
                }
                List<int>? path = FindPath(t, b, a);
                if (path != null)
                {
                    report = Describe(t, path, from, fromKind, fromSite, to, toKind, toSite, thread, refuseCycle);
                }
                if (path == null || !refuseCycle)
                {
                    int e = t.EdgeCount;
                    t.EdgeFrom[e] = a;
                    t.EdgeTo[e] = b;
                    t.EdgeFromKind[e] = fromKind;
                    t.EdgeToKind[e] = toKind;
                    t.EdgeFromSite[e] = fromSite;
                    t.EdgeToSite[e] = toSite;
                    t.EdgeThread[e] = thread;
                    t.EdgeNext[e] = t.AdjacencyHead[a];
                    t.AdjacencyHead[a] = e;
                    t.EdgeCount = e + 1;
                    int mask = EdgeSlots - 1;
                    int slot = Hash(key, mask);
                    while (t.EdgeKeys[slot] != 0)
                    {
                        slot = (slot + 1) & mask;
                    }
                    // Release: the edge is complete before lock-free readers find it.
                    Volatile.Write(ref t.EdgeKeys[slot], key);
                }
                else
                {
                    result = WEAVE_E_DEADLOCK;
                }
            }
        }
        if (report != null)
        {
            DebugMode.Report(report);
        }
        return result;
    }

    private static string Describe(Tables t, List<int> path, nint from, int fromKind, long fromSite, nint to, int toKind,
                                   long toSite, ulong thread, bool refused)
    {
        var text = new StringBuilder();
        text.Append("ft_weave debug: lock order cycle (potential deadlock): thread ").Append(thread)
            .Append(" acquires ").Append(LockKind.Name(toKind)).Append(' ').Append(DebugMode.Address(to))
            .Append(" at ").Append(DebugMode.Site(toSite))
            .Append(" while holding ").Append(LockKind.Name(fromKind)).Append(' ').Append(DebugMode.Address(from))
            .Append(" (acquired at ").Append(DebugMode.Site(fromSite)).Append("); the opposite lock order was seen before: ");
        for (int i = 0; i < path.Count; i++)
        {
            int e = path[i];
            if (i > 0)
            {
                text.Append("; ");
            }
            text.Append("thread ").Append(t.EdgeThread[e]).Append(" acquired ")
                .Append(LockKind.Name(t.EdgeToKind[e])).Append(' ').Append(DebugMode.Address((nint)t.NodeAddress[t.EdgeTo[e]]))
                .Append(" at ").Append(DebugMode.Site(t.EdgeToSite[e]))
                .Append(" while holding ").Append(LockKind.Name(t.EdgeFromKind[e])).Append(' ')
                .Append(DebugMode.Address((nint)t.NodeAddress[t.EdgeFrom[e]]))
                .Append(" (acquired at ").Append(DebugMode.Site(t.EdgeFromSite[e])).Append(')');
        }
        text.Append(refused ? " [refused: WEAVE_E_DEADLOCK]" : "");
        return text.ToString();
    }
}
