using System;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;

namespace FtWeave.Parking;

/// <summary>
/// Process-wide counters behind weave_stats. The counters are bumped on
/// contended paths by many threads at once, so a single word each would become
/// a shared, bouncing cache line in exactly the code that should be fastest.
/// Each counter is striped over cache-line-sized cells chosen by the calling
/// thread's id; readers add the stripes up. Stripes live in native memory
/// (no managed allocation on the lock paths).
/// </summary>
internal static unsafe class Statistics
{
    private const int Stripes = 32; // power of two
    private const int CellBytes = 64;

    internal enum Counter
    {
        Parks = 0,
        Unparks = 1,
        Handoffs = 2,
        Spins = 3,
        Count = 4,
    }

    [StructLayout(LayoutKind.Sequential, Size = CellBytes)]
    private struct Cell
    {
        public ulong Parks;
        public ulong Unparks;
        public ulong Handoffs;
        public ulong Spins;
    }

    // Cell*, held as nint because pointers cannot be Volatile/Interlocked type arguments.
    private static nint s_cells;

    private static Cell* Cells
    {
        get
        {
            Cell* cells = (Cell*)Volatile.Read(ref s_cells);
            return cells != null ? cells : Allocate();
        }
    }

    private static Cell* Allocate()
    {
        // aligned to a cache line so that stripes never share one
        Cell* fresh = (Cell*)NativeMemory.AlignedAlloc((nuint)(Stripes * CellBytes), CellBytes);
        NativeMemory.Clear(fresh, (nuint)(Stripes * CellBytes));
        // Publish once; a losing racer frees its copy. Release/acquire through
        // the CAS and the Volatile.Read in Cells make the zeroed memory visible.
        Cell* previous = (Cell*)Interlocked.CompareExchange(ref s_cells, (nint)fresh, 0);
        if (previous != null)
        {
            NativeMemory.AlignedFree(fresh);
            return previous;
        }
        return fresh;
    }

    private static ulong* Slot(Counter counter)
    {
        // pthread_self() is the thread's control block address: spread its
        // page-aligned bits over the stripes.
        nuint id = Pthread.Self();
        int stripe = (int)((id >> 12) ^ (id >> 20)) & (Stripes - 1);
        return (ulong*)(Cells + stripe) + (int)counter;
    }

    internal static void Add(Counter counter, ulong amount)
    {
        if (amount != 0)
        {
            // Relaxed would do (the counters order nothing); Interlocked is the
            // only atomic add C# has, and it is uncontended within a stripe.
            Interlocked.Add(ref *Slot(counter), amount);
        }
    }

    internal static void Increment(Counter counter) => Interlocked.Increment(ref *Slot(counter));

    internal static ulong Read(Counter counter)
    {
        ulong total = 0;
        Cell* cells = Cells;
        for (int i = 0; i < Stripes; i++)
        {
            total += Volatile.Read(ref *((ulong*)(cells + i) + (int)counter));
        }
        return total;
    }

    /// <summary>Managed bytes the runtime (which serves only this library) has allocated so far.</summary>
    internal static ulong ManagedBytes() => (ulong)GC.GetTotalAllocatedBytes(precise: true);
}
