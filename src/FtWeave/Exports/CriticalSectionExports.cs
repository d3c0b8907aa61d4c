using System.Runtime.InteropServices;
using FtWeave.Interop;
using FtWeave.Locks;
using FtWeave.Diagnostics;
using FtWeave.Sections;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 5, "Critical sections". Void functions report misuse
/// through weave_last_error.
///
/// weave_critical_section_begin/end and 2_begin/2_end are defined by the C
/// part (src/native/critical_section.c), which does their uncontended cases
/// itself and calls the ftw_* entry points below for everything else; see
/// "Fast paths in C" in Sections/CriticalSection.cs. These entry points are
/// the complete operations (the C part may have tried a CAS first; trying
/// again here is harmless) and are not exported.
/// </summary>
internal static unsafe class CriticalSectionExports
{
    [UnmanagedCallersOnly(EntryPoint = "ftw_critical_section_begin_slow")]
    [CalledFromNative("weave_critical_section_begin")]
    private static void Begin(weave_critical_section_t* c, byte* m)
    {
        if (c == null || m == null)
        {
            if (c != null)
            {
                // Make the matching end a no-op instead of reading garbage.
                CriticalSections.InitEmpty(c);
            }
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section_begin: section or mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.SectionBegin(m, null);
            CriticalSections.Begin(c, m);
            DebugLocks.SectionBegun();
            return;
        }
        CriticalSections.Begin(c, m);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_critical_section_end_slow")]
    [CalledFromNative("weave_critical_section_end")]
    private static void End(weave_critical_section_t* c)
    {
        if (c == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section_end: section is NULL\0"u8);
            return;
        }
        CriticalSections.End(c);
    }

    [UnmanagedCallersOnly(EntryPoint = "ftw_critical_section2_begin_slow")]
    [CalledFromNative("weave_critical_section2_begin")]
    private static void Begin2(weave_critical_section2_t* c, byte* m1, byte* m2)
    {
        if (c == null || m1 == null || m2 == null)
        {
            if (c != null)
            {
                CriticalSections.InitEmpty(&c->_cs_base);
                c->_cs_mutex2 = null;
            }
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section2_begin: section or mutex is NULL\0"u8);
            return;
        }
        if (DebugSwitch.s_flags != 0)
        {
            DebugLocks.SectionBegin(m1, m2);
            CriticalSections.Begin2(c, m1, m2);
            DebugLocks.SectionBegun();
            return;
        }
        CriticalSections.Begin2(c, m1, m2);
    }

    /// <summary>The C part holds m1 (m1 &lt; m2, both non-NULL) and failed to take m2 with one CAS.</summary>
    [UnmanagedCallersOnly(EntryPoint = "ftw_critical_section2_begin_contended")]
    [CalledFromNative("weave_critical_section2_begin")]
    private static void Begin2Contended(weave_critical_section2_t* c, byte* m1, byte* m2)
        => CriticalSections.Begin2HoldingFirst(c, m1, m2);

    [UnmanagedCallersOnly(EntryPoint = "ftw_critical_section2_end_slow")]
    [CalledFromNative("weave_critical_section2_end")]
    private static void End2(weave_critical_section2_t* c)
    {
        if (c == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section2_end: section is NULL\0"u8);
            return;
        }
        CriticalSections.End2(c);
    }

    /// <summary>An end's unlock that found waiters parked (as Mutex.Unlock: no error recorded).</summary>
    [UnmanagedCallersOnly(EntryPoint = "ftw_mutex_unlock_slow")]
    [CalledFromNative]
    private static int MutexUnlockSlow(byte* m) => Mutex.UnlockSlow(m);

    /// <summary>An end's unlock whose release store then saw waiters announced.</summary>
    [UnmanagedCallersOnly(EntryPoint = "ftw_mutex_unlock_wake")]
    [CalledFromNative]
    private static void MutexUnlockWake(byte* m) => Mutex.UnlockWake(m);

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_suspend_all")]
    private static void SuspendAll() => CriticalSections.SuspendAll();

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_resume")]
    private static void Resume() => CriticalSections.Resume();
}
