using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Threads;

namespace FtWeave.Python;

/// <summary>
/// Runs the main thread's thread-exit destructors at Python's <c>atexit</c>,
/// before the interpreter finalizes, when the process is a CPython program.
///
/// Without it they run in <c>exit()</c>, which CPython calls after
/// <c>Py_Finalize</c>: a destructor registered on Python-owned memory (a
/// ctypes buffer) would read freed memory. On the main thread's first
/// registration the library looks for an initialised interpreter (in the
/// global symbol scope, never linked) and registers a builtin callable with
/// the <c>atexit</c> module; CPython runs those callbacks on the main thread
/// first thing in finalization. Registrations made later still run there: the
/// callback runs whatever the main thread has registered by then.
///
/// Only the main thread's first registration pays for the lookups (dlsym
/// walks every library): never a lock or wait path.
/// </summary>
internal static unsafe class PythonAtExit
{
    private static int s_tried; // 1 once the main thread's first registration looked

    /// <summary>CPython's PyMethodDef: name, function, flags, doc.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PyMethodDef
    {
        public byte* Name;
        public void* Method;
        public int Flags;
        public byte* Doc;
    }

    private const int METH_NOARGS = 0x0004;

    // Native and never freed: CPython keeps a pointer to the definition in
    // the function object it builds from it.
    private static PyMethodDef* s_def;

    /// <summary>Called by the main thread's registrations; looks once per process.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void OnMainThreadRegistration()
    {
        if (Volatile.Read(ref s_tried) == 0)
        {
            TryInstall();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void TryInstall()
    {
        if (Interlocked.Exchange(ref s_tried, 1) != 0)
        {
            return;
        }
        var isInitialized = (delegate* unmanaged<int>)Sym("Py_IsInitialized\0"u8);
        var isFinalizing = (delegate* unmanaged<int>)Sym("Py_IsFinalizing\0"u8);
        if (isFinalizing == null)
        {
            isFinalizing = (delegate* unmanaged<int>)Sym("_Py_IsFinalizing\0"u8); // before 3.13
        }
        var ensure = (delegate* unmanaged<int>)Sym("PyGILState_Ensure\0"u8);
        var release = (delegate* unmanaged<int, void>)Sym("PyGILState_Release\0"u8);
        var import = (delegate* unmanaged<byte*, nint>)Sym("PyImport_ImportModule\0"u8);
        var getAttr = (delegate* unmanaged<nint, byte*, nint>)Sym("PyObject_GetAttrString\0"u8);
        var newFunction = (delegate* unmanaged<PyMethodDef*, nint, nint>)Sym("PyCFunction_New\0"u8);
        var newTuple = (delegate* unmanaged<nint, nint>)Sym("PyTuple_New\0"u8);
        var setItem = (delegate* unmanaged<nint, nint, nint, int>)Sym("PyTuple_SetItem\0"u8);
        var call = (delegate* unmanaged<nint, nint, nint>)Sym("PyObject_CallObject\0"u8);
        var decRef = (delegate* unmanaged<nint, void>)Sym("Py_DecRef\0"u8);
        var clearError = (delegate* unmanaged<void>)Sym("PyErr_Clear\0"u8);
        s_none = (nint)Sym("_Py_NoneStruct\0"u8);
        s_incRef = (delegate* unmanaged<nint, void>)Sym("Py_IncRef\0"u8);
        if (isInitialized == null || isFinalizing == null || ensure == null || release == null ||
            import == null || getAttr == null || newFunction == null || newTuple == null ||
            setItem == null || call == null || decRef == null || clearError == null ||
            s_none == 0 || s_incRef == null)
        {
            return; // no CPython in the process
        }
        if (isInitialized() == 0 || isFinalizing() != 0)
        {
            return;
        }
        PyMethodDef* def = (PyMethodDef*)Libc.Calloc(1, (nuint)sizeof(PyMethodDef));
        if (def == null)
        {
            return;
        }
        def->Name = Literal("_ft_weave_run_main_thread_destructors\0"u8);
        def->Method = (delegate* unmanaged<nint, nint, nint>)&RunMainThreadDestructors;
        def->Flags = METH_NOARGS;
        s_def = def;

        // The calling thread may or may not hold the interpreter (a ctypes call
        // releases it; an extension function holds it): Ensure covers both.
        int gil = ensure();
        nint module = import(Literal("atexit\0"u8));
        nint register = module != 0 ? getAttr(module, Literal("register\0"u8)) : 0;
        nint function = register != 0 ? newFunction(def, 0) : 0;
        nint args = function != 0 ? newTuple(1) : 0;
        if (args != 0)
        {
            // SetItem steals the function's reference.
            setItem(args, 0, function);
            function = 0;
            nint result = call(register, args);
            if (result != 0)
            {
                decRef(result);
            }
        }
        clearError(); // a failure leaves the destructors to exit(), as before
        if (args != 0)
        {
            decRef(args);
        }
        if (function != 0)
        {
            decRef(function);
        }
        if (register != 0)
        {
            decRef(register);
        }
        if (module != 0)
        {
            decRef(module);
        }
        release(gil);
    }

    private static nint s_none;
    private static delegate* unmanaged<nint, void> s_incRef;

    /// <summary>The atexit callback (a METH_NOARGS builtin): runs on the main thread.</summary>
    [UnmanagedCallersOnly]
    private static nint RunMainThreadDestructors(nint self, nint unused)
    {
        if (NativeHooks.IsMainThread() != 0)
        {
            ThreadExitDestructors.RunNow();
        }
        s_incRef(s_none);
        return s_none;
    }

    private static void* Sym(System.ReadOnlySpan<byte> name) => Dl.Sym(Dl.RTLD_DEFAULT, Literal(name));

    private static byte* Literal(System.ReadOnlySpan<byte> literal)
    {
        fixed (byte* p = literal)
        {
            return p; // u8 literals live in read-only data: the pointer stays valid
        }
    }
}
