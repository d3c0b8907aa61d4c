using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;

namespace FtWeave.Diagnostics;

/// <summary>
/// The contention profile's recording side (docs/diagnostics.md, "Contention
/// profile"). The locks' slow paths call it only while <see cref="On"/> is
/// non-zero: one load of a static field (this class has no static
/// constructor, so the load carries no class-initialisation check), nothing on
/// the inline fast paths.
///
/// One event is one sampled acquisition that waited for a release, recorded
/// by the waiter once it holds the lock (so nothing is recorded under a
/// parking-lot bucket lock, and the releasing thread pays only for capturing
/// its stack):
///
///   waiter                                  releaser (unlock slow path)
///   ------                                  ---------------------------
///   BeginWait: sampled? capture own stack,  OnRelease: a sampled waiter
///   start time, register on the lock's       registered on this lock? capture
///   board slot (remember its Seq)            own stack into the slot, Seq++
///   ... park, be woken ...                   ... wake or hand over ...
///   EndWait: holds the lock and Seq moved:
///   record (lock, own stack, slot's stack,
///   now - start) into the table
///
/// The slot's stack is that of the last slow-path release of the lock before
/// the waiter got it: the release that woke it or handed it the lock, or that
/// of a thread that barged in between (which then is the releaser the waiter
/// really waited for). A wait with no release seen (the lock was free again
/// before the waiter slept) is not an event.
///
/// Memory: the table and the board are unmanaged blocks allocated when
/// profiling first starts; an event allocates nothing. Each thread's wait
/// record is a thread static (allocated by the runtime on the thread's first
/// use of this class). The table is open addressing with a claim state per
/// entry; recording never waits for another thread except for the few
/// instructions in which one fills a new entry or a board slot.
/// </summary>
internal static unsafe class ContentionProfile
{
    /// <summary>Non-zero while recording. Read by the slow paths (racy by design: a wait
    /// that starts just after a stop may still be recorded).</summary>
    internal static int On;

    /// <summary>Frames kept per stack (outside the library).</summary>
    internal const int Depth = 8;
    internal const int TableCapacity = 4096;
    internal const int BoardSlots = 256;

    /// <summary>Record 1 in <see cref="s_rate"/> waits (scaled back when recorded).</summary>
    private static int s_rate;
    private static Entry* s_table;
    private static Slot* s_board;
    private static int s_generation;
    private static int s_users;
    private static long s_dropped;
    private static long s_startNs;

    [ThreadStatic]
    private static WaitRecord t_wait;

    /// <summary>One aggregated row: a lock, a waiting stack and a releasing stack.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Entry
    {
        /// <summary>0 free, 1 being filled by the thread that claimed it, 2 ready.</summary>
        public int State;
        public int WaitDepth;
        public int ReleaseDepth;
        public int Padding;
        public ulong Hash;
        public nuint Lock;
        public long Count;
        public long TotalNs;
        public long MaxNs;
        public fixed ulong Wait[Depth];
        public fixed ulong Release[Depth];
    }

