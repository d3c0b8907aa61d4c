using System.Runtime.CompilerServices;
using System.Threading;
using FtWeave.Diagnostics;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Python;

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
/// </summary>
internal static unsafe class RWMutex
{
    internal const nuint WriteLocked = 1;
    internal const nuint HasParked = 2;
    internal const int ReaderShift = 2;
    internal const nuint OneReader = (nuint)1 << ReaderShift;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint ReaderCount(nuint bits) => bits >> ReaderShift;

    /// <summary>The inline weave_rwmutex_rlock of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RLock(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
        if ((bits & (WriteLocked | HasParked)) != 0 || Interlocked.CompareExchange(ref *rw, bits + OneReader, bits) != bits)
        {
            RLockSlow(rw);
        }
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
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            RLockSlowWait(rw);
            ContentionProfile.EndWait(rw, acquired: true);
            return;
        }
        RLockSlowWait(rw);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RLockSlowWait(nuint* rw)
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
            bits = seen;
        }
    }

    /// <summary>
    /// weave_rwmutex_runlock (and its slow path): 0, or WEAVE_E_NOT_OWNER when
    /// no reader holds the lock (the word is left as it was).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int RUnlock(nuint* rw)
    {
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
                bits = seen;
                continue;
            }
            if (ReaderCount(next) == 0 && (next & HasParked) != 0)
            {
                // Last reader out in front of a parked writer: wake everyone
                // (HasParked stays set so that new readers keep out until the
                // writer has had its turn).
                if (ContentionProfile.On != 0)
                {
                    ContentionProfile.OnRelease(rw);
                }
                ParkingLot.UnparkAll(rw);
            }
            return 0;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(nuint* rw)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            LockSlowWait(rw);
            ContentionProfile.EndWait(rw, acquired: true);
            return;
        }
        LockSlowWait(rw);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LockSlowWait(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            if ((bits & ~HasParked) == 0)
            {
                // No readers, no writer: take it, keeping HasParked for the
                // threads still parked (our Unlock will wake them).
                // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
                nuint seen = Interlocked.CompareExchange(ref *rw, bits | WriteLocked, bits);
                if (seen == bits)
                {
                    return;
                }
                bits = seen;
                continue;
            }
            bits = SetParkedAndWait(rw, bits);
        }
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
                if (ContentionProfile.On != 0)
                {
                    ContentionProfile.OnRelease(rw);
                }
                ParkingLot.UnparkAll(rw);
            }
            return 0;
        }
    }

    /// <summary>
    /// weave_rwmutex_rlock_timed: RLockSlow with a timeout and the
    /// WEAVE_LOCK_* flags of weave_mutex_lock_timed (validated by the caller).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int RLockTimed(nuint* rw, long timeoutNs, int flags)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            int status = RLockTimedWait(rw, timeoutNs, flags);
            ContentionProfile.EndWait(rw, status == LockStatus.Acquired);
            return status;
        }
        return RLockTimedWait(rw, timeoutNs, flags);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int RLockTimedWait(nuint* rw, long timeoutNs, int flags)
    {
        var waiter = new TimedWait(timeoutNs, flags);
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            if ((bits & (WriteLocked | HasParked)) == 0)
            {
                // Acquire (full barrier): pairs with the release of the last
                // writer's Unlock.
                nuint seen = Interlocked.CompareExchange(ref *rw, bits + OneReader, bits);
                if (seen == bits)
                {
                    return LockStatus.Acquired;
                }
                bits = seen;
                continue;
            }
            int status = waiter.Wait(rw, ref bits);
            if (status >= 0)
            {
                return status;
            }
        }
    }

    /// <summary>weave_rwmutex_lock_timed: LockSlow with a timeout and flags.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int LockTimed(nuint* rw, long timeoutNs, int flags)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            int status = LockTimedWait(rw, timeoutNs, flags);
            ContentionProfile.EndWait(rw, status == LockStatus.Acquired);
            return status;
        }
        return LockTimedWait(rw, timeoutNs, flags);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int LockTimedWait(nuint* rw, long timeoutNs, int flags)
    {
        var waiter = new TimedWait(timeoutNs, flags);
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            if ((bits & ~HasParked) == 0)
            {
                // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
                nuint seen = Interlocked.CompareExchange(ref *rw, bits | WriteLocked, bits);
                if (seen == bits)
                {
                    return LockStatus.Acquired;
                }
                bits = seen;
                continue;
            }
            int status = waiter.Wait(rw, ref bits);
            if (status >= 0)
            {
                return status;
            }
        }
    }

    /// <summary>
    /// The waiting half of the timed acquires. A waiter that gives up
    /// (timeout, signal) after it announced itself cannot simply leave: it may
    /// have set HasParked for itself alone, and HasParked makes new readers
    /// park and keeps the last reader's RUnlock from being the one that lets
    /// them in (it wakes the parked threads, which see HasParked again and
    /// park again: stranded). So it clears HasParked and wakes every parked
    /// thread, as Unlock does; those still waiting re-announce themselves.
    /// </summary>
    private struct TimedWait
    {
        private long _timeoutNs;
        private readonly long _deadline;
        private readonly int _flags;
        private bool _announced;

        internal TimedWait(long timeoutNs, int flags)
        {
            _timeoutNs = timeoutNs;
            _deadline = timeoutNs > 0 ? Futex.MonotonicNow() + timeoutNs : -1;
            _flags = flags;
            _announced = false;
        }

        /// <summary>
        /// Waits once. Returns -1 to retry with `bits` (updated), or a final
        /// LockStatus (Failure, Interrupted).
        /// </summary>
        internal int Wait(nuint* rw, ref nuint bits)
        {
            long parkTimeout = _timeoutNs;
            if (_timeoutNs == 0)
            {
                return GiveUp(rw, LockStatus.Failure);
            }
            if (_timeoutNs > 0)
            {
                parkTimeout = _deadline - Futex.MonotonicNow();
                if (parkTimeout <= 0)
                {
                    // One more look at the word, then fail.
                    _timeoutNs = 0;
                    bits = Volatile.Read(ref *rw);
                    return -1;
                }
            }
            if ((bits & HasParked) == 0)
            {
                nuint announced = bits | HasParked;
                // Full barrier: the releasing thread's CAS reads this bit and
                // then unparks. On failure, retry with what we saw.
                nuint seen = Interlocked.CompareExchange(ref *rw, announced, bits);
                if (seen != bits)
                {
                    bits = seen;
                    return -1;
                }
                bits = announced;
            }
            _announced = true;
            nuint expected = bits;
            int parked = ParkingLot.Park(rw, &expected, sizeof(nuint), parkTimeout, null,
                                         detach: (_flags & LockFlags.Detach) != 0);
            if (parked == ParkResult.Interrupted)
            {
                if ((_flags & LockFlags.FailIfInterrupted) != 0 ||
                    ((_flags & LockFlags.HandleSignals) != 0 && !CPythonRuntime.RunPendingCalls()))
                {
                    return GiveUp(rw, LockStatus.Interrupted);
                }
            }
            else if (parked == ParkResult.Timeout)
            {
                _timeoutNs = 0; // one more attempt to take it, then fail
            }
            bits = Volatile.Read(ref *rw);
            return -1;
        }

        private readonly int GiveUp(nuint* rw, int status)
        {
            if (!_announced)
            {
                return status;
            }
            nuint bits = Volatile.Read(ref *rw);
            while ((bits & HasParked) != 0)
            {
                // Release/acquire (full barrier) as in Unlock: every parked
                // thread is woken below and re-announces itself if it still
                // has to wait, so clearing the bit loses nobody.
                nuint seen = Interlocked.CompareExchange(ref *rw, bits & ~HasParked, bits);
                if (seen == bits)
                {
                    ParkingLot.UnparkAll(rw);
                    break;
                }
                bits = seen;
            }
            return status;
        }
    }
}
