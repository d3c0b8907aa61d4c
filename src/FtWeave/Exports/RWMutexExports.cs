using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Diagnostics;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "RW mutex". The first four are the exported copies
/// of the header's static inline functions (same behaviour, for FFIs); the
/// unlocks share one body with their slow paths, which re-check the word.
/// The two _timed acquires take weave_mutex_lock_timed's timeout and flags.
/// </summary>
internal static unsafe class RWMutexExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_rlock")]
    private static void RLock(nuint* rw)
    {
        if (rw == null)
        {
            NullLock("weave_rwmutex_rlock: rwmutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RwLock(rw, write: false, null, track: true);
            return;
        }
        RWMutex.RLock(rw);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_runlock")]
    private static int RUnlock(nuint* rw) => RUnlockChecked(rw, check: true);

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_lock")]
    private static void Lock(nuint* rw)
    {
        if (rw == null)
        {
            NullLock("weave_rwmutex_lock: rwmutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RwLock(rw, write: true, null, track: true);
            return;
        }
        RWMutex.Lock(rw);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_unlock")]
    private static int Unlock(nuint* rw) => UnlockChecked(rw, check: true);

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_rlock_slow")]
    private static void RLockSlow(nuint* rw)
    {
        if (rw == null)
        {
            NullLock("weave_rwmutex_rlock: rwmutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RwLock(rw, write: false, null, track: false);
            return;
        }
        RWMutex.RLockSlow(rw);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_runlock_slow")]
    private static int RUnlockSlow(nuint* rw) => RUnlockChecked(rw, check: false);

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_lock_slow")]
    private static void LockSlow(nuint* rw)
    {
        if (rw == null)
        {
            NullLock("weave_rwmutex_lock: rwmutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.RwLock(rw, write: true, null, track: false);
            return;
        }
        RWMutex.LockSlow(rw);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_unlock_slow")]
    private static int UnlockSlow(nuint* rw) => UnlockChecked(rw, check: false);

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_rlock_timed")]
    private static int RLockTimed(nuint* rw, long timeoutNs, int flags)
    {
        if (rw == null)
        {
            return NullLock("weave_rwmutex_rlock_timed: rwmutex is NULL\0"u8);
        }
        if ((flags & ~LockFlags.All) != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_rwmutex_rlock_timed: unknown flags\0"u8);
        }
        return DebugSwitch.s_flags != 0 ? DebugLocks.RwLockTimed(rw, write: false, timeoutNs, flags, null) : RWMutex.RLockTimed(rw, timeoutNs, flags);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_rwmutex_lock_timed")]
    private static int LockTimed(nuint* rw, long timeoutNs, int flags)
    {
        if (rw == null)
        {
            return NullLock("weave_rwmutex_lock_timed: rwmutex is NULL\0"u8);
        }
        if ((flags & ~LockFlags.All) != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_rwmutex_lock_timed: unknown flags\0"u8);
        }
        return DebugSwitch.s_flags != 0 ? DebugLocks.RwLockTimed(rw, write: true, timeoutNs, flags, null) : RWMutex.LockTimed(rw, timeoutNs, flags);
    }
    /// <summary>
    /// The visible-readers table of the reader bias, for the header's inline
    /// rlock/runlock (each translation unit calls it once and keeps the
    /// pointer). Internal to the header: not API.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "weave__rwmutex_readers")]
    private static weave__rwmutex_slot_t* Readers() => (weave__rwmutex_slot_t*)FtWeave.Interop.Native.RWMutexReaders();

    private static int RUnlockChecked(nuint* rw, bool check)
    {
        if (rw == null)
        {
            return NullLock("weave_rwmutex_runlock: rwmutex is NULL\0"u8);
        }
        if (DebugSwitch.s_flags != 0)
        {
            return DebugLocks.RwUnlock(rw, write: false, null, check);
        }
        int result = RWMutex.RUnlock(rw);
        return result == WEAVE_E_NOT_OWNER
            ? ThreadContexts.SetError(result, "weave_rwmutex_runlock: the rwmutex is not read-locked\0"u8)
            : result;
    }

    private static int UnlockChecked(nuint* rw, bool check)
    {
        if (rw == null)
        {
            return NullLock("weave_rwmutex_unlock: rwmutex is NULL\0"u8);
        }
        if (DebugSwitch.s_flags != 0)
        {
            return DebugLocks.RwUnlock(rw, write: true, null, check);
        }
        int result = RWMutex.Unlock(rw);
        return result == WEAVE_E_NOT_OWNER
            ? ThreadContexts.SetError(result, "weave_rwmutex_unlock: the rwmutex is not write-locked\0"u8)
            : result;
    }

    private static int NullLock(System.ReadOnlySpan<byte> message) => ThreadContexts.SetError(WEAVE_E_INVALID, message);
}