    /// <summary>Where a lock's sampled waiters find their releaser's stack.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        /// <summary>A spin flag held for a few instructions (copying a stack).</summary>
        public int Busy;
        /// <summary>Sampled waiters registered on <see cref="Lock"/>.</summary>
        public int Waiters;
        /// <summary>Bumped by each captured release.</summary>
        public int Seq;
        public int ReleaseDepth;
        public nuint Lock;
        public fixed ulong Release[Depth];
    }

    private struct WaitRecord
    {
        public int InUse;
        public int Slot;
        public int Seq;
        public int Generation;
        public int Rate;
        public int WaitDepth;
        public uint Random;
        public long StartNs;
        public nuint Lock;
        public fixed ulong Wait[Depth];
    }

    internal const int DefaultRate = 1;

    internal static int Rate => s_rate > 0 ? s_rate : DefaultRate;
    internal static long Dropped => Volatile.Read(ref s_dropped);
    internal static long StartNs => s_startNs;
    internal static Entry* Table => s_table;
    internal static bool EverStarted => s_table != null;

    /// <summary>Sets the sampling rate (1 records every wait); callers validated n >= 1.</summary>
    internal static void SetRate(int n) => Volatile.Write(ref s_rate, n);

    /// <summary>
    /// Starts recording into an empty table. Single caller at a time
    /// (ContentionProfileControl serialises start/stop). False when the
    /// memory could not be had.
    /// </summary>
    internal static bool Start()
    {
        if (s_table == null)
        {
            Entry* table = (Entry*)NativeMemory.AllocZeroed((nuint)TableCapacity, (nuint)sizeof(Entry));
            Slot* board = (Slot*)NativeMemory.AllocZeroed((nuint)BoardSlots, (nuint)sizeof(Slot));
            if (table == null || board == null)
            {
                NativeMemory.Free(table);
                NativeMemory.Free(board);
                return false;
            }
            s_board = board;
            // Published before On is set (its release write below), so a
            // slow path that sees On sees both blocks zeroed.
            s_table = table;
        }
        else
        {
            // A new generation first (full fence): a recorder that registers
            // as a user after this sees it and drops its event; those already
            // registered are waited for, then the table is cleared.
            Interlocked.Increment(ref s_generation);
            while (Volatile.Read(ref s_users) != 0)
            {
                Thread.Yield();
            }
            NativeMemory.Clear(s_table, (nuint)TableCapacity * (nuint)sizeof(Entry));
            Volatile.Write(ref s_dropped, 0);
        }
        // backtrace() loads libgcc_s on its first call: do it here, not in a slow path.
        Native.ProfileWarmUp();
        s_startNs = Futex.MonotonicNow();
        Volatile.Write(ref On, 1);
        return true;
    }

    internal static void Stop() => Volatile.Write(ref On, 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SlotOf(void* lockAddress)
    {
        ulong x = (ulong)lockAddress;
        x ^= x >> 17;
        x *= 0x9E3779B97F4A7C15UL;
        return (int)(x >> 56) & (BoardSlots - 1);
    }

    private static bool TryLockSlot(Slot* s)
    {
        for (int i = 0; i < 64; i++)
        {
            // Acquire: the previous holder's writes to the slot are visible.
            if (Volatile.Read(ref s->Busy) == 0 && Interlocked.CompareExchange(ref s->Busy, 1, 0) == 0)
            {
                return true;
            }
            Thread.Yield();
        }
        return false;
    }

    /// <summary>Release: the slot's writes happen before the next holder's acquire.</summary>
    private static void UnlockSlot(Slot* s) => Volatile.Write(ref s->Busy, 0);

    /// <summary>
    /// A thread is about to wait for <paramref name="lockAddress"/> (profiling
    /// is on). True when this wait is sampled: its stack and start time are
    /// kept and <see cref="EndWait"/> must follow on this thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static bool BeginWait(void* lockAddress)
    {
        ref WaitRecord w = ref t_wait;
        if (w.InUse != 0)
        {
            // A wait inside a wait (a signal handler run while parked): keep the outer one.
            return false;
        }
        int rate = Rate;
        if (rate > 1)
        {
            uint r = w.Random;
            if (r == 0)
            {
                r = (uint)Environment.CurrentManagedThreadId * 0x9E3779B9u | 1;
            }
            // xorshift32: cheap, per thread, no shared counter to contend on.
            r ^= r << 13;
            r ^= r >> 17;
            r ^= r << 5;
            w.Random = r;
            if (r % (uint)rate != 0)
            {
                return false;
            }
        }
        Slot* board = s_board;
        if (board == null)
        {
            return false;
        }
        int index = SlotOf(lockAddress);
        Slot* s = board + index;
        if (!TryLockSlot(s))
        {
            return false;
        }
        if (s->Lock == (nuint)lockAddress)
        {
            s->Waiters++;
        }
        else if (s->Waiters == 0)
        {
            s->Lock = (nuint)lockAddress;
            s->Waiters = 1;
            s->ReleaseDepth = 0;
        }
        else
        {
            // Another lock's sampled waiters hold the slot: skip this sample.
            UnlockSlot(s);
            return false;
        }
        w.Seq = s->Seq;
        UnlockSlot(s);

        w.InUse = 1;
        w.Slot = index;
        w.Lock = (nuint)lockAddress;
        w.Rate = rate;
        w.Generation = Volatile.Read(ref s_generation);
        fixed (ulong* stack = w.Wait)
        {
            w.WaitDepth = Native.ProfileStack(stack, Depth);
        }
        w.StartNs = Futex.MonotonicNow();
        return true;
    }

    /// <summary>
    /// Ends the sampled wait begun by <see cref="BeginWait"/>: records it when
    /// the lock was acquired after a release was captured. Call after the
    /// park returned (never under a bucket lock).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void EndWait(void* lockAddress, bool acquired)
    {
        ref WaitRecord w = ref t_wait;
        if (w.InUse == 0 || w.Lock != (nuint)lockAddress)
        {
            return;
        }
        long delay = Futex.MonotonicNow() - w.StartNs;
        Slot* s = s_board + w.Slot;
        ulong* release = stackalloc ulong[Depth];
        int releaseDepth = 0;
        bool released = false;
        // The registration must be undone whatever happens: spin until the
        // flag is ours (its holders never block while holding it).
        while (!TryLockSlot(s))
        {
        }
        s->Waiters--;
        if (s->Seq != w.Seq)
        {
            released = true;
            releaseDepth = s->ReleaseDepth;
            for (int i = 0; i < releaseDepth; i++)
            {
                release[i] = s->Release[i];
            }
        }
        UnlockSlot(s);
        w.InUse = 0;
        if (!acquired || !released || Volatile.Read(ref On) == 0)
        {
            return;
        }
        fixed (ulong* wait = w.Wait)
        {
            Record((nuint)lockAddress, wait, w.WaitDepth, release, releaseDepth, delay, w.Rate, w.Generation);
        }
    }

    /// <summary>
    /// The unlock slow path of <paramref name="lockAddress"/>, before it wakes
    /// or hands over to a waiter (profiling is on, no bucket lock held): when
    /// a sampled waiter is registered on the lock, leaves this release's stack
    /// for it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void OnRelease(void* lockAddress)
    {
        Slot* board = s_board;
        if (board == null)
        {
            return;
        }
        Slot* s = board + SlotOf(lockAddress);
        if (Volatile.Read(ref s->Lock) != (nuint)lockAddress || Volatile.Read(ref s->Waiters) == 0)
        {
            return;
        }
        ulong* stack = stackalloc ulong[Depth];
        int depth = Native.ProfileStack(stack, Depth);
        if (!TryLockSlot(s))
        {
            return;
        }
        if (s->Lock == (nuint)lockAddress && s->Waiters != 0)
        {
            for (int i = 0; i < depth; i++)
            {
                s->Release[i] = stack[i];
            }
            s->ReleaseDepth = depth;
            s->Seq++;
        }
        UnlockSlot(s);
    }

    private static ulong Mix(ulong h, ulong v)
    {
        h ^= v;
        h *= 0x100000001B3UL;
        return h ^ (h >> 29);
    }

    private static void Record(nuint lockAddress, ulong* wait, int waitDepth, ulong* release, int releaseDepth,
                               long delay, int rate, int generation)
    {
        ulong hash = Mix(0xCBF29CE484222325UL, lockAddress);
        for (int i = 0; i < waitDepth; i++)
        {
            hash = Mix(hash, wait[i]);
        }
        hash = Mix(hash, (ulong)waitDepth << 32 | (uint)releaseDepth);
        for (int i = 0; i < releaseDepth; i++)
        {
            hash = Mix(hash, release[i]);
        }

        // Registered as a user (full fence) before reading the generation:
        // a restart either sees us and waits, or we see its new generation.
        Interlocked.Increment(ref s_users);
        try
        {
            if (Volatile.Read(ref s_generation) != generation)
            {
                return;
            }
            Entry* e = Find(hash, lockAddress, wait, waitDepth, release, releaseDepth);
            if (e == null)
            {
                Interlocked.Increment(ref s_dropped);
                return;
            }
            Interlocked.Add(ref e->Count, rate);
            Interlocked.Add(ref e->TotalNs, delay * rate);
            long max = Volatile.Read(ref e->MaxNs);
            while (delay > max)
            {
                long seen = Interlocked.CompareExchange(ref e->MaxNs, delay, max);
                if (seen == max)
                {
                    break;
                }
                max = seen;
            }
        }
        finally
        {
            Interlocked.Decrement(ref s_users);
        }
    }

    private static Entry* Find(ulong hash, nuint lockAddress, ulong* wait, int waitDepth, ulong* release, int releaseDepth)
    {
        Entry* table = s_table;
        int mask = TableCapacity - 1;
        int index = (int)(hash & (ulong)mask);
        for (int probe = 0; probe < TableCapacity; probe++, index = (index + 1) & mask)
        {
            Entry* e = table + index;
            int state = Volatile.Read(ref e->State);
            if (state == 0)
            {
                if (Interlocked.CompareExchange(ref e->State, 1, 0) == 0)
                {
                    e->Hash = hash;
                    e->Lock = lockAddress;
                    e->WaitDepth = waitDepth;
                    e->ReleaseDepth = releaseDepth;
                    for (int i = 0; i < waitDepth; i++)
                    {
                        e->Wait[i] = wait[i];
                    }
                    for (int i = 0; i < releaseDepth; i++)
                    {
                        e->Release[i] = release[i];
                    }
                    // Release: the key is complete before anyone compares it.
                    Volatile.Write(ref e->State, 2);
                    return e;
                }
                state = Volatile.Read(ref e->State);
            }
            for (int spins = 0; state == 1; spins++)
            {
                // Another recorder is filling this entry (a few stores); it
                // may have been preempted, so yield after a short spin.
                if (spins < 64)
                {
                    Thread.SpinWait(1);
                }
                else
                {
                    Thread.Yield();
                }
                state = Volatile.Read(ref e->State);
            }
            if (e->Hash == hash && e->Lock == lockAddress && SameKey(e, wait, waitDepth, release, releaseDepth))
            {
                return e;
            }
        }
        return null;
    }

    private static bool SameKey(Entry* e, ulong* wait, int waitDepth, ulong* release, int releaseDepth)
    {
        if (e->WaitDepth != waitDepth || e->ReleaseDepth != releaseDepth)
        {
            return false;
        }
        for (int i = 0; i < waitDepth; i++)
        {
            if (e->Wait[i] != wait[i])
            {
                return false;
            }
        }
        for (int i = 0; i < releaseDepth; i++)
        {
            if (e->Release[i] != release[i])
            {
                return false;
            }
        }
        return true;
    }
}
