using System.Runtime.InteropServices;
using FtWeave.Storage;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 6, "Cross-library storage".</summary>
internal static unsafe class StorageExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_tls_get")]
    private static void* TlsGet(byte* key, nuint size, delegate* unmanaged<void*, void*, int> init, void* arg)
        => ThreadLocalValues.Get(key, size, init, arg);

    [UnmanagedCallersOnly(EntryPoint = "weave_tls_set_destructor")]
    private static int TlsSetDestructor(byte* key, delegate* unmanaged<void*, void> destructor)
        => ThreadLocalValues.SetDestructor(key, destructor);

    [UnmanagedCallersOnly(EntryPoint = "weave_static_get")]
    private static void* StaticGet(byte* key, nuint size, delegate* unmanaged<void*, void*, int> init, void* arg)
        => StaticValues.Get(key, size, init, arg);

    [UnmanagedCallersOnly(EntryPoint = "weave_storage_reset")]
    private static int Reset() => ThreadLocalValues.Reset();
}
