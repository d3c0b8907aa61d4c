using System;
using System.Runtime.CompilerServices;
using System.Threading;
using Mutex = FtWeave.Locks.Mutex;
using FtWeave.Abi;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Diagnostics;

/// <summary>
/// The checked lock operations: what the exports run instead of the plain
/// ones when <see cref="DebugSwitch.s_flags"/> is not 0. Each falls back to
/// the plain operation when the flags turn out to be 0 (first read of
/// FT_WEAVE_DEBUG) or the thread has no record.
///
/// <c>track</c> is false for the _slow entry points that the header's
/// unchecked inline fast paths call when contended: their releases are not
/// seen, so the lock is not recorded as held; but the acquisition still adds
/// lock-order edges from the locks the thread holds through checked paths,
/// and its wait is recorded.
/// </summary>
internal static unsafe class DebugLocks
{
    // ---- the hooks ----

    /// <summary>
    /// Before an acquisition that may block: lock-order edges from each lock
    /// the thread holds, and the wait record. Returns 0, or WEAVE_E_DEADLOCK
    /// when <paramref name="timed"/>, WEAVE_DEBUG_FAIL_ON_CYCLE is on and the
    /// acquisition would close a cycle (nothing recorded then).
    /// </summary>
    private static int BeforeAcquire(int flags, DebugThread* t, nint address, int kind, void* site, bool timed)
    {
        if ((flags & DebugFlags.LockOrder) != 0)
        {
            bool refuse = timed && (flags & DebugFlags.FailOnCycle) != 0;
            for (int i = t->HeldCount - 1; i >= 0; i--)
            {
                nint held = (nint)t->HeldLock[i];
                int heldKind = t->HeldKind[i];
                if (!LockKind.StillHeld(held, heldKind, t->ThreadId))
                {
                    // Released through an unchecked path: forget it.
                    DebugThreads.RemoveAt(t, i);
                    continue;
                }
                if (held == address)
                {
                    if (kind != LockKind.RwRead || heldKind == LockKind.RwWrite)
                    {
                        // A non-recursive lock taken again by its holder waits forever.
                        DebugMode.Report($"ft_weave debug: lock order: thread {t->ThreadId} acquires {LockKind.Name(kind)} {DebugMode.Address(address)} at {DebugMode.Site((long)site)}, which it already holds (acquired at {DebugMode.Site(t->HeldSite[i])}): deadlock{(refuse ? " [refused: WEAVE_E_DEADLOCK]" : "")}");
                        if (refuse)
                        {
                            return WEAVE_E_DEADLOCK;
                        }
                    }
                    continue;
                }
                if (LockOrderGraph.HasEdge(held, address))
                {
                    continue;
                }
                int result = LockOrderGraph.Add(held, heldKind, t->HeldSite[i], address, kind, (long)site, t->ThreadId, refuse);
                if (result != 0)
                {
                    return result;
                }
            }
            // The mutexes of the thread's active critical sections count as
            // held (not those of suspended ones: they are released).
            var sections = new SectionOrders { T = t, Address = address, Kind = kind, Site = site, Refuse = refuse };
            int refusedBySection = Sections.CriticalSections.ForEachActiveMutex(ref sections);
            if (refusedBySection != 0)
            {
                return refusedBySection;
            }
        }
        if ((flags & DebugFlags.LiveDeadlock) != 0)
        {
            t->WaitingKind = kind;
            t->WaitingSite = (nint)site;
            // Release: kind and site before the lock that makes them read.
            Volatile.Write(ref t->WaitingOn, address);
        }
        return 0;
    }

    /// <summary>
    /// The shape of every checked lock hook: look up the thread, record the
    /// orders and the wait, acquire through the lock's own code
    /// (<see cref="Acquire"/>), record the holder. A timed acquisition may be
    /// refused (WEAVE_DEBUG_FAIL_ON_CYCLE) with <paramref name="refusedMessage"/>;
    /// an untimed one never is, and returns LockStatus.Acquired.
    /// </summary>
    private static int CheckedAcquire(void* lockAddress, int kind, void* site, bool timed, long timeoutNs, int lockFlags,
                                      bool track, ReadOnlySpan<byte> refusedMessage)
    {
        DebugThread* t = Self(out int flags);
        if (t == null)
        {
            return Acquire(lockAddress, kind, timed, timeoutNs, lockFlags);
        }
        int refused = BeforeAcquire(flags, t, (nint)lockAddress, kind, site, timed);
        if (refused != 0)
        {
            return ThreadContexts.SetError(refused, refusedMessage);
        }
        int status = Acquire(lockAddress, kind, timed, timeoutNs, lockFlags);
        AfterAcquire(t, (nint)lockAddress, kind, site, status == LockStatus.Acquired, track);
        return status;
    }

