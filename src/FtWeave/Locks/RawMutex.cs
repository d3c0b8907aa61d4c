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
    internal static void Lock(nuint* word) => WordLock.Lock(word);

    internal static void LockSlow(nuint* word) => WordLock.LockSlow(word);

    /// <summary>0, or WEAVE_E_NOT_OWNER when not locked.</summary>
    internal static int Unlock(nuint* word) => WordLock.Unlock(word) ? 0 : Abi.ErrorCodes.WEAVE_E_NOT_OWNER;

    internal static int UnlockSlow(nuint* word) => WordLock.UnlockSlow(word) ? 0 : Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
}
