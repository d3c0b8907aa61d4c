using System.Runtime.InteropServices;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "Event". weave_event_is_set, weave_event_wait and
/// weave_event_wait_timed are the exported copies of the header's static
/// inline functions (same behaviour, for FFIs).
/// </summary>
internal static unsafe class EventExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_event_notify")]
    private static void Notify(byte* evt)
    {
        if (evt == null)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_event_notify: event is NULL\0"u8);
            return;
        }
        Event.Notify(evt);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_event_wait_slow")]
    private static int WaitSlow(byte* evt, long timeoutNs, int detach) => Wait(evt, timeoutNs, detach);

    // As the inline function: 0 for NULL, with no error recorded.
    [UnmanagedCallersOnly(EntryPoint = "weave_event_is_set")]
    private static int IsSet(byte* evt) => evt != null && Event.IsSet(evt) ? 1 : 0;

    [UnmanagedCallersOnly(EntryPoint = "weave_event_wait")]
    private static void WaitForever(byte* evt)
    {
        if (evt == null || !Event.IsSet(evt))
        {
            Wait(evt, -1, 1);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_event_wait_timed")]
    private static int WaitTimed(byte* evt, long timeoutNs, int detach)
    {
        if (evt != null && Event.IsSet(evt))
        {
            return 1;
        }
        return Wait(evt, timeoutNs, detach);
    }

    private static int Wait(byte* evt, long timeoutNs, int detach)
    {
        if (evt == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_event_wait: event is NULL\0"u8);
        }
        return Event.WaitSlow(evt, timeoutNs, detach != 0);
    }
}
