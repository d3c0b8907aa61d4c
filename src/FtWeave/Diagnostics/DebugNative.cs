using System.Runtime.InteropServices;
using FtWeave.Interop;

namespace FtWeave.Diagnostics;

/// <summary>Debug mode's C part (src/native/debug.c).</summary>
internal static unsafe partial class DebugNative
{
    /// <summary>The return address a weave_debug_* export recorded for this call (cleared), or null.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_take_site")]
    [SuppressGCTransition]
    internal static partial void* TakeSite();

    /// <summary>The calling thread's record (a <see cref="DebugThread"/>), or null.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_record")]
    [SuppressGCTransition]
    internal static partial DebugThread* Record();

    /// <summary>Makes <paramref name="record"/> the thread's, freed at thread exit: 0, or -1.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_set_record")]
    internal static partial int SetRecord(DebugThread* record);

    /// <summary>dladdr: "function+0xoff (object)"; returns the length written.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_symbolize")]
    internal static partial int Symbolize(void* site, byte* buffer, int capacity);

    /// <summary>getenv("FT_WEAVE_DEBUG").</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_environment")]
    internal static partial byte* Environment();

    /// <summary>One line (plus a newline) on stderr.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_debug_write_stderr")]
    internal static partial void WriteStderr(byte* line);

    /// <summary>1 while kernel thread <paramref name="tid"/> of this process runs.</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_thread_alive")]
    internal static partial int ThreadAlive(int tid);

    /// <summary>gettid().</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_gettid")]
    internal static partial int GetTid();
}
