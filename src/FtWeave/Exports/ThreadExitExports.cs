using System.Runtime.InteropServices;
using FtWeave.Interop;
using FtWeave.Python;
using FtWeave.Threads;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section "Thread-exit destructors": the weave_* names, the
/// ft_utils-compatible names, and the wvls_key_* wrappers over pthread keys.
/// </summary>
internal static unsafe class ThreadExitExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_register_destructor")]
    private static int RegisterDestructor(void** var, delegate* unmanaged<void*, void> destructor)
        => ThreadExitDestructors.Register(var, destructor);

    [UnmanagedCallersOnly(EntryPoint = "weave_unregister_destructor")]
    private static int UnregisterDestructor(void** var)
        => ThreadExitDestructors.Unregister(var);

    [UnmanagedCallersOnly(EntryPoint = "weave_run_thread_destructors")]
    private static int RunThreadDestructors()
        => ThreadExitDestructors.RunNow();

    /// <summary>ft_utils name; failures are reported through weave_last_error only.</summary>
    [UnmanagedCallersOnly(EntryPoint = "register_wvls_destructor")]
    private static void RegisterWvlsDestructor(void** var, delegate* unmanaged<void*, void> destructor)
        => ThreadExitDestructors.Register(var, destructor);

    /// <summary>ft_utils name: 1 if removed, 0 if none (and 0 for NULL, as ft_utils cannot say otherwise).</summary>
    [UnmanagedCallersOnly(EntryPoint = "unregister_wvls_destructor")]
    private static int UnregisterWvlsDestructor(void** var)
    {
        int result = ThreadExitDestructors.Unregister(var);
        return result < 0 ? 0 : result;
    }

    /// <summary>
    /// ft_utils' helper: 0 ok, 1 failure. As in ft_utils, a failure leaves a
    /// Python exception set when the calling thread has an attached thread
    /// state (ported code does `if (_py_register_wvls_destructor(..)) return NULL;`).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "_py_register_wvls_destructor")]
    private static int PyRegisterWvlsDestructor(void** var, delegate* unmanaged<void*, void> destructor)
    {
        int result = ThreadExitDestructors.Register(var, destructor);
        if (result == 0)
        {
            return 0;
        }
        CPythonRuntime.RaiseIfAttached(result, "_py_register_wvls_destructor\0"u8);
        return 1;
    }

    /// <summary>
    /// ft_utils' helper: 0 ok (with *unregistered 1/0), 1 failure (exception
    /// as above). A NULL var is not a failure, as in ft_utils (whose helper
    /// asks Python to unregister address 0 and gets False): nothing can be
    /// registered for NULL here, so it is 0 with *unregistered = 0, like
    /// unregister_wvls_destructor(NULL).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "_py_unregister_wvls_destructor")]
    private static int PyUnregisterWvlsDestructor(void** var, int* unregistered)
    {
        if (var == null)
        {
            if (unregistered != null)
            {
                *unregistered = 0;
            }
            return 0;
        }
        int removed = ThreadExitDestructors.Unregister(var);
        if (removed < 0)
        {
            CPythonRuntime.RaiseIfAttached(removed, "_py_unregister_wvls_destructor\0"u8);
            return 1;
        }
        if (unregistered != null)
        {
            *unregistered = removed;
        }
        return 0;
    }

    [UnmanagedCallersOnly(EntryPoint = "wvls_key_create")]
    private static int KeyCreate(uint* key, delegate* unmanaged<void*, void> destructor)
        => WvlsKeys.Create(key, destructor);

    [UnmanagedCallersOnly(EntryPoint = "wvls_key_delete")]
    private static int KeyDelete(uint key) => WvlsKeys.Delete(key);

    [UnmanagedCallersOnly(EntryPoint = "wvls_set_value")]
    private static int SetValue(uint key, void* value) => Pthread.SetSpecific(key, value);

    [UnmanagedCallersOnly(EntryPoint = "wvls_get_value")]
    private static void* GetValue(uint key) => Pthread.GetSpecific(key);
}
