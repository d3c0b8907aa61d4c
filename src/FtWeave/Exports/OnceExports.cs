using System.Runtime.InteropServices;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "Once". weave_once_call is the exported copy of the
/// header's static inline function (same behaviour, for FFIs).
/// </summary>
internal static unsafe class OnceExports
{
    // As the inline function: a done flag returns 0 before fn is looked at.
    [UnmanagedCallersOnly(EntryPoint = "weave_once_call")]
    private static int Call(byte* once, delegate* unmanaged<void*, int> fn, void* arg)
    {
        if (once != null && Once.IsDone(once))
        {
            return 0;
        }
        return CallChecked(once, fn, arg);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_once_call_slow")]
    private static int CallSlow(byte* once, delegate* unmanaged<void*, int> fn, void* arg) => CallChecked(once, fn, arg);

    private static int CallChecked(byte* once, delegate* unmanaged<void*, int> fn, void* arg)
    {
        if (once == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_once_call: once is NULL\0"u8);
        }
        if (fn == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_once_call: fn is NULL\0"u8);
        }
        int result = Once.CallSlow(once, fn, arg);
        return result switch
        {
            Once.BadResult => ThreadContexts.SetError(WEAVE_E_INVALID, "weave_once_call: fn returned neither 0 nor -1; the flag was reset\0"u8),
            Once.Recursive => ThreadContexts.SetError(WEAVE_E_DEADLOCK, "weave_once_call: called from inside fn on the same flag\0"u8),
            Once.NoMemory => ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_once_call: out of memory for the run's record; fn did not run\0"u8),
            _ => result,
        };
    }
}
