using System.Runtime.InteropServices;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 4, "Condition variable".</summary>
internal static unsafe class ConditionExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_cond_wait")]
    private static int Wait(byte* cond, byte* mutex, long timeoutNs)
    {
        if (cond == null || mutex == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_cond_wait: cond or mutex is NULL\0"u8);
        }
        return Condition.Wait(cond, mutex, timeoutNs); // records its own errors
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_cond_signal")]
    private static int Signal(byte* cond) =>
        cond == null
            ? ThreadContexts.SetError(WEAVE_E_INVALID, "weave_cond_signal: cond is NULL\0"u8)
            : Condition.Notify(cond, all: false);

    [UnmanagedCallersOnly(EntryPoint = "weave_cond_broadcast")]
    private static int Broadcast(byte* cond) =>
        cond == null
            ? ThreadContexts.SetError(WEAVE_E_INVALID, "weave_cond_broadcast: cond is NULL\0"u8)
            : Condition.Notify(cond, all: true);
}
