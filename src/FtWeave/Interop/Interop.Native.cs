using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>
/// The library's C part (src/native/, linked into the same .so and bound at
/// link time: DirectPInvoke "ftw_native" in FtWeave.csproj). None of these
/// block.
/// </summary>
internal static unsafe partial class NativeHooks
{
    /// <summary>
    /// The pthread key that holds each thread's ThreadContext, reserved when
    /// the library was loaded. 0, or ENOSPC when the process had no key left
    /// then.
    /// </summary>
    [LibraryImport("ftw_native", EntryPoint = "ftw_context_key")]
    [SuppressGCTransition]
    internal static partial int ContextKey(uint* key);

    /// <summary>
    /// Installs the callback that tears down the calling thread's context from
    /// the runtime's (deferred) pthread key destructor, while the thread is
    /// still attached (src/native/thread_exit.c).
    /// </summary>
    [LibraryImport("ftw_native", EntryPoint = "ftw_set_thread_teardown")]
    [SuppressGCTransition]
    internal static partial void SetThreadTeardown(delegate* unmanaged<void> teardown);

    /// <summary>Whether the calling thread is the process's main thread (gettid() == getpid()).</summary>
    [LibraryImport("ftw_native", EntryPoint = "ftw_is_main_thread")]
    [SuppressGCTransition]
    internal static partial int IsMainThread();
}
