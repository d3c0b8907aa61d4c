using System;
using System.Runtime.CompilerServices;
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
            // Acquire: pairs with the publishing CAS in Allocate (zeroed memory).
            Cell* cells = (Cell*)Volatile.Read(ref s_cells);
            return cells != null ? cells : Allocate();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Cell* Allocate()
    {
        // calloc'ed and aligned to a cache line by hand, so that stripes never
        // share one (never freed). This used NativeMemory.AlignedAlloc, whose
        // OutOfMemoryException ended the process from inside an export; if
        // calloc fails, the zeroed static stripes of the library's C part
        // (src/native/parking_fork.c) serve instead. (calloc first: the C#
        // tests run this code without the C part.)
        byte* raw = (byte*)Libc.Calloc(1, (nuint)(Stripes * CellBytes + CellBytes - 1));
        Cell* fresh = raw != null
            ? (Cell*)(((nuint)raw + (CellBytes - 1)) & ~(nuint)(CellBytes - 1))
            : (Cell*)Native.StatisticsCells();
        // Publish once; a losing racer frees its copy.
        nint previous = Interlocked.CompareExchange(ref s_cells, (nint)fresh, 0);
        if (previous != 0)
        {
            if (raw != null)
            {
                Libc.Free(raw);
            }
            return (Cell*)previous;
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

    /// <summary>
    /// Managed bytes the runtime (which serves only this library) has handed
    /// out so far. Not the precise count: GC.GetTotalAllocatedBytes(precise:
    /// true) suspends every managed thread to read their allocation contexts
    /// (one runtime suspension, with a membarrier IPI, per weave_stats call),
    /// and a thread suspended while it holds a bucket lock stalls every lock
    /// that hashes there. The imprecise count reads the heap's counters and
    /// stops nothing; it counts each allocation context when the GC hands it
    /// to a thread (a few KiB at a time), so it only grows when some thread
    /// allocates, which is what the counter is for: a lock path that allocates
    /// even one byte per operation, or a new thread's first allocation, shows.
    /// </summary>
    internal static ulong ManagedBytes() => (ulong)GC.GetTotalAllocatedBytes(precise: false);
}