    /// <summary>Acquires a lock of <paramref name="kind"/> (a recursive mutex
    /// the caller does not own yet); a LockStatus.</summary>
    private static int Acquire(void* lockAddress, int kind, bool timed, long timeoutNs, int lockFlags)
    {
        if (timed)
        {
            return kind switch
            {
                LockKind.Mutex => Mutex.LockTimed((byte*)lockAddress, timeoutNs, lockFlags),
                LockKind.Recursive => RecursiveMutex.LockTimed((weave_recursive_mutex_t*)lockAddress, timeoutNs, lockFlags),
                LockKind.RwWrite => RWMutex.LockTimed((nuint*)lockAddress, timeoutNs, lockFlags),
                _ => RWMutex.RLockTimed((nuint*)lockAddress, timeoutNs, lockFlags),
            };
        }
        if (kind == LockKind.Mutex)
        {
            Mutex.Lock((byte*)lockAddress);
        }
        else if (kind == LockKind.Recursive)
        {
            RecursiveMutex.LockSlow((weave_recursive_mutex_t*)lockAddress);
        }
        else if (kind == LockKind.RwWrite)
        {
            RWMutex.Lock((nuint*)lockAddress);
        }
        else
        {
            RWMutex.RLock((nuint*)lockAddress);
        }
        return LockStatus.Acquired;
    }

    private static void AfterAcquire(DebugThread* t, nint address, int kind, void* site, bool acquired, bool track)
    {
        Volatile.Write(ref t->WaitingOn, 0);
        if (acquired && track)
        {
            DebugThreads.Push(t, address, kind, site);
        }
    }

    /// <summary>
    /// Before a release: drops the thread's entry. Returns WEAVE_E_NOT_OWNER
    /// (reported, the release must not happen) when owner checks are on, the
    /// thread has no entry and another thread's record holds the lock.
    /// </summary>
    private static int BeforeRelease(int flags, DebugThread* t, nint address, int kind, void* site, bool check, string operation)
    {
        int index = DebugThreads.Find(t, address, kind);
        if (index >= 0)
        {
            DebugThreads.RemoveAt(t, index);
            return 0;
        }
        if (check && (flags & DebugFlags.Owner) != 0)
        {
            DebugThread* holder = DebugThreads.FindHolder(address, kind, t, out int at);
            if (holder != null)
            {
                long heldSite = holder->HeldSite[at];
                DebugMode.Report($"ft_weave debug: owner: thread {t->ThreadId} calls {operation} on {LockKind.Name(kind)} {DebugMode.Address(address)} at {DebugMode.Site((long)site)}, but thread {holder->ThreadId} holds it (acquired at {DebugMode.Site(heldSite)}): WEAVE_E_NOT_OWNER");
                return ThreadContexts.SetError(WEAVE_E_NOT_OWNER, "ft_weave debug mode: unlock of a lock that another thread holds\0"u8);
            }
        }
        return 0;
    }

