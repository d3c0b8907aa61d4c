using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
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
/// weave_mutex_t: one byte, CPython's PyMutex algorithm (Python/lock.c).
///
///   _bits | Locked | HasParked | meaning
///   ------+--------+-----------+------------------------------------------
///   0b00  |   0    |     0     | unlocked
///   0b01  |   1    |     0     | locked, nobody parked: unlock is one CAS
///   0b10  |   0    |     1     | unlocked, waiters parked, one was woken
///   0b11  |   1    |     1     | locked, waiters parked: unlock unparks one
///
/// Fairness: a waiter that has waited longer than <see cref="TimeToBeFairNs"/>
/// gets the lock handed over by unlock (the byte stays locked and the waiter
/// returns owning it), so a thread that keeps re-locking cannot starve it.
/// </summary>
internal static unsafe class Mutex
{
    internal const byte Locked = 1;
    internal const byte HasParked = 2;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryLock(byte* m)
    {
        byte v = Volatile.Read(ref *m);
        // Acquire (full barrier): pairs with the release in Unlock.
        return (v & Locked) == 0 && Interlocked.CompareExchange(ref *m, (byte)(v | Locked), v) == v;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Unlock(byte* m)
    {
        return Interlocked.CompareExchange(ref *m, 0, Locked) == Locked ? 0 : UnlockSlow(m);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(byte* m) => LockTimed(m, -1, LockFlags.Detach);

    /// <summary>PyMutex_LockTimed; flags are validated by the caller.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int LockTimed(byte* m, long timeoutNs, int flags)
    {
        byte v = Volatile.Read(ref *m);
        if ((v & Locked) == 0 && Interlocked.CompareExchange(ref *m, (byte)(v | Locked), v) == v)
        {
            return LockStatus.Acquired;
        }
        if (timeoutNs == 0)
        {
            return LockStatus.Failure;
        }

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
                if ((v & Locked) == 0)
                {
                    // Unlocked (perhaps with waiters parked): take it. Barging is
                    // allowed until a waiter has waited long enough to get a hand-off.
                    byte seen = Interlocked.CompareExchange(ref *m, (byte)(v | Locked), v);
                    if (seen == v)
                    {
                        return LockStatus.Acquired;
                    }
                    v = seen;
                    continue;
                }
                if ((v & HasParked) == 0 && spins < MaxSpinCount)
                {
                    // Nobody parked yet: the holder may be about to release.
                    SpinWaits.Yield();
                    spins++;
                    v = Volatile.Read(ref *m);
                    continue;
                }
                if (timeoutNs == 0)
                {
                    return LockStatus.Failure;
                }

                byte expected = v;
                if ((v & HasParked) == 0)
                {
                    // We are the first waiter: announce it, so unlock takes the slow path.
                    expected = (byte)(v | HasParked);
                    byte seen = Interlocked.CompareExchange(ref *m, expected, v);
                    if (seen != v)
                    {
                        v = seen;
                        continue;
                    }
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
                int parked = ParkingLot.Park(m, &expected, 1, parkTimeout, &waiter, detach);
                if (parked == ParkResult.Ok)
                {
                    if (waiter.HandedOff != 0)
                    {
                        // The unlocker left the byte locked for us; its callback's
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
                v = Volatile.Read(ref *m);
            }
        }
        finally
        {
            Statistics.Add(Statistics.Counter.Spins, (ulong)spins);
        }
    }

    /// <summary>0, or WEAVE_E_NOT_OWNER (as a negative code) when not locked.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int UnlockSlow(byte* m)
    {
        byte v = Volatile.Read(ref *m);
        while (true)
        {
            if ((v & Locked) == 0)
            {
                return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
            }
            if ((v & HasParked) != 0)
            {
                var callback = new UnlockCallback { Mutex = m };
                ParkingLot.Unpark(m, ref callback);
                return 0;
            }
            byte seen = Interlocked.CompareExchange(ref *m, 0, v);
            if (seen == v)
            {
                return 0;
            }
            v = seen;
        }
    }

    /// <summary>
    /// Runs under the mutex's bucket lock with the dequeued waiter (if any):
    /// sets the byte for what comes next. Obligations: no parking, no
    /// allocation, no throwing.
    /// </summary>
    private struct UnlockCallback : IUnparkCallback
    {
        public byte* Mutex;

        public void OnUnpark(void* parkArg, bool hasMoreWaiters)
        {
            byte v = 0;
            if (parkArg != null)
            {
                MutexWaiter* waiter = (MutexWaiter*)parkArg;
                bool beFair = Futex.MonotonicNow() > waiter->TimeToBeFairNs;
                waiter->HandedOff = beFair ? 1 : 0;
                if (beFair)
                {
                    // Hand-off: the byte stays locked and ownership passes to the waiter.
                    v |= Locked;
                    Statistics.Increment(Statistics.Counter.Handoffs);
                }
                if (hasMoreWaiters)
                {
                    v |= HasParked;
                }
            }
            // Release: the critical section's writes happen before the next
            // owner's acquire (the woken thread's CAS, or its parker's acquire
            // on a hand-off). A waiter that is not yet queued sees a changed
            // byte in its park validation and retries.
            Volatile.Write(ref *Mutex, v);
        }
    }
}
