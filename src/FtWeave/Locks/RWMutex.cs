using System.Runtime.CompilerServices;
using System.Threading;
using System;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Threads;

namespace FtWeave.Locks;

/// <summary>
/// weave_rwmutex_t: a writer-preferring reader-writer lock in one word,
/// CPython's _PyRWMutex (Python/lock.c).
///
///   bits         | meaning
///   -------------+---------------------------------------------------------
///   bit 0        | WriteLocked
///   bit 1        | HasParked: a writer (or readers behind one) waits; new
///                | readers park instead of joining the current readers
///   bits 2..     | number of readers holding the lock (ReaderShift)
///
/// For example 1 = one writer; 8 = two readers; 10 = two readers and a
/// waiting writer; 3 = a writer with readers parked behind it; 2 = unlocked,
/// parked threads just woken (a writer is about to take it). A reader never
/// joins while HasParked is set, so a waiting writer gets in once the
/// current readers leave. Every release that finds HasParked wakes
/// all parked threads; they re-run their acquire loops (and re-set HasParked
/// if they must wait again). Not fair among writers, not reentrant.
///
/// Reader bias (BRAVO, Dice and Kogan, USENIX ATC 2019; docs/locks.md):
/// while the top bit (ReaderBias) is set, readers announce themselves in
/// their slot of the visible-readers table of src/native/rwmutex_bias.c
/// (the header's inline rlock/runlock do the same) instead of counting
/// themselves in the word, so read-mostly locks do not bounce the word's
/// cache line between readers. A writer clears ReaderBias in the CAS that
/// takes WriteLocked and then waits until no slot names the lock
/// (<see cref="Revoke"/>); the bias is turned on by a reader whose CAS on
/// the word lost to another reader (<see cref="MaybeEnableBias"/>), once the
/// inhibit time of the last revocation passed: a lock whose readers never
/// contend keeps the plain one-word behaviour.
/// Invariant: while ReaderBias is clear and WriteLocked is clear, no slot
/// holds a committed reader of the lock (the only writer that cleared the
/// bit waited for them before it released WriteLocked).
/// </summary>
internal static unsafe class RWMutex
{
    internal const nuint WriteLocked = 1;
    internal const nuint HasParked = 2;
    internal const int ReaderShift = 2;
    internal const nuint OneReader = (nuint)1 << ReaderShift;

