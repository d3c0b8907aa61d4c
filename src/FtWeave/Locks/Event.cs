using System.Runtime.CompilerServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;

namespace FtWeave.Locks;

/// <summary>
/// weave_event_t: a one-shot event in one byte, CPython's PyEvent
/// (Python/lock.c).
///
///   v | meaning
///   --+------------------------------
///   0 | not set, nobody waiting
///   1 | Set (final)
///   2 | HasParked: not set, waiters parked
///
/// Unlike PyEvent_WaitTimed, which returns after a single park, a timed wait
/// here loops until the event is set or its deadline passes: a spurious
/// return from the parker (a signal) never ends the wait early.
/// </summary>
internal static unsafe class Event
{
    internal const byte Set = 1;
    internal const byte HasParked = 2;

    /// <summary>weave_event_is_set: the header's inline function.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsSet(byte* evt)
    {
        // Acquire: pairs with the exchange in Notify, so what the notifier
        // wrote before notifying is visible after a true.
        return Volatile.Read(ref *evt) == Set;
    }

    /// <summary>weave_event_notify: sets the event and wakes every waiter.</summary>
    internal static void Notify(byte* evt)
    {
        // Full barrier (release half): the notifier's writes happen before any
        // waiter's acquire load that sees Set. It also reads the old value in
        // the same step, so a waiter that set HasParked before this exchange
        // is certainly unparked below.
        byte old = Interlocked.Exchange(ref *evt, Set);
        if (old == HasParked)
        {
            ParkingLot.UnparkAll(evt);
        }
    }

    /// <summary>
    /// weave_event_wait_slow: 1 once set, 0 when <paramref name="timeoutNs"/>
    /// passed first (0 = check only, &lt; 0 = forever).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int WaitSlow(byte* evt, long timeoutNs, bool detach)
    {
        long deadline = timeoutNs > 0 ? Futex.MonotonicNow() + timeoutNs : -1;
        while (true)
        {
            // Acquire: pairs with the exchange in Notify.
            byte v = Volatile.Read(ref *evt);
            if (v == Set)
            {
                return 1;
            }
            if (timeoutNs == 0)
            {
                // Check only (or the deadline passed): do not announce a waiter
                // that will never park.
                return 0;
            }
            if (v != HasParked)
            {
                // We are the first waiter: announce it, so that Notify unparks.
                // Full barrier; a failure means Notify (or another waiter) got
                // in first: look again.
                if (Interlocked.CompareExchange(ref *evt, HasParked, v) != v)
                {
                    continue;
                }
            }

            byte expected = HasParked;
            // Sleeps only while the byte is still HasParked; Notify's exchange
            // happens before its UnparkAll takes the bucket lock, so either the
            // park sees Set (AGAIN) or the unpark finds us queued. Any result
            // (woken, timeout, signal) is re-checked against the byte and the
            // deadline above and below.
            ParkingLot.Park(evt, &expected, sizeof(byte), timeoutNs, null, detach);

            if (timeoutNs > 0)
            {
                timeoutNs = deadline - Futex.MonotonicNow();
                if (timeoutNs <= 0)
                {
                    timeoutNs = 0; // one last look at the byte, then 0
                }
            }
        }
    }
}
