using System.Runtime.InteropServices;
using FtWeave.Diagnostics;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "Mutex". The first four are the exported copies of
/// the header's static inline functions (same behaviour, for FFIs).
/// </summary>
internal static unsafe class MutexExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_lock")]
    private static void Lock(byte* m)
    {
        if (m == null)
        {
            NullMutex("weave_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.MutexLock(m, null, track: true);
            return;
        }
        Mutex.Lock(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_unlock")]
    private static int Unlock(byte* m) => m == null ? NullMutex("weave_mutex_unlock: mutex is NULL\0"u8)
        : DebugSwitch.s_flags != 0 ? DebugLocks.MutexUnlock(m, null, check: true) : CheckUnlock(Mutex.Unlock(m));

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_trylock")]
    private static int TryLock(byte* m) =>
        m == null ? 0 : DebugSwitch.s_flags != 0 ? DebugLocks.MutexTryLock(m, null) : Mutex.TryLock(m) ? 1 : 0;

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_is_locked")]
    private static int IsLocked(byte* m) => m != null && System.Threading.Volatile.Read(ref *m) == Mutex.Locked ? 1 : 0;

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_lock_slow")]
    private static void LockSlow(byte* m)
    {
        if (m == null)
        {
            NullMutex("weave_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.MutexLock(m, null, track: false);
            return;
        }
        Mutex.LockSlow(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_unlock_slow")]
    private static int UnlockSlow(byte* m) => m == null ? NullMutex("weave_mutex_unlock: mutex is NULL\0"u8)
        : DebugSwitch.s_flags != 0 ? DebugLocks.MutexUnlock(m, null, check: false) : CheckUnlock(Mutex.UnlockSlow(m));

    /// <summary>The header's unlock after its release store saw waiters announced.</summary>
    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_unlock_wake")]
    private static void UnlockWake(byte* m)
    {
        if (m == null)
        {
            NullMutex("weave_mutex_unlock: mutex is NULL\0"u8);
            return;
        }
        Mutex.UnlockWake(m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_lock_timed")]
    private static int LockTimed(byte* m, long timeoutNs, int flags)
    {
        if (m == null)
        {
            return NullMutex("weave_mutex_lock_timed: mutex is NULL\0"u8);
        }
        if ((flags & ~LockFlags.All) != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_mutex_lock_timed: unknown flags\0"u8);
        }
        return DebugSwitch.s_flags != 0 ? DebugLocks.MutexLockTimed(m, timeoutNs, flags, null) : Mutex.LockTimed(m, timeoutNs, flags);
    }

    private static int NullMutex(System.ReadOnlySpan<byte> message) => ThreadContexts.SetError(WEAVE_E_INVALID, message);

    private static int CheckUnlock(int result) => result == WEAVE_E_NOT_OWNER
        ? ThreadContexts.SetError(result, "weave_mutex_unlock: the mutex is not locked\0"u8)
        : result;
}
