using System;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Abi;
using FtWeave.Interop;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Diagnostics;

/// <summary>weave_profile_row_t of ft_weave.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_profile_row_t
{
    public nuint lock_address;
    public nuint wait_site;
    public nuint release_site;
    public ulong count;
    public ulong total_ns;
    public ulong max_ns;
}

/// <summary>
/// The contention profile's API (weave_profile_*), the environment variable
/// FT_WEAVE_PROFILE=contention:PATH (read when the runtime starts, which is
/// the library's first call) and the write at exit. Start, stop and write are
/// serialised by one managed lock: they are rare calls, none of them runs on
/// a lock's path.
/// </summary>
internal static unsafe class ContentionProfileControl
{
    private static readonly Lock s_control = new();
    private static bool s_running;
    private static string? s_exitPath;

    internal const string EnvironmentName = "FT_WEAVE_PROFILE";
    internal const string RateEnvironmentName = "FT_WEAVE_PROFILE_RATE";

#pragma warning disable CA2255 // a library's module initializer: runs at the runtime's start, the library's first use
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void ReadEnvironment()
    {
        try
        {
            string? rate = Environment.GetEnvironmentVariable(RateEnvironmentName);
            if (!string.IsNullOrEmpty(rate))
            {
                if (int.TryParse(rate, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1)
                {
                    ContentionProfile.SetRate(n);
                }
                else
                {
                    Warn($"{RateEnvironmentName}={rate} ignored: expected a whole number >= 1 (record 1 in N waits)");
                }
            }
            string? value = Environment.GetEnvironmentVariable(EnvironmentName);
            if (string.IsNullOrEmpty(value))
            {
                return;
            }
            const string prefix = "contention:";
            if (!value.StartsWith(prefix, StringComparison.Ordinal) || value.Length == prefix.Length)
            {
                Warn($"{EnvironmentName}={value} ignored: expected contention:PATH");
                return;
            }
            string path = value.Substring(prefix.Length);
            if (Start() != WEAVE_OK)
            {
                Warn($"{EnvironmentName}: out of memory, no profile is recorded");
                return;
            }
            s_exitPath = path;
            if (Native.ProfileAtExit(&WriteAtExit) != 0)
            {
                Warn($"{EnvironmentName}: atexit failed, {path} will not be written at exit");
            }
        }
        catch (Exception)
        {
            // A diagnostics switch must never stop the library from starting.
        }
    }

    private static void Warn(string message)
    {
        try
        {
            Console.Error.WriteLine("ft_weave: " + message);
        }
        catch (Exception)
        {
        }
    }

    [UnmanagedCallersOnly]
    private static void WriteAtExit()
    {
        string? path = s_exitPath;
        if (path == null)
        {
            return;
        }
        string? error = WriteFile(path);
        if (error != null)
        {
            Warn($"{EnvironmentName}: cannot write {path}: {error}");
        }
    }

    internal static int Start()
    {
        lock (s_control)
        {
            if (s_running)
            {
                return WEAVE_E_STATE;
            }
            if (!ContentionProfile.Start())
            {
                return WEAVE_E_NOMEM;
            }
            s_running = true;
            return WEAVE_OK;
        }
    }

    internal static int Stop()
    {
        lock (s_control)
        {
            if (!s_running)
            {
                return WEAVE_E_STATE;
            }
            ContentionProfile.Stop();
            s_running = false;
            return WEAVE_OK;
        }
    }

    /// <summary>Writes the profile to <paramref name="path"/>: null, or what went wrong.</summary>
    internal static string? WriteFile(string path)
    {
        byte[] bytes;
        lock (s_control)
        {
            bytes = PprofWriter.Build();
        }
        try
        {
            File.WriteAllBytes(path, bytes);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return e is UnauthorizedAccessException ? "permission denied" : e is DirectoryNotFoundException ? "no such directory" : "I/O error";
        }
    }

    /// <summary>
    /// Fills up to <paramref name="capacity"/> rows, one per (lock, wait
    /// site, release site), and returns how many there are in all.
    /// </summary>
    internal static int Rows(weave_profile_row_t* rows, int capacity)
    {
        ContentionProfile.Entry* table = ContentionProfile.Table;
        if (table == null)
        {
            return 0;
        }
        // Merged in the caller's buffer (and counted past its end with a
        // second pass over what did not fit): no allocation.
        int total = 0;
        for (int i = 0; i < ContentionProfile.TableCapacity; i++)
        {
            ContentionProfile.Entry* e = table + i;
            if (Volatile.Read(ref e->State) != 2 || Volatile.Read(ref e->Count) == 0)
            {
                continue;
            }
            nuint wait = e->WaitDepth > 0 ? (nuint)e->Wait[0] : 0;
            nuint release = e->ReleaseDepth > 0 ? (nuint)e->Release[0] : 0;
            int found = -1;
            int limit = Math.Min(total, capacity);
            for (int r = 0; r < limit; r++)
            {
                if (rows[r].lock_address == e->Lock && rows[r].wait_site == wait && rows[r].release_site == release)
                {
                    found = r;
                    break;
                }
            }
            if (found < 0 && total >= capacity && SeenBefore(table, i, e->Lock, wait, release))
            {
                // Past the buffer: already counted as a row by an earlier entry.
                continue;
            }
            if (found < 0)
            {
                if (total < capacity)
                {
                    rows[total] = new weave_profile_row_t { lock_address = e->Lock, wait_site = wait, release_site = release };
                    found = total;
                }
                total++;
            }
            if (found >= 0)
            {
                rows[found].count += (ulong)Volatile.Read(ref e->Count);
                rows[found].total_ns += (ulong)Volatile.Read(ref e->TotalNs);
                rows[found].max_ns = Math.Max(rows[found].max_ns, (ulong)Volatile.Read(ref e->MaxNs));
            }
        }
        return total;
    }

    private static bool SeenBefore(ContentionProfile.Entry* table, int before, nuint lockAddress, nuint wait, nuint release)
    {
        for (int j = 0; j < before; j++)
        {
            ContentionProfile.Entry* e = table + j;
            if (Volatile.Read(ref e->State) == 2 && e->Count != 0 && e->Lock == lockAddress &&
                (e->WaitDepth > 0 ? (nuint)e->Wait[0] : 0) == wait && (e->ReleaseDepth > 0 ? (nuint)e->Release[0] : 0) == release)
            {
                return true;
            }
        }
        return false;
    }
}
