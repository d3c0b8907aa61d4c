using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Diagnostics;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "Recursive mutex". The first three are the exported
/// copies of the header's static inline functions (same behaviour, for FFIs).
/// </summary>
internal static unsafe class RecursiveMutexExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_lock")]
    private static void Lock(weave_recursive_mutex_t* m)
    {
        if (m == null)
        {
            NullMutex("weave_recursive_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RecursiveLock(m, null, track: true);
            return;
        }
        RecursiveMutex.Lock(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_unlock")]
    private static int Unlock(weave_recursive_mutex_t* m) =>
        m == null ? NullMutex("weave_recursive_mutex_unlock: mutex is NULL\0"u8)
        : DebugSwitch.s_flags != 0 ? DebugLocks.RecursiveUnlock(m, null) : CheckUnlock(RecursiveMutex.Unlock(m));

    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_is_locked_by_current_thread")]
    private static int IsLockedByCurrentThread(weave_recursive_mutex_t* m) =>
        m != null && RecursiveMutex.IsLockedByCurrentThread(m) ? 1 : 0;

    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_lock_slow")]
    private static void LockSlow(weave_recursive_mutex_t* m)
    {
        if (m == null)
        {
            NullMutex("weave_recursive_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RecursiveLock(m, null, track: false);
            return;
        }
        RecursiveMutex.LockSlow(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_unlock_slow")]
    private static int UnlockSlow(weave_recursive_mutex_t* m) =>
        m == null ? NullMutex("weave_recursive_mutex_unlock: mutex is NULL\0"u8)
        : DebugSwitch.s_flags != 0 ? DebugLocks.RecursiveUnlock(m, null) : CheckUnlock(RecursiveMutex.UnlockSlow(m));

    [UnmanagedCallersOnly(EntryPoint = "weave_recursive_mutex_lock_timed")]
    private static int LockTimed(weave_recursive_mutex_t* m, long timeoutNs, int flags)
    {
        if (m == null)
        {
            return NullMutex("weave_recursive_mutex_lock_timed: mutex is NULL\0"u8);
        }
        if ((flags & ~LockFlags.All) != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_recursive_mutex_lock_timed: unknown flags\0"u8);
        }
        return DebugSwitch.s_flags != 0 ? DebugLocks.RecursiveLockTimed(m, timeoutNs, flags, null) : RecursiveMutex.LockTimed(m, timeoutNs, flags);
    }

    private static int NullMutex(System.ReadOnlySpan<byte> message) => ThreadContexts.SetError(WEAVE_E_INVALID, message);

    private static int CheckUnlock(int result) => result == WEAVE_E_NOT_OWNER
        ? ThreadContexts.SetError(result, "weave_recursive_mutex_unlock: the calling thread does not own the mutex\0"u8)
        : result;
}
