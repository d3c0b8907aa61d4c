using System.Threading;
using FtWeave.Interop;

namespace FtWeave.Python;

/// <summary>
/// CPython, found at run time in the process's global symbol scope (the
/// python executable, or a libpython loaded RTLD_GLOBAL): the library never
/// links against libpython. Used to release the calling thread's thread state
/// while it sleeps (WEAVE_LOCK_DETACH) and to run pending calls on EINTR
/// (WEAVE_LOCK_HANDLE_SIGNALS), as CPython's own PyMutex does.
/// </summary>
internal static unsafe class CPythonRuntime
{
    // Resolved lazily; a process that has no CPython yet is looked at again at
    // most once a second (dlsym of a missing name walks every library).
    private static delegate* unmanaged<nint> s_getUnchecked;   // PyThreadState_GetUnchecked (3.13+) or _PyThreadState_UncheckedGet
    private static delegate* unmanaged<int> s_gilStateCheck;   // PyGILState_Check, needed before 3.12
    private static delegate* unmanaged<nint> s_saveThread;     // PyEval_SaveThread
    private static delegate* unmanaged<nint, void> s_restoreThread; // PyEval_RestoreThread
    private static delegate* unmanaged<int> s_makePendingCalls; // Py_MakePendingCalls
    private static int s_state;         // 0 unknown, 1 present, 2 absent
    private static long s_nextProbeNs;

    private static bool Present
    {
        get
        {
            int state = Volatile.Read(ref s_state);
            if (state == 1)
            {
                return true;
            }
            if (state == 2 && Futex.MonotonicNow() < Volatile.Read(ref s_nextProbeNs))
            {
                return false;
            }
            return Probe();
        }
    }

    private static bool Probe()
    {
        void* getUnchecked = Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("PyThreadState_GetUnchecked\0"u8));
        bool needsGilCheck = false;
        if (getUnchecked == null)
        {
            // 3.11/3.12: on 3.11 this returns the thread state holding the GIL
            // (process-wide), so PyGILState_Check must confirm it is ours.
            getUnchecked = Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("_PyThreadState_UncheckedGet\0"u8));
            needsGilCheck = true;
        }
        void* save = Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("PyEval_SaveThread\0"u8));
        void* restore = Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("PyEval_RestoreThread\0"u8));
        void* pending = Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("Py_MakePendingCalls\0"u8));
        void* gilCheck = needsGilCheck ? Dl.Sym(Dl.RTLD_DEFAULT, (byte*)Unsafe("PyGILState_Check\0"u8)) : null;
        if (getUnchecked == null || save == null || restore == null || pending == null || (needsGilCheck && gilCheck == null))
        {
            Volatile.Write(ref s_nextProbeNs, Futex.MonotonicNow() + 1_000_000_000);
            Volatile.Write(ref s_state, 2);
            return false;
        }
        s_getUnchecked = (delegate* unmanaged<nint>)getUnchecked;
        s_gilStateCheck = (delegate* unmanaged<int>)gilCheck;
        s_saveThread = (delegate* unmanaged<nint>)save;
        s_restoreThread = (delegate* unmanaged<nint, void>)restore;
        s_makePendingCalls = (delegate* unmanaged<int>)pending;
        // Release: the pointers above are visible to whoever reads state 1.
        Volatile.Write(ref s_state, 1);
        return true;
    }

    private static byte* Unsafe(System.ReadOnlySpan<byte> literal)
    {
        fixed (byte* p = literal)
        {
            return p; // u8 literals live in read-only data: the pointer stays valid
        }
    }

    /// <summary>Whether the calling thread has an attached thread state.</summary>
    private static bool ThreadIsAttached()
    {
        if (!Present || s_getUnchecked() == 0)
        {
            return false;
        }
        return s_gilStateCheck == null || s_gilStateCheck() != 0;
    }

    /// <summary>
    /// Releases the calling thread's thread state if it has one attached;
    /// returns it for <see cref="Restore"/> (0 when nothing was released).
    /// Must run outside every bucket lock: it may take the GIL's locks.
    /// </summary>
    internal static nint Detach() => ThreadIsAttached() ? s_saveThread() : 0;

    /// <summary>Re-attaches what <see cref="Detach"/> released. May block on the GIL.</summary>
    internal static void Restore(nint saved)
    {
        if (saved != 0)
        {
            s_restoreThread(saved);
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
