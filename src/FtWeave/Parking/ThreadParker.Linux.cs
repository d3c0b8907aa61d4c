using FtWeave.Interop;

namespace FtWeave.Parking;

/// <summary>Linux backend of <see cref="ThreadParker"/>: a private futex on the state word.</summary>
internal unsafe partial struct ThreadParker
{
    private const int PlatformTimedOut = Futex.ETIMEDOUT;
    private const int PlatformInterrupted = Futex.EINTR;

    /// <summary>0 when woken or spuriously; EAGAIN when the word already changed.</summary>
    private int PlatformWait(long deadlineNs)
    {
        fixed (int* word = &_state)
        {
            if (deadlineNs >= 0 && Futex.MonotonicNow() >= deadlineNs)
            {
                return PlatformTimedOut;
            }
            return Futex.Wait(word, Sleeping, deadlineNs);
        }
    }

    private static void PlatformWake(int* word) => Futex.Wake(word, 1);
}
