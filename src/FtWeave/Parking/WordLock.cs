using System.Runtime.CompilerServices;
using System.Threading;

namespace FtWeave.Parking;

/// <summary>
/// A one-word lock that queues its own waiters and never touches the parking
/// lot: it is the lot's bucket lock, and weave_raw_mutex_t. WebKit's
/// WTF::WordLock design (Rust parking_lot's word_lock.rs is the same idea):
///
///   word                          | meaning
///   ------------------------------+------------------------------------------
///   0                             | unlocked
///   Locked                        | locked, no waiters
///   (head*) | Locked              | locked, waiters on a FIFO queue
///   (head*) | Locked | QueueLocked| as above, a thread is editing the queue
///   (head*)                       | unlocked, waiters still queued (the old
///                                 | head was just woken and will retry)
///
/// Waiters live on their own stacks and form a singly linked FIFO: the word
/// points at the oldest (the head), whose <c>Tail</c> points at the newest.
/// A thread appends itself at the tail and the unlocker pops the head, both
/// under the QueueLocked bit, which is taken only while Locked is set and
/// only by a CAS: so while a thread holds it, the word cannot change under
/// it (the holder's unlock spins on the bit instead of releasing, nobody
/// else can take Locked), and it may publish the new queue with a plain
/// store. The queue-lock sections are a handful of instructions and never
/// block; a thread that finds the bit set yields and retries.
///
/// FIFO matters under a hot bucket: the old design pushed and popped one
/// stack (LIFO), so the thread that had waited longest was woken last and a
/// steady stream of newcomers could starve it. The woken waiter still has to
/// compete for the lock (barging, no hand-off, as in WebKit and parking_lot:
/// hand-off would make every bucket section pay a context switch), but it is
/// woken in arrival order, and a waiter that loses re-queues at the tail.
/// A queued waiter leaves LockSlow's sleep only once popped (see the comment
/// there): signals neither interrupt nor shorten a word-lock wait.
/// </summary>
internal static unsafe class WordLock
{
    internal const nuint Locked = 1;
    internal const nuint QueueLocked = 2;
    private const nuint Bits = Locked | QueueLocked;
    private const int SpinLimit = 40;

    private struct Waiter
    {
        public Waiter* Next;
        /// <summary>Valid in the head only: the newest waiter.</summary>
        public Waiter* Tail;
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
        Unsafe.SkipInit(out Waiter waiter); // fields are set before each enqueue
        int spins = 0;
        while (true)
        {
            nuint v = Volatile.Read(ref *word);
            if ((v & Locked) == 0)
            {
                // Unlocked: take it, even if others are queued (they retry
                // when woken; no hand-off).
                if (Interlocked.CompareExchange(ref *word, v | Locked, v) == v)
                {
                    return;
                }
                continue;
            }
            if ((v & ~Bits) == 0 && spins < SpinLimit)
            {
                // Nobody queued yet: the holder is likely to leave within a few
                // hundred cycles (bucket sections are short), cheaper than a futex.
                SpinWaits.Pause(1 << (spins < 6 ? spins : 6));
                spins++;
                continue;
            }
            if ((v & QueueLocked) != 0)
            {
                // Another thread is editing the queue for a few instructions;
                // if it was preempted there, give it the core.
                SpinWaits.Yield();
                continue;
            }
            // Prepare before the entry becomes reachable.
            waiter.Next = null;
            waiter.Tail = &waiter;
            waiter.Parker.Prepare();
            // Take the queue lock, only while the lock is held: from then on
            // the word is ours until we store it (see the class comment).
            if (Interlocked.CompareExchange(ref *word, v | QueueLocked, v) != v)
            {
                continue;
            }
            Waiter* head = (Waiter*)(v & ~Bits);
            if (head != null)
            {
                head->Tail->Next = &waiter;
                head->Tail = &waiter;
                // Release: publishes the links to the next queue-lock holder
                // (which acquires the word by CAS).
                Volatile.Write(ref *word, v);
            }
            else
            {
                Volatile.Write(ref *word, (nuint)(&waiter) | Locked);
            }
            // The unlocker pops us on unlock; we then compete for the lock again.
            //
            // Until that pop our entry is linked into the queue, and only the
            // popping unlocker may unlink it: this frame must not be left, nor
            // the entry queued again, before its store of Woken into our
            // parker. So we sleep until exactly that store, not merely until
            // the futex returns. The futex also returns on EINTR, whenever a
            // signal handler installed without SA_RESTART runs on this thread
            // (CPython installs its handlers that way): treating that as a
            // wake would queue the still-linked entry again (a cycle) or take
            // the lock with the entry still linked, so that a later unlock
            // popped a dead frame and wrote into whatever stack had replaced
            // it. A word lock has no interruptible wait (no timeout, no INTR
            // status), so an interrupted waiter keeps sleeping; the handler
            // has already run by the time the futex returns. Ordering: the
            // unlocker's store that unlinks us comes before its release store
            // of Woken, and ParkUntilUnparked returns only after an acquire
            // load sees that store, so once it returns our entry is out of
            // the queue. No poll: a lock's waiter has spun already, and when
            // threads outnumber CPUs a polling waiter takes the CPU of a
            // thread that has work (docs/parking_lot.md).
            waiter.Parker.ParkUntilUnparked(poll: false);
            spins = 0;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static bool UnlockSlow(nuint* word)
    {
        nuint v;
        while (true)
        {
            v = Volatile.Read(ref *word);
            if ((v & Locked) == 0)
            {
                return false;
            }
            if (v == Locked)
            {
                // No waiters. Release (full barrier) publishes the critical
                // section's writes.
                if (Interlocked.CompareExchange(ref *word, 0, Locked) == Locked)
                {
                    return true;
                }
                continue;
            }
            if ((v & QueueLocked) != 0)
            {
                // A waiter is appending itself; it needs the lock held while
                // it does (so that the word is stable), which is why we wait
                // for it rather than release. A few instructions, unless it
                // was preempted: then give it the core.
                SpinWaits.Yield();
                continue;
            }
            if (Interlocked.CompareExchange(ref *word, v | QueueLocked, v) == v)
            {
                break;
            }
        }
        // We hold the lock and the queue lock, and the queue is not empty.
        Waiter* head = (Waiter*)(v & ~Bits);
        Waiter* next = head->Next;
        if (next != null)
        {
            next->Tail = head->Tail;
        }
        // Pop the head and release both the lock and the queue lock in one
        // release store: publishes the critical section's writes and the new
        // queue. From here a barging thread may take the lock.
        Volatile.Write(ref *word, (nuint)next);
        ThreadParker.Unpark(&head->Parker);
        return true;
    }

    /// <summary>
    /// For tests: the number of queued waiters. The caller must hold the
    /// lock (so the word keeps Locked and the queue can only grow while we
    /// hold the queue lock). Takes the queue lock to walk the queue.
    /// </summary>
    internal static int QueuedCount(nuint* word)
    {
        nuint v;
        while (true)
        {
            v = Volatile.Read(ref *word);
            if ((v & QueueLocked) == 0 && Interlocked.CompareExchange(ref *word, v | QueueLocked, v) == v)
            {
                break;
            }
            SpinWaits.Yield();
        }
        int n = 0;
        for (Waiter* w = (Waiter*)(v & ~Bits); w != null; w = w->Next)
        {
            n++;
        }
        Volatile.Write(ref *word, v);
        return n;
    }
}
