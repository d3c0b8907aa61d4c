using System.Runtime.InteropServices;
using FtWeave.Sections;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 5, "Critical sections". Void functions report misuse through weave_last_error.</summary>
internal static unsafe class CriticalSectionExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_begin")]
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
        CriticalSections.Begin(c, m);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_end")]
    private static void End(weave_critical_section_t* c)
    {
        if (c == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section_end: section is NULL\0"u8);
            return;
        }
        CriticalSections.End(c);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section2_begin")]
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
        CriticalSections.Begin2(c, m1, m2);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section2_end")]
    private static void End2(weave_critical_section2_t* c)
    {
        if (c == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_critical_section2_end: section is NULL\0"u8);
            return;
        }
        CriticalSections.End2(c);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_suspend_all")]
    private static void SuspendAll() => CriticalSections.SuspendAll();

    [UnmanagedCallersOnly(EntryPoint = "weave_critical_section_resume")]
    private static void Resume() => CriticalSections.Resume();
}
