using System.Runtime.CompilerServices;
using System.Threading;
using FtWeave.Abi;
using FtWeave.Threads;

namespace FtWeave.Locks;

/// <summary>
/// weave_recursive_mutex_t: CPython's _PyRecursiveMutex (Python/lock.c), a
/// <see cref="Mutex"/> plus its owner and a re-entry count.
///
///   field  | offset | written by               | meaning
///   -------+--------+--------------------------+---------------------------------
///   mutex  |   0    | Mutex.Lock / Unlock      | the lock itself (see Mutex)
///   thread |   8    | the owner, relaxed       | owner's weave_thread_id(), 0 if none
///   level  |  16    | the owner, plain         | extra acquisitions (0: held once)
///
/// Only the owner ever finds its own id in <c>thread</c>: it stores it after
/// acquiring the mutex and clears it before releasing it, and no other thread
/// stores that id. So the owner check needs no ordering, only an atomic
/// (untorn) read, and <c>level</c> is touched by the owner alone.
/// The inline versions in ft_weave.h use the same fields and the same
/// orderings; every change here must be made there too.
/// </summary>
internal static unsafe class RecursiveMutex
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsOwnedBy(weave_recursive_mutex_t* m, ulong thread)
    {
        // Relaxed would do (see the class comment); Volatile only keeps the
        // 8-byte read untorn and un-hoisted.
        return Volatile.Read(ref m->thread) == thread;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SetOwner(weave_recursive_mutex_t* m, ulong thread)
    {
        // Relaxed suffices: the mutex's acquire (after) and release (before a
        // clear) order it with the protected data; only the owner reads its id.
        Volatile.Write(ref m->thread, thread);
    }

    /// <summary>The inline weave_recursive_mutex_lock, for its exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Lock(weave_recursive_mutex_t* m)
    {
        ulong me = ThreadIds.Current();
        if (IsOwnedBy(m, me))
        {
            m->level++;
            return;
        }
        // Acquire: pairs with the release in Unlock (same CAS as the header's).
        if (Interlocked.CompareExchange(ref m->mutex._bytes[0], Mutex.Locked, 0) == 0)
        {
            SetOwner(m, me);
            return;
        }
        LockSlow(m);
    }

    /// <summary>_PyRecursiveMutex_Lock after the inline fast path failed.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(weave_recursive_mutex_t* m)
    {
        ulong me = ThreadIds.Current();
        // Callers through the FFI may come here directly: re-check re-entry.
        if (IsOwnedBy(m, me))
        {
            m->level++;
            return;
        }
        Mutex.Lock((byte*)&m->mutex); // parks with detach, as PyMutex_Lock
        SetOwner(m, me);
    }

    /// <summary>_PyRecursiveMutex_LockTimed; flags are validated by the caller.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int LockTimed(weave_recursive_mutex_t* m, long timeoutNs, int flags)
    {
        ulong me = ThreadIds.Current();
        if (IsOwnedBy(m, me))
        {
            m->level++;
            return LockStatus.Acquired;
        }
        int status = Mutex.LockTimed((byte*)&m->mutex, timeoutNs, flags);
        if (status == LockStatus.Acquired)
        {
            SetOwner(m, me);
        }
        return status;
    }

    /// <summary>The inline weave_recursive_mutex_unlock, for its exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Unlock(weave_recursive_mutex_t* m) => UnlockSlow(m);

    /// <summary>
    /// _PyRecursiveMutex_TryUnlock: 0, or WEAVE_E_NOT_OWNER (nothing changed)
    /// when the caller does not own <paramref name="m"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int UnlockSlow(weave_recursive_mutex_t* m)
    {
        if (!IsOwnedBy(m, ThreadIds.Current()))
        {
            return ErrorCodes.WEAVE_E_NOT_OWNER;
        }
        if (m->level > 0)
        {
            m->level--;
            return 0;
        }
        // Clear the owner while we still hold the mutex: the next owner
        // stores its id only after acquiring it, so ours can never be
        // written over a newer one.
        SetOwner(m, 0);
        return Mutex.Unlock((byte*)&m->mutex);
    }

    internal static bool IsLockedByCurrentThread(weave_recursive_mutex_t* m) => IsOwnedBy(m, ThreadIds.Current());
}
