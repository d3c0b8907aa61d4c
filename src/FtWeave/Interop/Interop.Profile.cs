using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>The contention profile's C half (src/native/contention_profile.c).</summary>
internal static unsafe partial class Native
{
    /// <summary>
    /// The calling thread's return addresses outside libft_weave.so, innermost
    /// first, at most <paramref name="max"/>; returns how many. Unwinds the
    /// stack (glibc backtrace): microseconds, called for sampled events only.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_profile_stack")]
    internal static partial int ProfileStack(ulong* pcs, int max);

    /// <summary>Runs backtrace() once, so that its lazy load of libgcc_s happens here.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_profile_warm_up")]
    internal static partial void ProfileWarmUp();

    /// <summary>1 when <paramref name="pc"/> lies in libft_weave.so.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_profile_in_library")]
    [SuppressGCTransition]
    internal static partial int ProfileInLibrary(nuint pc);

    /// <summary>
    /// Registers (once per process) an atexit handler that calls
    /// <paramref name="writer"/> in this process only (not in fork children).
    /// 0, or -1 when atexit failed.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_profile_at_exit")]
    internal static partial int ProfileAtExit(delegate* unmanaged<void> writer);
}
