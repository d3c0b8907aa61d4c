using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>
/// The C allocator. The library keeps all per-thread and registry state in
/// native memory: it must survive the runtime detaching a thread, must not be
/// moved by the GC, and must report failure as NULL (NativeMemory throws
/// OutOfMemoryException instead, and no export may let an exception escape).
/// </summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", EntryPoint = "malloc")]
    [SuppressGCTransition]
    internal static partial void* Malloc(nuint size);

    [LibraryImport("libc", EntryPoint = "calloc")]
    [SuppressGCTransition]
    internal static partial void* Calloc(nuint count, nuint size);

    [LibraryImport("libc", EntryPoint = "realloc")]
    [SuppressGCTransition]
    internal static partial void* Realloc(void* ptr, nuint size);

    [LibraryImport("libc", EntryPoint = "free")]
    [SuppressGCTransition]
    internal static partial void Free(void* ptr);
}
