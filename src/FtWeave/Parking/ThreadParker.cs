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
/// <item><see cref="Park"/> by the waiter outside every lock.</item>
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
    /// every lock. Spurious OS wake-ups are absorbed here.
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
