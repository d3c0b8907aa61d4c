using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Diagnostics;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Python;

namespace FtWeave.Locks;

/// <summary>
/// What a thread parked on a mutex passes as its park argument. The unlock
/// callback reads and writes it under the bucket lock. A condition variable's
/// waiter starts with the same fields, so that it can be requeued onto a mutex
/// and handed the lock like any other waiter.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MutexWaiter
{
    /// <summary>Monotonic time after which unlock hands the lock over instead of releasing it.</summary>
    public long TimeToBeFairNs;
    /// <summary>Set by the unlock callback: the lock was handed to this waiter (the byte stayed locked).</summary>
    public int HandedOff;
}

/// <summary>
/// weave_mutex_t: two bytes, <c>_locked</c> (offset 0) and <c>_parked</c>
/// (offset 1). CPython's PyMutex algorithm (Python/lock.c) with the two bits
/// split so that the uncontended unlock needs no read-modify-write:
///
///   _locked | _parked bit 0 | meaning
///   --------+---------------+------------------------------------------
///      0    |       0       | unlocked, nobody parked
///      1    |       0       | locked, nobody parked: unlock is a plain
///           |               | store (if bits 1-7 are 0 too)
///      0    |       1       | unlocked, waiters may be parked (one was woken)
///      1    |       1       | locked, waiters may be parked: unlock unparks one
///
/// Bits 1-7 of <c>_parked</c> count the threads inside weave_cond_wait on
/// this mutex (<see cref="CondWaiterUnit"/>; saturating, see
/// <see cref="AddCondWaiter"/>). Any non-zero <c>_parked</c> sends an unlock
/// to the slow path, which takes the bucket lock: that is what lets a
/// condition signal move a waiter onto a held mutex without the barrier.
///
/// Lock is one CAS of <c>_locked</c> (0 -> 1). Unlock, when it finds
/// <c>_locked</c> 1 and <c>_parked</c> 0, stores <c>_locked</c> = 0 (release)
/// and then reads <c>_parked</c> again; non-zero sends it to
/// <see cref="UnlockWake"/>. That store-then-load is the classic Dekker race
/// (the unlocker's load may pass its own store, so it can miss a waiter that
/// set <c>_parked</c> and then saw the byte still locked). The waiter closes
/// it: after raising <c>_parked</c> and before its final check of
/// <c>_locked</c> under the bucket lock it runs a process-wide barrier
/// (<see cref="Interlocked.MemoryBarrierProcessWide"/>, membarrier on Linux),
/// which puts a full fence into every running thread of the process. Either
/// the fence lands in the unlocker after its store (the store is visible and
/// the waiter's check sees 0, so it does not sleep), or before it (the
/// unlocker's later load sees <c>_parked</c>). docs/locks.md has the full
/// argument, including requeue and the hand-off.
///
/// Bit 0 of <c>_parked</c> is cleared only under the mutex's bucket lock, by
/// an unpark callback that finds no waiter left; waiters validate it under
/// that lock too, so a clear that raced a waiter's raise makes the waiter
/// retry instead of sleeping unannounced.
///
/// Fairness: a waiter that has waited longer than <see cref="TimeToBeFairNs"/>
/// gets the lock handed over by unlock (<c>_locked</c> stays 1 and the waiter
/// returns owning it). The hand-off needs the unlocker to still own the lock
/// when it picks the waiter, so unlock reads <c>_parked</c> BEFORE releasing
/// as well: non-zero takes <see cref="UnlockSlow"/>, which releases (or
/// hands over) under the bucket lock.
/// </summary>
internal static unsafe class Mutex
{
    /// <summary>The value of <c>_locked</c> when held.</summary>
    internal const byte Locked = 1;
    /// <summary>Bit 0 of <c>_parked</c>: waiters may be queued on the mutex.</summary>
    internal const byte HasParked = 1;
    /// <summary>One condition waiter in bits 1-7 of <c>_parked</c>.</summary>
    internal const byte CondWaiterUnit = 2;
    /// <summary>Bits 1-7 of <c>_parked</c>: the condition waiters' count.</summary>
    internal const byte CondWaitersMask = 0xFE;
    internal const long TimeToBeFairNs = 1_000_000;