    /// <summary>The unlock's result, reported (owner checks) and described for weave_last_error when WEAVE_E_NOT_OWNER.</summary>
    private static int NotOwnerReported(int flags, DebugThread* t, nint address, int kind, void* site, string operation, int result)
    {
        if (result != WEAVE_E_NOT_OWNER)
        {
            return result;
        }
        if (t != null && (flags & DebugFlags.Owner) != 0)
        {
            DebugMode.Report($"ft_weave debug: owner: thread {t->ThreadId} calls {operation} on {LockKind.Name(kind)} {DebugMode.Address(address)} at {DebugMode.Site((long)site)}, which it does not hold: WEAVE_E_NOT_OWNER");
        }
        return ThreadContexts.SetError(result, kind switch
        {
            LockKind.Mutex => "weave_mutex_unlock: the mutex is not locked\0"u8,
            LockKind.Recursive => "weave_recursive_mutex_unlock: the calling thread does not own the mutex\0"u8,
            LockKind.RwWrite => "weave_rwmutex_unlock: the rwmutex is not write-locked\0"u8,
            _ => "weave_rwmutex_runlock: the rwmutex is not read-locked\0"u8,
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DebugThread* Self(out int flags)
    {
        flags = DebugMode.Flags;
        return flags != 0 ? DebugThreads.Current() : null;
    }

    /// <summary>Adds the order "section's mutex, then Address" for each active section.</summary>
    private struct SectionOrders : Sections.IActiveSectionVisitor
    {
        internal DebugThread* T;
        internal nint Address;
        internal int Kind;
        internal void* Site;
        internal bool Refuse;

        public int Visit(byte* mutex)
        {
            nint held = (nint)mutex;
            // The section's own mutex again (a nested section on it is a
            // re-entry; a blocking lock of it suspends the section first).
            if (held == Address || LockOrderGraph.HasEdge(held, Address))
            {
                return 0;
            }
            return LockOrderGraph.Add(held, LockKind.Section, 0, Address, Kind, (long)Site, T->ThreadId, Refuse);
        }
    }

    // ---- critical sections ----

    /// <summary>
    /// Before a critical section's begin (every begin comes to C# while the
    /// checks are on): the orders from the locks and active sections the
    /// thread holds to the section's mutexes, and the live-deadlock check's
    /// "waiting on". The section's mutexes are not pushed on the held list:
    /// while the section is active the walk of the thread's sections finds
    /// them, and a suspension releases them without telling anyone.
    /// </summary>
    internal static void SectionBegin(byte* m1, byte* m2)
    {
        DebugThread* t = Self(out int flags);
        if (t == null)
        {
            return;
        }
        _ = BeforeAcquire(flags, t, (nint)m1, LockKind.Section, null, timed: false);
        if (m2 != null && m2 != m1)
        {
            _ = BeforeAcquire(flags, t, (nint)m2, LockKind.Section, null, timed: false);
        }
    }

    /// <summary>After the begin: no longer waiting.</summary>
    internal static void SectionBegun()
    {
        DebugThread* t = Self(out _);
        if (t != null)
        {
            Volatile.Write(ref t->WaitingOn, 0);
        }
    }

    // ---- mutex ----

    internal static void MutexLock(byte* m, void* site, bool track)
    {
        _ = CheckedAcquire(m, LockKind.Mutex, site, timed: false, -1, 0, track, default);
    }

    internal static int MutexLockTimed(byte* m, long timeoutNs, int lockFlags, void* site)
    {
        return CheckedAcquire(m, LockKind.Mutex, site, timed: true, timeoutNs, lockFlags, track: true,
            "weave_mutex_lock_timed: the acquisition would close a lock-order cycle (WEAVE_DEBUG_FAIL_ON_CYCLE)\0"u8);
    }

    internal static int MutexTryLock(byte* m, void* site)
    {
        bool acquired = Mutex.TryLock(m);
        DebugThread* t = Self(out _);
        if (acquired && t != null)
        {
            // A try never waits, so it adds no lock-order edge (as lockdep).
            DebugThreads.Push(t, (nint)m, LockKind.Mutex, site);
        }
        return acquired ? 1 : 0;
    }

    /// <summary>Unlock: <paramref name="check"/> is false for the slow path of an unchecked inline unlock.</summary>
    internal static int MutexUnlock(byte* m, void* site, bool check)
    {
        DebugThread* t = Self(out int flags);
        if (t == null)
        {
            return NotOwnerReported(0, null, (nint)m, LockKind.Mutex, site, "", check ? Mutex.Unlock(m) : Mutex.UnlockSlow(m));
        }
        int refused = BeforeRelease(flags, t, (nint)m, LockKind.Mutex, site, check, "weave_mutex_unlock");
        if (refused != 0)
        {
            return refused;
        }
        int result = check ? Mutex.Unlock(m) : Mutex.UnlockSlow(m);
        return NotOwnerReported(check ? flags : 0, t, (nint)m, LockKind.Mutex, site, "weave_mutex_unlock", result);
    }

    /// <summary>weave_mutex_assert_held.</summary>
    internal static int MutexAssertHeld(byte* m)
    {
        bool locked = Volatile.Read(ref *m) == Mutex.Locked;
        DebugThread* t = Self(out int flags);
        if (t == null)
        {
            return locked ? 0 : ThreadContexts.SetError(WEAVE_E_NOT_OWNER, "weave_mutex_assert_held: the mutex is not locked\0"u8);
        }
        if (locked && DebugThreads.Find(t, (nint)m, LockKind.Mutex) >= 0)
        {
            return 0;
        }
        DebugThread* holder = locked ? DebugThreads.FindHolder((nint)m, LockKind.Mutex, t, out _) : null;
        if (locked && holder == null)
        {
            // Locked through an unchecked path: no owner is known.
            return 0;
        }
        string who = holder != null ? $"thread {holder->ThreadId} holds it" : "it is not locked";
        DebugMode.Report($"ft_weave debug: owner: weave_mutex_assert_held failed on thread {t->ThreadId}: mutex {DebugMode.Address((nint)m)}: {who}");
        return ThreadContexts.SetError(WEAVE_E_NOT_OWNER, holder != null
            ? "weave_mutex_assert_held: another thread holds the mutex\0"u8
            : "weave_mutex_assert_held: the mutex is not locked\0"u8);
    }

    // ---- recursive mutex ----

    internal static void RecursiveLock(weave_recursive_mutex_t* m, void* site, bool track)
    {
        if (RecursiveMutex.IsLockedByCurrentThread(m))
        {
            // Re-entry by the owner: neither a new order nor a new holder.
            RecursiveMutex.Lock(m);
            return;
        }
        _ = CheckedAcquire(m, LockKind.Recursive, site, timed: false, -1, 0, track, default);
    }

    internal static int RecursiveLockTimed(weave_recursive_mutex_t* m, long timeoutNs, int lockFlags, void* site)
    {
        if (RecursiveMutex.IsLockedByCurrentThread(m))
        {
            return RecursiveMutex.LockTimed(m, timeoutNs, lockFlags);
        }
        return CheckedAcquire(m, LockKind.Recursive, site, timed: true, timeoutNs, lockFlags, track: true,
            "weave_recursive_mutex_lock_timed: the acquisition would close a lock-order cycle (WEAVE_DEBUG_FAIL_ON_CYCLE)\0"u8);
    }

    internal static int RecursiveUnlock(weave_recursive_mutex_t* m, void* site)
    {
        DebugThread* t = Self(out int flags);
        if (t == null || (RecursiveMutex.IsLockedByCurrentThread(m) && m->level > 0))
        {
            return NotOwnerReported(0, null, (nint)m, LockKind.Recursive, site, "", RecursiveMutex.Unlock(m));
        }
        int refused = BeforeRelease(flags, t, (nint)m, LockKind.Recursive, site, check: true, "weave_recursive_mutex_unlock");
        if (refused != 0)
        {
            return refused;
        }
        return NotOwnerReported(flags, t, (nint)m, LockKind.Recursive, site, "weave_recursive_mutex_unlock", RecursiveMutex.Unlock(m));
    }

    // ---- rw mutex ----

    internal static void RwLock(nuint* rw, bool write, void* site, bool track)
    {
        _ = CheckedAcquire(rw, write ? LockKind.RwWrite : LockKind.RwRead, site, timed: false, -1, 0, track, default);
    }

    internal static int RwLockTimed(nuint* rw, bool write, long timeoutNs, int lockFlags, void* site)
    {
        return CheckedAcquire(rw, write ? LockKind.RwWrite : LockKind.RwRead, site, timed: true, timeoutNs, lockFlags, track: true,
            "weave_rwmutex_lock_timed: the acquisition would close a lock-order cycle (WEAVE_DEBUG_FAIL_ON_CYCLE)\0"u8);
    }

    internal static int RwUnlock(nuint* rw, bool write, void* site, bool check)
    {
        DebugThread* t = Self(out int flags);
        int kind = write ? LockKind.RwWrite : LockKind.RwRead;
        string operation = write ? "weave_rwmutex_unlock" : "weave_rwmutex_runlock";
        if (t != null)
        {
            int refused = BeforeRelease(flags, t, (nint)rw, kind, site, check, operation);
            if (refused != 0)
            {
                return refused;
            }
        }
        int result = write ? RWMutex.Unlock(rw) : RWMutex.RUnlock(rw);
        return NotOwnerReported(check ? flags : 0, t, (nint)rw, kind, site, operation, result);
    }
}
