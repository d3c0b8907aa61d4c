using System;
using System.Threading;
using FtWeave.Abi;
using FtWeave.Interop;
using FtWeave.Threads;

namespace FtWeave.Python;

/// <summary>
/// CPython, found without linking against libpython: used to release the
/// calling thread's thread state while it sleeps (WEAVE_LOCK_DETACH) and to
/// run pending calls on EINTR (WEAVE_LOCK_HANDLE_SIGNALS), as CPython's own
/// PyMutex does.
///
/// Where the functions come from, and when:
/// - the library's constructor looks them up with dlsym when it is loaded
///   (src/native/python_probe.c): the python executable, or a libpython
///   loaded with RTLD_GLOBAL before this library;
/// - weave_set_python_api hands them over explicitly (ft_weave_python.h's
///   weave_py_enter and the Python package call it), for a CPython loaded
///   later or privately.
/// Never from a waiting path: dlsym takes the dynamic loader's lock, and a
/// thread about to sleep may hold locks that a thread inside dlopen() (which
/// holds the loader's lock while it runs constructors) waits for. The library
/// used to look again, at most once a second, from <see cref="Detach"/>.
/// </summary>
internal static unsafe class CPythonRuntime
{
    private static delegate* unmanaged<nint> s_getUnchecked;   // PyThreadState_GetUnchecked (3.13+) or _PyThreadState_UncheckedGet
    private static delegate* unmanaged<int> s_gilStateCheck;   // PyGILState_Check, needed before 3.12
    private static delegate* unmanaged<nint> s_saveThread;     // PyEval_SaveThread
    private static delegate* unmanaged<nint, void> s_restoreThread; // PyEval_RestoreThread
    private static delegate* unmanaged<int> s_makePendingCalls; // Py_MakePendingCalls

    private const int Unknown = 0;   // the constructor's result not read yet
    private const int Present = 1;   // the pointers above are set, for good
    private const int Absent = 2;    // none known (yet: weave_set_python_api may still come)
    private const int Storing = 3;   // one thread is storing the pointers
    private static int s_state;

    private static bool IsPresent
    {
        get
        {
            // Acquire: pairs with the release in TryStore, so a thread that
            // sees Present sees the pointers.
            int state = Volatile.Read(ref s_state);
            if (state == Unknown)
            {
                state = AdoptLoadTimeProbe();
            }
            return state == Present;
        }
    }

    /// <summary>Takes what the constructor found; reads memory only (no dlsym).</summary>
    private static int AdoptLoadTimeProbe()
    {
        Native.PythonApi* found = Native.PythonSymbols();
        if (found->ThreadStateGet != null)
        {
            TryStore(*found);
        }
        else
        {
            Interlocked.CompareExchange(ref s_state, Absent, Unknown);
        }
        return Volatile.Read(ref s_state);
    }

    /// <summary>
    /// Stores a complete set of functions unless one is already stored (the
    /// first one found or handed over is kept: one process has one CPython).
    /// True when a set is stored now or already was.
    /// </summary>
    private static bool TryStore(in Native.PythonApi api)
    {
        while (true)
        {
            int state = Volatile.Read(ref s_state);
            if (state == Present)
            {
                return true;
            }
            if (state == Storing)
            {
                // Another thread is between its CAS and its release below:
                // a few stores away.
                Thread.SpinWait(1);
                continue;
            }
            if (Interlocked.CompareExchange(ref s_state, Storing, state) != state)
            {
                continue;
            }
            s_getUnchecked = (delegate* unmanaged<nint>)api.ThreadStateGet;
            s_gilStateCheck = (delegate* unmanaged<int>)api.GilStateCheck;
            s_saveThread = (delegate* unmanaged<nint>)api.SaveThread;
            s_restoreThread = (delegate* unmanaged<nint, void>)api.RestoreThread;
            s_makePendingCalls = (delegate* unmanaged<int>)api.MakePendingCalls;
            // Release: the pointers are visible to whoever reads Present.
            Volatile.Write(ref s_state, Present);
            return true;
        }
    }

    /// <summary>
    /// weave_set_python_api. The caller checked that the required functions
    /// are set. Returns whether CPython is known now (always true).
    /// </summary>
    internal static bool SetApi(in Native.PythonApi api)
    {
        // Take the load-time result first, so that it wins over a later call
        // as documented ("the first one found or handed over").
        _ = IsPresent;
        return TryStore(api);
    }

    /// <summary>Whether the calling thread has an attached thread state.</summary>
    private static bool ThreadIsAttached()
    {
        if (!IsPresent || s_getUnchecked() == 0)
        {
            return false;
        }
        return s_gilStateCheck == null || s_gilStateCheck() != 0;
    }

    /// <summary>
    /// Releases the calling thread's thread state if it has one attached;
    /// returns it for <see cref="Restore"/> (0 when nothing was released).
    /// Must run outside every bucket lock: it may take the GIL's locks.
    /// Looks nothing up: see the class comment.
    /// </summary>
    internal static nint Detach() => ThreadIsAttached() ? s_saveThread() : 0;

    /// <summary>
    /// Re-attaches what <see cref="Detach"/> released. May block on the GIL
    /// (or a stop-the-world pause). Through the C part: once the interpreter
    /// is finalizing, CPython 3.11-3.13 ends the calling thread inside
    /// PyEval_RestoreThread (pthread_exit), and that forced unwind must not
    /// run through these frames (see src/native/python_probe.c); the thread
    /// is parked for good there instead and this call never returns.
    /// </summary>
    internal static void Restore(nint saved)
    {
        if (saved != 0)
        {
            Native.PythonRestore((void*)s_restoreThread, saved);
        }
    }

    /// <summary>
    /// For the ft_utils-compatible helpers (_py_register_wvls_destructor,
    /// _py_unregister_wvls_destructor), whose callers return NULL to Python
    /// when they fail: if the calling thread has an attached thread state,
    /// sets the Python exception the package's ft_weave.weave would raise for
    /// <paramref name="code"/> (ValueError for WEAVE_E_INVALID, MemoryError
    /// for WEAVE_E_NOMEM, RuntimeError otherwise) with the message
    /// "<paramref name="what"/>: weave_last_error()". Without a thread state
    /// (a native thread, before Py_Initialize, after finalization) nothing is
    /// touched: the error stays in weave_last_error() only. Looks nothing up.
    /// </summary>
    internal static void RaiseIfAttached(int code, ReadOnlySpan<byte> what)
    {
        if (!ThreadIsAttached())
        {
            return;
        }
        int kind = code == ErrorCodes.WEAVE_E_INVALID ? 0 : code == ErrorCodes.WEAVE_E_NOMEM ? 1 : 2;
        fixed (byte* w = what)
        {
            _ = Native.PythonRaise(kind, w, ThreadContexts.LastError());
        }
    }

    /// <summary>
    /// WEAVE_LOCK_HANDLE_SIGNALS: runs CPython's pending calls when this
    /// thread has an attached thread state. False when they raised (the lock
    /// call returns WEAVE_LOCK_INTR); true when they ran or there was nothing
    /// to run.
    /// </summary>
    internal static bool RunPendingCalls() => !ThreadIsAttached() || s_makePendingCalls() >= 0;
}
