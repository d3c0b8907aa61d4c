using System.Threading;
using FtWeave.Diagnostics;
using FtWeave.Parking;

namespace FtWeave.Locks;

/// <summary>
/// weave_raw_mutex_t: the parking lot's own <see cref="WordLock"/>, exposed
/// for code that must not depend on the lot (a lock used inside an unpark
/// callback's surroundings, or code that runs after fork before the lot is
/// reset). It never detaches.
/// </summary>
internal static unsafe class RawMutex
{
    internal static void Lock(nuint* word)
    {
        // WordLock.Lock's CAS, with this class's slow path (the profile's hook).
        if (Interlocked.CompareExchange(ref *word, WordLock.Locked, 0) != 0)
        {
            LockSlow(word);
        }
    }

    internal static void LockSlow(nuint* word)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(word))
        {
            WordLock.LockSlow(word);
            ContentionProfile.EndWait(word, acquired: true);
            return;
        }
        WordLock.LockSlow(word);
    }

    /// <summary>0, or WEAVE_E_NOT_OWNER when not locked.</summary>
    internal static int Unlock(nuint* word) =>
        Interlocked.CompareExchange(ref *word, 0, WordLock.Locked) == WordLock.Locked ? 0 : UnlockSlow(word);

    internal static int UnlockSlow(nuint* word)
    {
        if (ContentionProfile.On != 0)
        {
            ContentionProfile.OnRelease(word);
        }
        return WordLock.UnlockSlow(word) ? 0 : Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
    }
}
