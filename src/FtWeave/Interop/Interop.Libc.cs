using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>
/// The C allocator. The library keeps all per-thread and registry state in
/// native memory: it must survive the runtime detaching a thread, must not be
/// moved by the GC, and must report failure as NULL (NativeMemory throws
/// OutOfMemoryException instead, and no export may let an exception escape).
///
/// No [SuppressGCTransition] here: that attribute leaves the thread in
/// cooperative mode for the whole call, so every GC suspension waits until
/// the call returns, and it forbids the callee to call back into the
/// library. These calls can block (arena locks, mmap, page faults while
/// zeroing) and can be replaced by an allocator that takes locks, including
/// ft_weave's own. Only calls that never block keep the attribute (the futex
/// wake, clock_gettime, pthread_self, pthread_getspecific, and the
/// never-blocking getters of src/native).
/// </summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", EntryPoint = "malloc")]
    internal static partial void* Malloc(nuint size);

    [LibraryImport("libc", EntryPoint = "calloc")]
    internal static partial void* Calloc(nuint count, nuint size);

    [LibraryImport("libc", EntryPoint = "realloc")]
    internal static partial void* Realloc(void* ptr, nuint size);

    [LibraryImport("libc", EntryPoint = "free")]
    internal static partial void Free(void* ptr);
}
