using System.Runtime.CompilerServices;
using System.Threading;
using FtWeave.Parking;

namespace FtWeave.Locks;

/// <summary>
/// weave_once_t: run an initialiser once, with retry after failure, in one
/// byte (CPython's _PyOnceFlag, Python/lock.c).
///
///   v | Running | HasParked | Done | meaning
///   --+---------+-----------+------+----------------------------------------
///   0 |    0    |     0     |  0   | not run (or the last run failed)
///   1 |    1    |     0     |  0   | a caller is running fn
///   3 |    1    |     1     |  0   | running, other callers parked waiting
///   4 |    0    |     0     |  1   | done (final)
///
/// The runner publishes its result with one exchange; if a waiter had set
/// HasParked it wakes them all. Waiters re-read the byte: Done returns 0, 0
/// (the run failed) lets one of them run fn next.
/// </summary>
internal static unsafe class Once
{
    internal const byte Running = 1;
    internal const byte HasParked = 2;
    internal const byte Done = 4;

    /// <summary>What <see cref="CallSlow"/> returns for an fn result other than 0 or -1.</summary>
    internal const int BadResult = Abi.ErrorCodes.WEAVE_E_INVALID;

    /// <summary>The inline check of ft_weave.h: already done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsDone(byte* once)
    {
        // Acquire: pairs with the exchange in Finish, so fn's writes are
        // visible to every caller that sees Done.
        return Volatile.Read(ref *once) == Done;
    }

    /// <summary>
    /// weave_once_call_slow: 0 when done (by us or earlier), -1 when our run
    /// of fn failed, <see cref="BadResult"/> when fn returned anything else.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int CallSlow(byte* once, delegate* unmanaged<void*, int> fn, void* arg)
    {
        // Acquire: pairs with the exchange in Finish.
        byte v = Volatile.Read(ref *once);
        while (true)
        {
            if (v == 0)
            {
                // Nobody ran it yet (or the last run failed): claim the run.
                // Full barrier; on failure another caller claimed it first.
                byte seen = Interlocked.CompareExchange(ref *once, Running, 0);
                if (seen != 0)
                {
                    v = seen;
                    continue;
                }
                return Finish(once, fn(arg));
            }
            if (v == Done)
            {
                return 0;
            }

            // Running: wait for the runner's result.
            if ((v & HasParked) == 0)
            {
                // We are the first waiter: announce it, so Finish unparks.
                byte announced = (byte)(v | HasParked);
                byte seen = Interlocked.CompareExchange(ref *once, announced, v);
                if (seen != v)
                {
                    v = seen;
                    continue;
                }
                v = announced;
            }

            // Sleeps only while the byte is still v; Finish's exchange happens
            // before its UnparkAll, so we either see the result here (AGAIN)
            // or are queued when it unparks. Detached, as CPython's waiters:
            // the runner may need this thread's interpreter lock.
            ParkingLot.Park(once, &v, sizeof(byte), -1, null, detach: true);
            // Acquire: pairs with the exchange in Finish.
            v = Volatile.Read(ref *once);
        }
    }

    /// <summary>Publishes the runner's result and wakes the waiters.</summary>
    private static int Finish(byte* once, int result)
    {
        byte next = result == 0 ? Done : (byte)0;
        // Full barrier (release half): fn's writes happen before the acquire
        // of every caller that sees Done. Reading the old byte in the same step
        // catches a waiter that set HasParked at any moment before.
        byte old = Interlocked.Exchange(ref *once, next);
        if ((old & HasParked) != 0)
        {
            ParkingLot.UnparkAll(once);
        }
        return result == 0 || result == -1 ? result : BadResult;
    }
}
