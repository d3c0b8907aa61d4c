using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>
/// pthread and glibc thread-exit entry points (all in libc.so.6 since glibc
/// 2.34; bound directly at link time, see FtWeave.csproj).
/// </summary>
internal static unsafe partial class Pthread
{
    /// <summary>Never blocks; returns the thread pointer on glibc.</summary>
    [LibraryImport("libc", EntryPoint = "pthread_self")]
    [SuppressGCTransition]
    internal static partial nuint Self();

    // The library is linked with --wrap=pthread_key_create, which redirects
    // the runtime's key to src/native/thread_exit.c; the library's own keys
    // (wvls_key_create) are plain keys, so they name the real function.
    [LibraryImport("libc", EntryPoint = "__real_pthread_key_create")]
    internal static partial int KeyCreate(uint* key, delegate* unmanaged<void*, void> destructor);

    [LibraryImport("libc", EntryPoint = "pthread_key_delete")]
    internal static partial int KeyDelete(uint key);

    // No [SuppressGCTransition]: for a key above 31 glibc allocates the
    // thread's second-level block on its first store (see Interop.Libc.cs).
    [LibraryImport("libc", EntryPoint = "pthread_setspecific")]
    internal static partial int SetSpecific(uint key, void* value);

    [LibraryImport("libc", EntryPoint = "pthread_getspecific")]
    [SuppressGCTransition]
    internal static partial void* GetSpecific(uint key);

    /// <summary>
    /// glibc's registration for C++ <c>thread_local</c> destructors: <paramref name="func"/>
    /// runs with <paramref name="obj"/> when the calling thread exits (or in
    /// <c>exit()</c> for the main thread). Callbacks run last-in first-out, so
    /// one registered after the runtime attached the thread runs before the
    /// runtime's own detach callback. <paramref name="dsoSymbol"/> must be an
    /// address inside this library: glibc pins the library while the callback
    /// is pending and dereferences the lookup result without a NULL check.
    /// Returns 0, or -1 when glibc cannot allocate the list node.
    /// </summary>
    [LibraryImport("libc", EntryPoint = "__cxa_thread_atexit_impl")]
    internal static partial int CxaThreadAtExitImpl(delegate* unmanaged<void*, void> func, void* obj, void* dsoSymbol);
}

internal static unsafe partial class Pthread
{
    /// <summary>
    /// Fork handlers. In glibc 2.34+ pthread_atfork comes from
    /// libc_nonshared.a (it passes this library's __dso_handle), which the
    /// direct P/Invoke links statically.
    /// </summary>
    [LibraryImport("libc", EntryPoint = "pthread_atfork")]
    internal static partial int AtFork(delegate* unmanaged<void> prepare, delegate* unmanaged<void> parent, delegate* unmanaged<void> child);
}
