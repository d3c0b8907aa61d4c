using System.Runtime.CompilerServices;
using System.Threading;

namespace FtWeave.Parking;

/// <summary>
/// A one-word lock that queues its own waiters and never touches the parking
/// lot: it is the lot's bucket lock, and weave_raw_mutex_t. The same design as
/// CPython's _PyRawMutex and WebKit's WordLock:
///
///   word                     | meaning
///   -------------------------+-----------------------------------------------
///   0                        | unlocked
///   Locked                   | locked, no waiters
///   (waiter*) | Locked       | locked, waiters on a stack of Waiter entries
///   (waiter*)                | unlocked, waiters still queued (one was just
///                            | woken and will retry; others keep sleeping)
///
/// Waiters live on their own stacks. Only the lock holder pops, so the pop's
/// read of <c>waiter->Next</c> cannot race with another pop (no ABA); pushes
/// race only with each other and the holder's pop, and the CAS on the word
/// orders them. Woken waiters retry rather than receive the lock: no hand-off,
/// which suits the short critical sections of bucket locks. A pushed waiter
/// leaves LockSlow's sleep only once popped (see the comment there): signals
/// neither interrupt nor shorten a word-lock wait.
/// </summary>
internal static unsafe class WordLock
{
    internal const nuint Locked = 1;
    private const int SpinLimit = 40;

    private struct Waiter
    {
        public Waiter* Next;
        public ThreadParker Parker;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryLock(nuint* word)
    {
        nuint v = Volatile.Read(ref *word);
        return (v & Locked) == 0 && Interlocked.CompareExchange(ref *word, v | Locked, v) == v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Lock(nuint* word)
    {
        // Acquire (Interlocked is a full barrier): pairs with the release in Unlock.
        if (Interlocked.CompareExchange(ref *word, Locked, 0) != 0)
        {
            LockSlow(word);
        }
    }

    /// <summary>Returns false when the word was not locked (the caller reports WEAVE_E_NOT_OWNER).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Unlock(nuint* word)
    {
        return Interlocked.CompareExchange(ref *word, 0, Locked) == Locked || UnlockSlow(word);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(nuint* word)
    {
        Unsafe.SkipInit(out Waiter waiter); // fields are set before each push
        int spins = 0;
        nuint v = Volatile.Read(ref *word);
        while (true)
        {
            if ((v & Locked) == 0)
            {
                // Unlocked: take it, even if others are queued (they retry later).
                nuint seen = Interlocked.CompareExchange(ref *word, v | Locked, v);
                if (seen == v)
                {
                    return;
                }
                v = seen;
                continue;
            }
            if ((v & ~Locked) == 0 && spins < SpinLimit)
            {
                // Nobody queued yet: the holder is likely to leave within a few
                // hundred cycles (bucket sections are short), cheaper than a futex.
                SpinWaits.Pause(1 << (spins < 6 ? spins : 6));
                spins++;
                v = Volatile.Read(ref *word);
                continue;
            }
            // Locked: push ourselves. Prepare before the CAS publishes the entry.
            waiter.Next = (Waiter*)(v & ~Locked);
            waiter.Parker.Prepare();
            nuint pushed = (nuint)(&waiter) | Locked;
            nuint before = Interlocked.CompareExchange(ref *word, pushed, v);
            if (before != v)
            {
                v = before;
                continue;
            }
            // The holder pops us on unlock; we then compete for the lock again.
            //
            // Until that pop our entry is linked into the word (or into the
            // stack below it), and only the popping unlocker may unlink it:
            // this frame must not be left, nor the entry pushed again, before
            // its store of Woken into our parker. So we sleep until exactly
            // that store, not merely until the futex returns. The futex also
            // returns on EINTR, whenever a signal handler installed without
            // SA_RESTART runs on this thread (CPython installs its handlers
            // that way): treating that as a wake re-pushed the still-linked
            // entry (a self-cycle: Next pointed to itself) or took the lock
            // with the entry still linked, so that a later unlock popped a
            // dead frame and wrote into whatever stack had replaced it. A word
            // lock has no interruptible wait (no timeout, no INTR status), so
            // an interrupted waiter keeps sleeping; the handler has already
            // run by the time the futex returns. Ordering: the unlocker's
            // popping CAS comes before its release store of Woken, and
            // ParkUntilUnparked returns only after an acquire load sees that
            // store, so once it returns our entry is out of the word.
            waiter.Parker.ParkUntilUnparked();
            spins = 0;
            v = Volatile.Read(ref *word);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static bool UnlockSlow(nuint* word)
    {
        nuint v = Volatile.Read(ref *word);
        while (true)
        {
            if ((v & Locked) == 0)
            {
                return false;
            }
            Waiter* waiter = (Waiter*)(v & ~Locked);
            // Pop the top waiter (if any) and release in one CAS. Release
            // semantics (full barrier) publish the critical section's writes.
            nuint next = waiter != null ? (nuint)waiter->Next : 0;
            nuint seen = Interlocked.CompareExchange(ref *word, next, v);
            if (seen == v)
            {
                if (waiter != null)
                {
                    ThreadParker.Unpark(&waiter->Parker);
                }
                return true;
            }
            v = seen;
        }
    }
}
