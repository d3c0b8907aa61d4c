using System.Threading;

namespace FtWeave.Parking;

/// <summary>Outcome of <see cref="ThreadParker.Park"/>.</summary>
internal enum ParkOutcome
{
    Unparked,
    TimedOut,
    Interrupted,
}

/// <summary>
/// The per-wait sleeping primitive: one word that a parked thread sleeps on and
/// its waker flips. It lives inside the waiter's stack-allocated queue entry
/// (a parking-lot WaitEntry or a word-lock waiter), so parking needs no
/// allocation and no per-thread registry.
///
/// Protocol (the same on every OS backend; the Linux one is in
/// ThreadParker.Linux.cs):
/// <list type="number">
/// <item><see cref="Prepare"/> by the waiter before its entry becomes visible
///   to wakers (before the queue's lock is released).</item>
/// <item><see cref="Park"/> by the waiter outside every lock. A return
///   other than <see cref="ParkOutcome.Unparked"/> (a timeout, or a signal
///   handler's EINTR) leaves the entry where it was: still queued, still
///   reachable by wakers. The waiter must then either take its entry out of
///   the queue itself, under the queue's lock (ParkingLot.Park does, and
///   sleeps on with <see cref="ParkUntilUnparked"/> if a waker dequeued it
///   first), or sleep on with <see cref="ParkUntilUnparked"/> (WordLock,
///   whose queue only the lock holder may pop). Returning from the frame
///   that holds a queued entry corrupts the queue.</item>
/// <item><see cref="Unpark"/> by the waker after it removed the entry from the
///   queue and released the queue's lock. After the store inside it the
///   waiter may return and its stack frame may be reused: the OS wake that
///   follows only passes the address to the kernel and never writes to it,
///   so at worst it causes a spurious wake of a later wait at the same
///   address, which every wait loop tolerates.</item>
/// </list>
/// </summary>
internal unsafe partial struct ThreadParker
{
    private const int Parked = 0;
    private const int Woken = 1;

    private int _state;

    internal void Prepare() => _state = Parked;

    /// <summary>True once a waker has called <see cref="Unpark"/>.</summary>
    internal bool IsUnparked => Volatile.Read(ref _state) == Woken;

    /// <summary>
    /// Sleeps until unparked, or until the absolute monotonic deadline
    /// (&lt; 0: none), or until a signal interrupts the sleep. Runs outside
    /// every lock. Spurious OS wake-ups are absorbed here; TimedOut and
    /// Interrupted are not wakes (see the protocol above for what the caller
    /// owes its still-queued entry).
    /// </summary>
    internal ParkOutcome Park(long deadlineNs)
    {
        while (true)
        {
            // Acquire: pairs with the release store in Unpark, so whatever the
            // waker wrote before waking us (for example a handed-off lock) is visible.
            if (Volatile.Read(ref _state) == Woken)
            {
                return ParkOutcome.Unparked;
            }
            int error = PlatformWait(deadlineNs);
            if (Volatile.Read(ref _state) == Woken)
            {
                return ParkOutcome.Unparked;
            }
            if (error == PlatformTimedOut)
            {
                return ParkOutcome.TimedOut;
            }
            if (error == PlatformInterrupted)
            {
                return ParkOutcome.Interrupted;
            }
        }
    }

    /// <summary>
    /// Sleeps until a waker has called <see cref="Unpark"/>: signals (EINTR)
    /// and spurious OS wake-ups only make it sleep again. For a waiter whose
    /// entry a waker has dequeued or may still dequeue, and that may not
    /// leave before the waker's store (see the protocol above).
    /// </summary>
    internal void ParkUntilUnparked()
    {
        while (Park(-1) != ParkOutcome.Unparked)
        {
        }
    }

    /// <summary>
    /// Wakes the thread parked on <paramref name="parker"/>. Runs outside
    /// every lock; see the protocol above for why the entry may vanish
    /// between the store and the OS wake.
    /// </summary>
    internal static void Unpark(ThreadParker* parker)
    {
        int* word = &parker->_state;
        // Release: pairs with the acquire loads in Park.
        Volatile.Write(ref *word, Woken);
        PlatformWake(word);
    }
}
