using System.Runtime.InteropServices;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 4, "Raw mutex" (exported copies of the inline functions, and the slow paths).</summary>
internal static unsafe class RawMutexExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_raw_mutex_lock")]
    private static void Lock(nuint* m)
    {
        if (m == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_raw_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        RawMutex.Lock(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_raw_mutex_lock_slow")]
    private static void LockSlow(nuint* m)
    {
        if (m == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_raw_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        RawMutex.LockSlow(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_raw_mutex_unlock")]
    private static int Unlock(nuint* m) => m == null ? NullMutex() : Check(RawMutex.Unlock(m));

    [UnmanagedCallersOnly(EntryPoint = "weave_raw_mutex_unlock_slow")]
    private static int UnlockSlow(nuint* m) => m == null ? NullMutex() : Check(RawMutex.UnlockSlow(m));

    private static int NullMutex() => ThreadContexts.SetError(WEAVE_E_INVALID, "weave_raw_mutex_unlock: mutex is NULL\0"u8);

    private static int Check(int result) => result == WEAVE_E_NOT_OWNER
        ? ThreadContexts.SetError(result, "weave_raw_mutex_unlock: the mutex is not locked\0"u8)
        : result;
}