    /// <summary>WEAVE_RWMUTEX_READER_BIAS: the word's top bit.</summary>
    internal static nuint ReaderBias
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (nuint)1 << (IntPtr.Size * 8 - 1);
    }

    /// <summary>Readers counted in the word (not those in the table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint ReaderCount(nuint bits) => (bits & ~ReaderBias) >> ReaderShift;

    /// <summary>The inline weave_rwmutex_rlock of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RLock(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        if ((bits & ReaderBias) != 0)
        {
            if ((bits & HasParked) == 0 && Native.RWMutexTryRLockBiased(rw) != 0)
            {
                return;
            }
        }
        // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
        else if ((bits & (WriteLocked | HasParked)) == 0 && Interlocked.CompareExchange(ref *rw, bits + OneReader, bits) == bits)
        {
            return;
        }
        RLockSlow(rw);
    }

    /// <summary>The inline weave_rwmutex_lock of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Lock(nuint* rw)
    {
        // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
        if (Interlocked.CompareExchange(ref *rw, WriteLocked, 0) != 0)
        {
            LockSlow(rw);
        }
    }

    /// <summary>
    /// Sets HasParked (if needed) and parks until a release wakes us. Returns
    /// the word to retry with: the value that beat our CAS, or a fresh read.
    /// </summary>
    private static nuint SetParkedAndWait(nuint* rw, nuint bits)
    {
        if ((bits & HasParked) == 0)
        {
            nuint announced = bits | HasParked;
            // Full barrier: the releasing thread's exchange/CAS reads this bit
            // and then unparks. On failure, retry with what we saw.
            nuint seen = Interlocked.CompareExchange(ref *rw, announced, bits);
            if (seen != bits)
            {
                return seen;
            }
            bits = announced;
        }
        // Sleeps only while the word is still `bits`: a release that changed
        // it before we queued makes this return AGAIN. Detached, as CPython.
        ParkingLot.Park(rw, &bits, sizeof(nuint), -1, null, detach: true);
        return Volatile.Read(ref *rw);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void RLockSlow(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            if ((bits & WriteLocked) != 0)
            {
                // A writer holds it.
                bits = SetParkedAndWait(rw, bits);
                continue;
            }
            if ((bits & HasParked) != 0)
            {
                // Readers hold it (or just left) but a writer waits: do not
                // starve it; wait for it to run and wake us.
                bits = SetParkedAndWait(rw, bits);
                continue;
            }
            // Unlocked or read-locked, nobody waiting: join the readers.
            // Acquire (full barrier): pairs with the release of the last
            // writer's Unlock.
            nuint seen = Interlocked.CompareExchange(ref *rw, bits + OneReader, bits);
            if (seen == bits)
            {
                return;
            }
            if (ReaderCount(seen) != ReaderCount(bits))
            {
                // Another reader moved the count under us: readers contend
                // on the word, which is what the bias is for.
                MaybeEnableBias(rw);
            }
            bits = Volatile.Read(ref *rw);
        }
    }

    /// <summary>
    /// A reader's CAS on the word lost to another reader: turns the bias on
    /// when it is off, no writer holds or waits, and the inhibit time of the
    /// last revocation has passed. One attempt: a failed CAS means the word
    /// moved, and the next contended reader will try again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MaybeEnableBias(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        if ((bits & (ReaderBias | WriteLocked | HasParked)) != 0 || Native.RWMutexBiasAllowed(rw) == 0)
        {
            return;
        }
        // Full barrier. The CAS sets the bit only on a word without
        // WriteLocked: no writer holds the lock, so no slot holds a stale
        // reader (the class invariant), and the next writer sees the bit in
        // its CAS and revokes. Biased readers that load this value
        // synchronize with the last writer's release through the word's
        // release sequence (every change of the word is a read-modify-write).
        Interlocked.CompareExchange(ref *rw, bits | ReaderBias, bits);
    }

    /// <summary>
    /// weave_rwmutex_runlock (and its slow path): 0, or WEAVE_E_NOT_OWNER when
    /// no reader holds the lock (the word is left as it was).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int RUnlock(nuint* rw)
    {
        // A biased read lock of the caller first: its slot names rw and holds
        // its thread id (a reader of another thread in a colliding slot does
        // not count). Checked whether or not the bias is still on: a revoking
        // writer may be waiting for exactly this slot.
        if (Native.RWMutexTryRUnlockBiased(rw) != 0)
        {
            return 0;
        }
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            // A CAS loop rather than CPython's fetch-sub: a misplaced runlock
            // must not wrap the reader count into the flag bits.
            if (ReaderCount(bits) == 0)
            {
                return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
            }
            nuint next = bits - OneReader;
            // Release (full barrier): the reader's loads happen before the
            // writer's acquire that sees the count drop.
            nuint seen = Interlocked.CompareExchange(ref *rw, next, bits);
            if (seen != bits)
            {
                if (ReaderCount(seen) != ReaderCount(bits))
                {
                    MaybeEnableBias(rw); // readers contend on the word
                }
                bits = Volatile.Read(ref *rw);
                continue;
            }
            if (ReaderCount(next) == 0 && (next & HasParked) != 0)
            {
                // Last reader out in front of a parked writer: wake everyone
                // (HasParked stays set so that new readers keep out until the
                // writer has had its turn).
                ParkingLot.UnparkAll(rw);
            }
            return 0;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            if ((bits & ~(HasParked | ReaderBias)) == 0)
            {
                // No counted readers, no writer: take it, keeping HasParked
                // for the threads still parked (our Unlock will wake them),
                // and clearing ReaderBias in the same step: from here on a
                // reader that re-reads the word backs out of its slot.
                // Full barrier (acquire, and the store half of the Dekker
                // pair with the readers' slot CAS + re-read of the word).
                nuint seen = Interlocked.CompareExchange(ref *rw, (bits | WriteLocked) & ~ReaderBias, bits);
                if (seen == bits)
                {
                    if ((bits & ReaderBias) != 0)
                    {
                        Revoke(rw);
                    }
                    return;
                }
                bits = seen;
                continue;
            }
            // Counted readers or a writer hold it. The bias stays on while we
            // wait, but HasParked keeps new readers out of the table as well
            // as out of the count (they re-read it after their slot CAS), so
            // the counted readers drain and we get in next.
            bits = SetParkedAndWait(rw, bits);
        }
    }

    /// <summary>
    /// Called holding WriteLocked, having cleared ReaderBias: waits until no
    /// slot of the visible-readers table names rw (the readers that got in
    /// while the bias was on leave; no new one can commit), spinning, then
    /// yielding, then sleeping detached (a reader may need the Python thread
    /// state we hold to finish). Then inhibits the bias for a multiple of
    /// what this cost, so a run of writers revokes once.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Revoke(nuint* rw)
    {
        long start = Futex.MonotonicNow();
        int round = 0;
        bool detached = false;
        nint token = 0;
        long sleepNs = 10_000;
        while (Native.RWMutexBiasedReaders(rw) != 0)
        {
            if (round < 64)
            {
                SpinWaits.Pause(16);
            }
            else if (round < 128)
            {
                SpinWaits.Yield();
            }
            else
            {
                if (!detached)
                {
                    token = ThreadDetach.BeforeSleep();
                    detached = true;
                }
                int never = 0; // a private word nobody wakes: a timed sleep
                Futex.Wait(&never, 0, Futex.MonotonicNow() + sleepNs);
                sleepNs = Math.Min(sleepNs * 2, 1_000_000);
            }
            round++;
        }
        if (detached)
        {
            ThreadDetach.AfterSleep(token);
        }
        Native.RWMutexRevoked(rw, start);
    }

    /// <summary>
    /// weave_rwmutex_unlock (and its slow path): 0, or WEAVE_E_NOT_OWNER when
    /// the lock is not write-locked (the word is left as it was).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Unlock(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            // A CAS loop rather than CPython's blind exchange to 0: an unlock
            // of a read-locked or unlocked word must not clear it.
            if ((bits & WriteLocked) == 0)
            {
                return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
            }
            // Release (full barrier): the writer's stores happen before the
            // acquire of the next reader or writer. Clearing HasParked is
            // fine: every parked thread is woken below and re-announces itself
            // if it has to wait again.
            nuint seen = Interlocked.CompareExchange(ref *rw, 0, bits);
            if (seen != bits)
            {
                bits = seen;
                continue;
            }
            if ((bits & HasParked) != 0)
            {
                ParkingLot.UnparkAll(rw);
            }
            return 0;
        }
    }
}
