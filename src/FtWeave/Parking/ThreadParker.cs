using System.Threading;
using FtWeave.Interop;

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
    // The word's states. Parked: queued, not asleep in the kernel (polling,
    // or on its way to the futex wait). Sleeping: in or about to enter the
    // futex wait, so a waker owes a futex wake. Woken: a waker has written it.
    private const int Parked = 0;
    private const int Woken = 1;
    private const int Sleeping = 2;

    private int _state;

    internal void Prepare() => _state = Parked;

    /// <summary>True once a waker has called <see cref="Unpark"/>.</summary>
    internal bool IsUnparked => Volatile.Read(ref _state) == Woken;

    /// <summary>
    /// Sleeps until unparked, or until the absolute monotonic deadline
    /// (&lt; 0: none), or until a signal interrupts the sleep. Runs outside
    /// every lock. Polls the word first for this thread's
    /// <see cref="ParkSpin"/> budget, unless <paramref name="poll"/> is false
    /// (the waits of locks: see ParkSpin); spurious OS wake-ups are absorbed here;
    /// TimedOut and Interrupted are not wakes (see the protocol above for
    /// what the caller owes its still-queued entry).
    /// </summary>
    internal ParkOutcome Park(long deadlineNs, bool poll = true)
    {
        // Acquire (here and below): pairs with the exchange in Unpark, so
        // whatever the waker wrote before waking us (for example a handed-off
        // lock) is visible.
        if (Volatile.Read(ref _state) == Woken)
        {
            return ParkOutcome.Unparked;
        }
        if (!poll)
        {
            // A lock's wait: no poll, and no clock reads for a budget it
            // does not use.
            return Sleep(deadlineNs);
        }
        long start = Futex.MonotonicNow();
        int* budgetSlot = ParkSpin.Budget;
        if (budgetSlot != null && *budgetSlot != 0 && Poll(start + *budgetSlot, deadlineNs, out ParkOutcome polled))
        {
            return polled;
        }
        ParkOutcome outcome = Sleep(deadlineNs);
        if (outcome == ParkOutcome.Unparked)
        {
            ParkSpin.AfterSleep(budgetSlot, Futex.MonotonicNow() - start);
        }
        return outcome;
    }

    /// <summary>
    /// Polls the word until <paramref name="endNs"/> (or the deadline, if
    /// sooner). True with the outcome when the wait is over (woken, or the
    /// deadline passed); false when the poll ran out and the thread should sleep.
    /// </summary>
    private bool Poll(long endNs, long deadlineNs, out ParkOutcome outcome)
    {
        if (deadlineNs >= 0 && deadlineNs < endNs)
        {
            endNs = deadlineNs;
        }
        while (true)
        {
            for (int i = 0; i < ParkSpin.PausesPerClockRead; i++)
            {
                if (Volatile.Read(ref _state) == Woken)
                {
                    outcome = ParkOutcome.Unparked;
                    return true;
                }
                SpinWaits.Pause(1);
            }
            long now = Futex.MonotonicNow();
            if (now >= endNs)
            {
                // Still Parked after a timeout: a waker that comes now owes no system call.
                outcome = Volatile.Read(ref _state) == Woken ? ParkOutcome.Unparked : ParkOutcome.TimedOut;
                return deadlineNs >= 0 && now >= deadlineNs;
            }
        }
    }

    private ParkOutcome Sleep(long deadlineNs)
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Woken)
            {
                return ParkOutcome.Unparked;
            }
            // Announce the sleep before it starts: a waker's exchange either
            // comes first (the CAS fails and we see Woken) or sees Sleeping
            // and wakes the futex, which the wait below cannot miss: the
            // kernel compares the word with Sleeping under its own lock.
            if (state == Parked && Interlocked.CompareExchange(ref _state, Sleeping, Parked) != Parked)
            {
                continue;
            }
            int error = PlatformWait(deadlineNs);
            if (Volatile.Read(ref _state) == Woken)
            {
                return ParkOutcome.Unparked;
            }
            // The word stays Sleeping after a timeout or a signal: a later
            // waker then makes one needless FUTEX_WAKE, which is harmless.
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
    internal void ParkUntilUnparked(bool poll = true)
    {
        while (Park(-1, poll) != ParkOutcome.Unparked)
        {
        }
    }

    /// <summary>
    /// Wakes the thread parked on <paramref name="parker"/>. Runs outside
    /// every lock; see the protocol above for why the entry may vanish
    /// between the store and the OS wake. A waiter that is still polling (or
    /// has not reached its futex wait) needs no system call: it sees Woken
    /// before it would announce its sleep.
    /// </summary>
    internal static void Unpark(ThreadParker* parker)
    {
        int* word = &parker->_state;
        // Full barrier (release is what matters): pairs with the acquire
        // loads in Park; the old value says whether the waiter sleeps.
        if (Interlocked.Exchange(ref *word, Woken) == Sleeping)
        {
            PlatformWake(word);
        }
    }
}
