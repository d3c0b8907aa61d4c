using System.Runtime.InteropServices;
using FtWeave.Diagnostics;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h, "Diagnostics: contention profile".</summary>
internal static unsafe class ProfileExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_profile_start")]
    private static int Start()
    {
        int rc = ContentionProfileControl.Start();
        return rc switch
        {
            WEAVE_E_STATE => ThreadContexts.SetError(rc, "weave_profile_start: the profile is already running\0"u8),
            WEAVE_E_NOMEM => ThreadContexts.SetError(rc, "weave_profile_start: out of memory for the profile's table\0"u8),
            _ => rc,
        };
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_profile_stop")]
    private static int Stop()
    {
        int rc = ContentionProfileControl.Stop();
        return rc == WEAVE_E_STATE ? ThreadContexts.SetError(rc, "weave_profile_stop: the profile is not running\0"u8) : rc;
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_profile_write")]
    private static int Write(byte* path)
    {
        if (path == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_profile_write: path is NULL\0"u8);
        }
        if (*path == 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_profile_write: path is empty\0"u8);
        }
        if (!ContentionProfile.EverStarted)
        {
            return ThreadContexts.SetError(WEAVE_E_STATE, "weave_profile_write: the profile was never started\0"u8);
        }
        string? error = ContentionProfileControl.WriteFile(Marshal.PtrToStringUTF8((nint)path)!);
        if (error == null)
        {
            return WEAVE_OK;
        }
        ThreadContexts.BeginError("weave_profile_write: cannot write the file\0"u8)
            .Append("weave_profile_write: cannot write the file: "u8)
            .Append(System.Text.Encoding.UTF8.GetBytes(error));
        return WEAVE_E_INVALID;
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_profile_rows")]
    private static int Rows(weave_profile_row_t* rows, nuint capacity)
    {
        if (rows == null && capacity != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_profile_rows: rows is NULL with a non-zero capacity\0"u8);
        }
        return ContentionProfileControl.Rows(rows, (int)System.Math.Min(capacity, (nuint)int.MaxValue));
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_profile_set_rate")]
    private static int SetRate(int n)
    {
        if (n < 1)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_profile_set_rate: the rate must be >= 1\0"u8);
        }
        int previous = ContentionProfile.Rate;
        ContentionProfile.SetRate(n);
        return previous;
    }
}
