using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Diagnostics;
using FtWeave.Interop;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h, "Diagnostics: debug mode". The weave_debug_* lock operations
/// are defined by the C part (src/native/debug.c), which records the
/// caller's return address and calls the ftw_debug_* entry points below.
/// </summary>
internal static unsafe class DiagnosticsExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_debug_set")]
    private static int Set(int flags, delegate* unmanaged<byte*, void*, void> fn, void* arg) => DebugMode.Set(flags, fn, arg);

    [UnmanagedCallersOnly(EntryPoint = "weave_debug_flags")]
    private static int Flags() => DebugMode.Flags;

    [UnmanagedCallersOnly(EntryPoint = "weave_debug_check_deadlocks")]
    private static int CheckDeadlocks() => LiveDeadlocks.Check(onlyNew: false);

    [UnmanagedCallersOnly(EntryPoint = "weave_mutex_assert_held")]
    private static int AssertHeld(byte* m) =>
        m == null ? ThreadContexts.SetError(WEAVE_E_INVALID, "weave_mutex_assert_held: mutex is NULL\0"u8) : DebugLocks.MutexAssertHeld(m);

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_mutex_lock")]
    [CalledFromNative("weave_debug_mutex_lock")]
    private static void MutexLock(byte* m)
    {
        void* site = DebugNative.TakeSite();
        if (m == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        DebugLocks.MutexLock(m, site, track: true);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_mutex_unlock")]
    [CalledFromNative("weave_debug_mutex_unlock")]
    private static int MutexUnlock(byte* m)
    {
        void* site = DebugNative.TakeSite();
        return m == null
            ? ThreadContexts.SetError(WEAVE_E_INVALID, "weave_mutex_unlock: mutex is NULL\0"u8)
            : DebugLocks.MutexUnlock(m, site, check: true);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_mutex_trylock")]
    [CalledFromNative("weave_debug_mutex_trylock")]
    private static int MutexTryLock(byte* m)
    {
        void* site = DebugNative.TakeSite();
        return m == null ? 0 : DebugLocks.MutexTryLock(m, site);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_recursive_mutex_lock")]
    [CalledFromNative("weave_debug_recursive_mutex_lock")]
    private static void RecursiveLock(weave_recursive_mutex_t* m)
    {
        void* site = DebugNative.TakeSite();
        if (m == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_recursive_mutex_lock: mutex is NULL\0"u8);
            return;
        }
        DebugLocks.RecursiveLock(m, site, track: true);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_recursive_mutex_unlock")]
    [CalledFromNative("weave_debug_recursive_mutex_unlock")]
    private static int RecursiveUnlock(weave_recursive_mutex_t* m)
    {
        void* site = DebugNative.TakeSite();
        return m == null
            ? ThreadContexts.SetError(WEAVE_E_INVALID, "weave_recursive_mutex_unlock: mutex is NULL\0"u8)
            : DebugLocks.RecursiveUnlock(m, site);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_rwmutex_rlock")]
    [CalledFromNative("weave_debug_rwmutex_rlock")]
    private static void RwRLock(nuint* rw) => RwLock(rw, write: false, "weave_rwmutex_rlock: rwmutex is NULL\0"u8);

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_rwmutex_lock")]
    [CalledFromNative("weave_debug_rwmutex_lock")]
    private static void RwWLock(nuint* rw) => RwLock(rw, write: true, "weave_rwmutex_lock: rwmutex is NULL\0"u8);

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_rwmutex_runlock")]
    [CalledFromNative("weave_debug_rwmutex_runlock")]
    private static int RwRUnlock(nuint* rw) => RwUnlock(rw, write: false, "weave_rwmutex_runlock: rwmutex is NULL\0"u8);

    [UnmanagedCallersOnly(EntryPoint = "ftw_debug_rwmutex_unlock")]
    [CalledFromNative("weave_debug_rwmutex_unlock")]
    private static int RwWUnlock(nuint* rw) => RwUnlock(rw, write: true, "weave_rwmutex_unlock: rwmutex is NULL\0"u8);

    private static void RwLock(nuint* rw, bool write, System.ReadOnlySpan<byte> nullMessage)
    {
        void* site = DebugNative.TakeSite();
        if (rw == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, nullMessage);
            return;
        }
        DebugLocks.RwLock(rw, write, site, track: true);
    }

    private static int RwUnlock(nuint* rw, bool write, System.ReadOnlySpan<byte> nullMessage)
    {
        void* site = DebugNative.TakeSite();
        return rw == null ? ThreadContexts.SetError(WEAVE_E_INVALID, nullMessage) : DebugLocks.RwUnlock(rw, write, site, check: true);
    }
}
