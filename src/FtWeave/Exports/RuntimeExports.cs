using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Threads;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section "Conventions": versions, errors and thread ids.</summary>
internal static unsafe class RuntimeExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_version")]
    private static byte* Version()
    {
        fixed (byte* p = LibraryVersion.VersionString)
        {
            return p;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_abi_version")]
    private static int AbiVersion() => LibraryVersion.AbiVersion;

    [UnmanagedCallersOnly(EntryPoint = "weave_strerror")]
    private static byte* StrError(int code) => ErrorCodes.Describe(code);

    [UnmanagedCallersOnly(EntryPoint = "weave_last_error")]
    private static byte* LastError() => ThreadContexts.LastError();

    [UnmanagedCallersOnly(EntryPoint = "weave_thread_id")]
    private static ulong ThreadId() => ThreadIds.Current();
}