    /// <summary>
    /// Yields before parking, while nobody is parked. Each yield lets a
    /// preempted holder run. Measured on 2 cores (docs/benchmarks.md, "Spin
    /// count"): no spinning loses 2.5-4x on tiny critical sections; 10, 40
    /// (CPython's number) and 100 are within a few percent, with 10 ahead in
    /// every contended configuration, and parking sooner hands the lock to
    /// starving waiters sooner.
    /// </summary>
    internal const int MaxSpinCount = 10;

    /// <summary>The <c>_parked</c> byte of the mutex whose <c>_locked</c> byte is at m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static byte* Parked(byte* m) => m + 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryLock(byte* m)
    {
        // Acquire (full barrier): pairs with the release that freed _locked.
        return Volatile.Read(ref *m) == 0 && Interlocked.CompareExchange(ref *m, Locked, 0) == 0;
    }

    /// <summary>The inline fast path of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Lock(byte* m)
    {
        if (Interlocked.CompareExchange(ref *m, Locked, 0) != 0)
        {
            LockSlow(m);
        }
    }

    /// <summary>
    /// The header's weave_mutex_unlock, for C# callers and the exported copy.
    /// The release is an exchange rather than the header's plain store: C#
    /// has no compiler-only fence to keep the following load of _parked
    /// after the store, and the exchange is a full fence (so this copy does
    /// not even rely on the waiters' process-wide barrier). It is used where
    /// an atomic costs little next to the call (FFI copies, condition
    /// variables, sections' C# paths).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Unlock(byte* m)
    {
        if (Volatile.Read(ref *m) != Locked || Volatile.Read(ref *Parked(m)) != 0)
        {
            return UnlockSlow(m);
        }
        Interlocked.Exchange(ref *m, 0);
        if (Volatile.Read(ref *Parked(m)) != 0)
        {
            UnlockWake(m);
        }
        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(byte* m) => LockTimed(m, -1, LockFlags.Detach);

    /// <summary>
    /// Announces a waiter that is about to park (or a requeue onto m):
    /// raises bit 0 of _parked, then runs the process-wide barrier. The CAS is
    /// a full fence, so the raise is globally visible before the barrier's
    /// fences run in the other threads; every unlock whose release a later
    /// check of _locked does not see then reads _parked non-zero (or a later
    /// value written under the bucket lock).
    /// </summary>
    internal static void AnnounceParked(byte* m)
    {
        SetHasParked(m, true);
        Interlocked.MemoryBarrierProcessWide();
    }

    /// <summary>
    /// Sets or clears bit 0 of _parked, keeping the condition waiters'
    /// count. A CAS loop (a full fence): the
    /// count changes concurrently (by the holder) while bit 0 is written by
    /// waiters and by unlockers that no longer hold the lock.
    /// </summary>
    internal static void SetHasParked(byte* m, bool on)
    {
        byte* p = Parked(m);
        byte old = Volatile.Read(ref *p);
        while (true)
        {
            byte value = on ? (byte)(old | HasParked) : (byte)(old & ~HasParked);
            byte seen = Interlocked.CompareExchange(ref *p, value, old);
            if (seen == old)
            {
                return;
            }
            old = seen;
        }
    }

    /// <summary>
    /// A thread that holds m enters weave_cond_wait (delta 1) or, holding m
    /// again, leaves it (delta -1). Only the holder changes the count, so
    /// during any one holder's tenure it is constant: a holder's unlock reads
    /// the count that a condition signal saw while that holder held m. A
    /// waiter counts itself from before it is queued on the condition until
    /// it holds m again, so while it sits on m's queue (moved there by a
    /// signal) every unlock of m sees _parked non-zero and takes the slow
    /// path, which looks at m's queue under its bucket lock. Saturates at
    /// 127 and then stays there (every unlock of m then takes the slow path
    /// for good: slower, never wrong), since a count that had lost waiters
    /// could reach 0 with a waiter still counted on it.
    /// </summary>
    internal static void AddCondWaiter(byte* m, int delta)
    {
        byte* p = Parked(m);
        byte old = Volatile.Read(ref *p);
        while (true)
        {
            int count = (old & CondWaitersMask) / CondWaiterUnit;
            if (count == CondWaitersMask / CondWaiterUnit || (delta < 0 && count == 0))
            {
                // Saturated (sticky), or a leave without an enter (the
                // mutex's bytes were overwritten, e.g. re-initialised while
                // in use): leave the count alone.
                return;
            }
            byte value = (byte)((old & HasParked) | ((count + delta) * CondWaiterUnit));
            byte seen = Interlocked.CompareExchange(ref *p, value, old);
            if (seen == old)
            {
                return;
            }
            old = seen;
        }
    }

    /// <summary>PyMutex_LockTimed; flags are validated by the caller.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int LockTimed(byte* m, long timeoutNs, int flags)
    {
        if (TryLock(m))
        {
            return LockStatus.Acquired;
        }
        if (timeoutNs == 0)
        {
            return LockStatus.Failure;
        }
        bool profiled = false;
        int status = LockTimedWait(m, timeoutNs, flags, ref profiled);
        if (profiled)
        {
            ContentionProfile.EndWait(m, status == LockStatus.Acquired);
        }
        return status;
    }

    /// <summary>LockTimed's waiting part; <paramref name="profiled"/> is set when the contention profile sampled this wait.</summary>
    private static int LockTimedWait(byte* m, long timeoutNs, int flags, ref bool profiled)
    {

        long now = Futex.MonotonicNow();
        long deadline = timeoutNs > 0 ? now + timeoutNs : -1;
        MutexWaiter waiter;
        waiter.TimeToBeFairNs = now + TimeToBeFairNs;
        waiter.HandedOff = 0;
        bool detach = (flags & LockFlags.Detach) != 0;
        int spins = 0;
        try
        {
            while (true)
            {
                if (Volatile.Read(ref *m) == 0)
                {
                    // Unlocked (perhaps with waiters parked): take it. Barging is
                    // allowed until a waiter has waited long enough to get a hand-off.
                    if (Interlocked.CompareExchange(ref *m, Locked, 0) == 0)
                    {
                        return LockStatus.Acquired;
                    }
                    continue;
                }
                if ((Volatile.Read(ref *Parked(m)) & HasParked) == 0 && spins < MaxSpinCount)
                {
                    // Nobody parked yet: the holder may be about to release.
                    SpinWaits.Yield();
                    spins++;
                    continue;
                }
                if (timeoutNs == 0)
                {
                    return LockStatus.Failure;
                }

                long parkTimeout = timeoutNs;
                if (timeoutNs > 0)
                {
                    // The spinning above used part of the budget: sleep only for what is left.
                    parkTimeout = deadline - Futex.MonotonicNow();
                    if (parkTimeout <= 0)
                    {
                        return LockStatus.Failure;
                    }
                }

                // Every park announces itself with the barrier, even when
                // _parked is already 1: the 1 it sees may have been raised by
                // a waiter whose barrier has not run yet (docs/locks.md).
                if (ContentionProfile.On != 0 && !profiled)
                {
                    profiled = ContentionProfile.BeginWait(m);
                }
                AnnounceParked(m);
                var validate = new ParkValidation { Mutex = m };
                // No poll (ParkSpin): we spun above, and a polling waiter would take a CPU from a thread with work.
                int parked = ParkingLot.Park(m, ref validate, parkTimeout, &waiter, detach, poll: false);
                if (parked == ParkResult.Ok)
                {
                    if (waiter.HandedOff != 0)
                    {
                        // The unlocker left _locked at 1 for us; its callback's
                        // writes are visible through the parker's release/acquire.
                        return LockStatus.Acquired;
                    }
                }
                else if (parked == ParkResult.Interrupted)
                {
                    if ((flags & LockFlags.FailIfInterrupted) != 0)
                    {
                        return LockStatus.Interrupted;
                    }
                    if ((flags & LockFlags.HandleSignals) != 0 && !CPythonRuntime.RunPendingCalls())
                    {
                        return LockStatus.Interrupted;
                    }
                }
                else if (parked == ParkResult.Timeout)
                {
                    return LockStatus.Failure;
                }

                if (timeoutNs > 0)
                {
                    timeoutNs = deadline - Futex.MonotonicNow();
                    if (timeoutNs <= 0)
                    {
                        timeoutNs = 0; // one more attempt to take it, then fail
                    }
                }
            }
        }
        finally
        {
            Statistics.Add(Statistics.Counter.Spins, (ulong)spins);
        }
    }

    /// <summary>
    /// A mutex waiter's validation, under the bucket lock and after its
    /// barrier: sleep only while the lock is held and _parked still announces
    /// us. _parked 0 means an unpark callback found the queue empty and
    /// cleared it after our raise; sleeping would leave us unannounced, so
    /// retry (and raise it again).
    /// </summary>
    private struct ParkValidation : IParkCallback
    {
        public byte* Mutex;

        public bool Validate() =>
            (Volatile.Read(ref *Parked(Mutex)) & HasParked) != 0 && Volatile.Read(ref *Mutex) == Locked;

        public void BeforeSleep()
        {
        }
    }

    /// <summary>
    /// Unlock while still owning the lock, when _parked was seen non-zero (or
    /// the lock looked free): 0, or WEAVE_E_NOT_OWNER when not locked.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int UnlockSlow(byte* m)
    {
        if (Volatile.Read(ref *m) != Locked)
        {
            return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
        }
        if (Volatile.Read(ref *Parked(m)) != 0)
        {
            // Still the owner: pick the waiter under the bucket lock and
            // release there, or hand it the lock.
            if (ContentionProfile.On != 0)
            {
                ContentionProfile.OnRelease(m);
            }
            var callback = new UnlockCallback { Mutex = m };
            ParkingLot.Unpark(m, ref callback);
            return 0;
        }
        Interlocked.Exchange(ref *m, 0);
        if (Volatile.Read(ref *Parked(m)) != 0)
        {
            UnlockWake(m);
        }
        return 0;
    }

    /// <summary>
    /// After a release that then saw _parked non-zero: the lock is gone
    /// (perhaps already re-taken), so no hand-off; wake one waiter to retry.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void UnlockWake(byte* m)
    {
        if (ContentionProfile.On != 0)
        {
            ContentionProfile.OnRelease(m);
        }
        var callback = new WakeCallback { Mutex = m };
        ParkingLot.Unpark(m, ref callback);
    }

    /// <summary>
    /// Runs under the mutex's bucket lock with the dequeued waiter (if any),
    /// the unlocker still owning the lock: sets both bytes for what comes
    /// next. Obligations: no parking, no allocation, no throwing.
    /// </summary>
    private struct UnlockCallback : IUnparkCallback
    {
        public byte* Mutex;

        public void OnUnpark(void* parkArg, bool hasMoreWaiters)
        {
            bool handOff = false;
            if (parkArg != null)
            {
                MutexWaiter* waiter = (MutexWaiter*)parkArg;
                handOff = Futex.MonotonicNow() > waiter->TimeToBeFairNs;
                waiter->HandedOff = handOff ? 1 : 0;
                if (handOff)
                {
                    Statistics.Increment(Statistics.Counter.Handoffs);
                }
            }
            // Under the bucket lock, so no waiter validates in between. 0 only
            // when nobody is left queued; a waiter that raised _parked and is
            // not queued yet sees the 0 in its validation and retries.
            SetHasParked(Mutex, hasMoreWaiters);
            if (!handOff)
            {
                // Release: the critical section's writes happen before the
                // next owner's acquire CAS. On a hand-off _locked stays 1 and
                // ownership passes through the parker's release/acquire.
                Volatile.Write(ref *Mutex, 0);
            }
        }
    }

    /// <summary>
    /// UnlockWake's callback, under the bucket lock: _locked is not ours any
    /// more, so only _parked is written (0 when nobody is left queued).
    /// </summary>
    private struct WakeCallback : IUnparkCallback
    {
        public byte* Mutex;

        public void OnUnpark(void* parkArg, bool hasMoreWaiters)
        {
            if (parkArg != null)
            {
                ((MutexWaiter*)parkArg)->HandedOff = 0;
            }
            SetHasParked(Mutex, hasMoreWaiters);
        }
    }
}
