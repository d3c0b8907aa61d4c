using System.Numerics;
using System.Runtime.CompilerServices;
using System.Threading;
using System;
using FtWeave.Diagnostics;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Python;
using FtWeave.Threads;

namespace FtWeave.Locks;

/// <summary>
/// weave_rwmutex_t: a writer-preferring reader-writer lock in one word,
/// CPython's _PyRWMutex (Python/lock.c).
///
///   bits         | meaning
///   -------------+---------------------------------------------------------
///   bit 0        | WriteLocked
///   bit 1        | HasParked: a writer (or readers behind one) waits; new
///                | readers park instead of joining the current readers
///   bits 2..     | number of readers holding the lock (ReaderShift)
///
/// For example 1 = one writer; 8 = two readers; 10 = two readers and a
/// waiting writer; 3 = a writer with readers parked behind it; 2 = unlocked,
/// parked threads just woken (a writer is about to take it). A reader never
/// joins while HasParked is set, so a waiting writer gets in once the
/// current readers leave. A release that finds HasParked wakes one writer
/// or all readers (<see cref="WakeFilter"/>); woken threads re-run their
/// acquire loops (and re-set HasParked if they must wait again). Not fair
/// among writers, not reentrant.
///
/// Reader bias (BRAVO, Dice and Kogan, USENIX ATC 2019; docs/locks.md):
/// while the top bit (ReaderBias) is set, readers announce themselves in
/// their slot of the visible-readers table of src/native/rwmutex_bias.c
/// (the header's inline rlock/runlock do the same) instead of counting
/// themselves in the word, so read-mostly locks do not bounce the word's
/// cache line between readers. A writer sets WriteLocked with the bias
/// left on, then waits until no slot names the lock
/// (<see cref="WaitForBiasedReaders"/>): a biased reader re-reads the word
/// after its slot CAS and backs out when it sees WriteLocked. The writer's
/// unlock keeps the bias, so readers go back to their slots at once. The
/// bias is turned off only by a writer that had to wait long for a biased
/// reader (and then stays off for a multiple of that wait), and turned on by
/// a reader whose CAS on the word lost to another reader
/// (<see cref="MaybeEnableBias"/>): a lock whose readers never contend keeps
/// the plain one-word behaviour.
/// Invariant: whenever WriteLocked is clear, and after a writer's wait
/// while it is set, no slot holds a committed reader of the lock unless
/// ReaderBias is set (the writer that cleared the bit waited for them
/// before it released WriteLocked); while WriteLocked is set and its wait is
/// over, no slot holds one at all.
/// </summary>
internal static unsafe class RWMutex
{
    internal const nuint WriteLocked = 1;
    internal const nuint HasParked = 2;
    internal const int ReaderShift = 2;
    internal const nuint OneReader = (nuint)1 << ReaderShift;

    /// <summary>WEAVE_RWMUTEX_READER_BIAS: the word's top bit.</summary>
    internal static nuint ReaderBias
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (nuint)1 << (IntPtr.Size * 8 - 1);
    }

    /// <summary>Readers counted in the word (not those in the table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint ReaderCount(nuint bits) => (bits & ~ReaderBias) >> ReaderShift;

    /// <summary>The inline weave_rwmutex_rlock of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RLock(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        if ((bits & ReaderBias) != 0)
        {
            if ((bits & (HasParked | WriteLocked)) == 0 && Native.RWMutexTryRLockBiased(rw) != 0)
            {
                return;
            }
        }
        // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
        else if ((bits & (WriteLocked | HasParked)) == 0 && Interlocked.CompareExchange(ref *rw, bits + OneReader, bits) == bits)
        {
            return;
        }
        RLockSlow(rw);
    }

    /// <summary>The inline weave_rwmutex_lock of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Lock(nuint* rw)
    {
        // Acquire (full barrier): pairs with the release in Unlock/RUnlock.
        if (Interlocked.CompareExchange(ref *rw, WriteLocked, 0) != 0)
        {
            LockSlow(rw);
        }
    }

    /// <summary>
    /// A parked thread's park argument (on its own stack: it outlives the
    /// park, and the waker touches it only under the bucket lock while the
    /// thread is still queued).
    /// </summary>
    private struct Waiter
    {
        /// <summary>1 for a writer, 0 for a reader.</summary>
        internal int IsWriter;

        /// <summary>
        /// Set by a writer's unlock for a reader it wakes: the reader may then
        /// join the readers although HasParked is set (writers still parked
        /// behind it). Written under the bucket lock while we are queued,
        /// read after Park returns: the parker's wake/sleep hand-over orders
        /// it.
        /// </summary>
        internal int Granted;

        /// <summary>
        /// Set by the waker for the first thread it wakes when threads stay
        /// parked: the waker cleared HasParked (so that readers are not held
        /// off while this thread wakes up), and this thread sets it again in
        /// its next CAS on the word (the acquire, or the announce before it
        /// parks again), so that the release after it wakes the rest.
        /// </summary>
        internal int MustSetParked;
    }

    /// <summary>
    /// How long an acquire may wait, and how: the timeout and WEAVE_LOCK_*
    /// flags of the timed exports, or (the plain rlock/lock) forever,
    /// detached as CPython's _PyRWMutex, retrying after signals.
    /// </summary>
    private readonly struct WaitLimits
    {
        /// <summary>-1: forever; 0: do not wait (try); else the timeout given.</summary>
        internal readonly long TimeoutNs;
        private readonly long _deadline;
        internal readonly int Flags;

        internal WaitLimits(long timeoutNs, int flags)
        {
            TimeoutNs = timeoutNs;
            _deadline = timeoutNs > 0 ? Futex.MonotonicNow() + timeoutNs : -1;
            Flags = flags;
        }

        internal static WaitLimits Forever => new(-1, LockFlags.Detach);

        internal bool Detach => (Flags & LockFlags.Detach) != 0;

        /// <summary>Nanoseconds left: -1 forever, 0 when the time is up.</summary>
        internal long Remaining()
        {
            if (TimeoutNs <= 0)
            {
                return TimeoutNs;
            }
            long left = _deadline - Futex.MonotonicNow();
            return left > 0 ? left : 0;
        }

        /// <summary>
        /// After a wait cut short by a signal: true when the acquire must give
        /// up (WEAVE_LOCK_FAIL_IF_INTERRUPTED, or a Python handler raised);
        /// the plain acquires retry. The caller must be attached (not
        /// between ThreadDetach.BeforeSleep and AfterSleep).
        /// </summary>
        internal bool GiveUpOnSignal()
        {
            return (Flags & LockFlags.FailIfInterrupted) != 0 ||
                   ((Flags & LockFlags.HandleSignals) != 0 && !CPythonRuntime.RunPendingCalls());
        }
    }

    /// <summary>
    /// Announces us (sets HasParked if needed) and parks until a release
    /// wakes us, the time is up or a signal comes. Returns -1 to retry with
    /// `bits` (updated: the value that beat our CAS, or a fresh read), or a
    /// final LockStatus when the acquire must give up.
    /// </summary>
    private static int ParkOnce(nuint* rw, ref nuint bits, Waiter* waiter, in WaitLimits limits, long left, ref bool announced)
    {
        if ((bits & HasParked) == 0)
        {
            nuint withParked = bits | HasParked;
            // Full barrier: the releasing thread's CAS reads this bit and
            // then wakes. On failure, retry with what we saw (a duty to set
            // HasParked, MustSetParked, is still ours then).
            nuint seen = Interlocked.CompareExchange(ref *rw, withParked, bits);
            if (seen != bits)
            {
                bits = seen;
                return -1;
            }
            bits = withParked;
        }
        // HasParked is set: a MustSetParked duty from an earlier wake is met.
        // The waker writes these fields only while we are queued.
        waiter->Granted = 0;
        waiter->MustSetParked = 0;
        announced = true;
        // Sleeps only while the word is still `bits` (compared under the
        // bucket lock): a release that changed it before we queued makes
        // this return Again, and a waker's WakeFilter updates the word under
        // that same lock.
        nuint expected = bits;
        // No poll (ParkSpin): SpinOrPark spun, and a polling waiter would take a CPU from a thread with work.
        int parked = ParkingLot.Park(rw, &expected, sizeof(nuint), left, waiter, limits.Detach, poll: false);
        bits = Volatile.Read(ref *rw);
        if (parked == ParkResult.Interrupted && limits.GiveUpOnSignal())
        {
            return GiveUp(rw, owesWake: true, LockStatus.Interrupted);
        }
        // Woken, Again, or Timeout (the caller looks at the word once more
        // and then finds no time left).
        return -1;
    }

    /// <summary>
    /// One step of an acquire that cannot take the lock now: a short look
    /// again while `spins` is below maxSpins (a write section, or the
    /// readers in front of a writer, usually end within a few hundred
    /// nanoseconds, a park costs a futex sleep and a wake-up of tens of
    /// microseconds on 2 cores), then a park, or the give-up when the time
    /// is up. Returns -1 to retry with `bits`, or a final LockStatus.
    /// </summary>
    private static int SpinOrPark(nuint* rw, ref nuint bits, ref int spins, int maxSpins, Waiter* waiter, in WaitLimits limits, ref bool announced)
    {
        if (spins < maxSpins)
        {
            // Backoff (1, 2, 4, then 8 units between looks, `spins` counting
            // units, so the spin lasts as long as before): every look pulls
            // the word's line away from the thread that holds the lock, and in
            // a write section that line is usually the data's as well, so
            // looking every pause slowed the very section we wait for
            // (docs/locks.md, "Waiting").
            // After k looks spins is 2^k - 1 (while below the cap), so this
            // is the doubling without a counter of looks.
            int pause = 1 << Math.Min(BitOperations.Log2((uint)spins + 1), SpinBackoffShift);
            SpinWaits.Pause(pause);
            spins += pause;
            bits = Volatile.Read(ref *rw);
            return -1;
        }
        long left = limits.Remaining();
        if (left == 0)
        {
            return GiveUp(rw, announced || waiter->MustSetParked != 0, LockStatus.Failure);
        }
        return ParkOnce(rw, ref bits, waiter, limits, left, ref announced);
    }

    /// <summary>
    /// An acquire that gives up (timeout, signal) after it announced itself,
    /// or while it owes the MustSetParked duty of a wake, cannot simply
    /// leave: it may have set HasParked for itself alone (and HasParked on a
    /// free lock makes new readers park with no release coming to wake
    /// them), or it was to set HasParked again for the threads still parked.
    /// So it clears HasParked and wakes every parked thread, as a release
    /// does; those still waiting re-announce themselves. Rare, so a plain
    /// wake-all rather than the release's policy.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int GiveUp(nuint* rw, bool owesWake, int status)
    {
        if (!owesWake)
        {
            return status;
        }
        nuint bits = Volatile.Read(ref *rw);
        while ((bits & HasParked) != 0)
        {
            // Full barrier: every parked thread is woken below, after the
            // bit is gone, and re-announces itself if it still has to wait,
            // so clearing it loses nobody.
            nuint seen = Interlocked.CompareExchange(ref *rw, bits & ~HasParked, bits);
            if (seen == bits)
            {
                break;
            }
            bits = seen;
        }
        ParkingLot.UnparkAll(rw);
        return status;
    }

    /// <summary>
    /// Who a release wakes: parking_lot's policy (one writer, or all
    /// readers) instead of waking every parked thread to race for the word
    /// again. Runs under the bucket lock, so that its update of the word and
    /// the parking threads' validation (which compares the word under the
    /// same lock) are one step: a thread that set HasParked and is about to
    /// queue either is seen here, or sees our new word and retries.
    ///
    /// A writer's unlock (we still hold WriteLocked): walking the queue in
    /// order, a writer at the head is woken alone; otherwise every parked
    /// reader is woken with a pass (Granted: it may join the current readers
    /// once even though HasParked is set, as the writers stay parked behind
    /// it). Finished then clears WriteLocked and keeps HasParked exactly
    /// when waiters stay parked, in one CAS loop (only flag bits can change
    /// under us: we hold the lock). The readers are not counted in the word
    /// on their behalf (parking_lot's hand-off): measured here, a read lock
    /// handed to a thread that is still waking up held every other thread
    /// for its whole wake-up (read95 at 8 and 16 threads fell to 2.2 and
    /// 0.3 M ops/s).
    ///
    /// The last counted reader leaving with HasParked (FromReader): the
    /// first parked writer is woken alone (the readers parked behind it;
    /// waking them would only park them again behind HasParked), and
    /// HasParked stays set until that writer has run. With no writer parked,
    /// a second pass (WakeAll) wakes everyone and clears HasParked.
    /// </summary>
    private struct WakeFilter : IUnparkFilterCallback
    {
        internal nuint* Rw;
        internal bool FromReader;
        internal bool WakeAll;
        internal int Readers;
        internal bool WriterWoken;
        internal Waiter* FirstWoken;

        public FilterOp Filter(void* parkArg)
        {
            Waiter* w = (Waiter*)parkArg;
            if (WakeAll)
            {
                return Woken(w);
            }
            if (WriterWoken)
            {
                return FilterOp.Stop;
            }
            if (w == null || w->IsWriter != 0)
            {
                // A writer (or a weave_park on the lock's address: woken as
                // one, it re-checks whatever it waits for).
                if (Readers > 0)
                {
                    return FilterOp.Skip;
                }
                WriterWoken = true;
                return Woken(w);
            }
            if (FromReader)
            {
                return FilterOp.Skip;
            }
            w->Granted = 1;
            Readers++;
            return Woken(w);
        }

        private FilterOp Woken(Waiter* w)
        {
            if (FirstWoken == null && w != null)
            {
                w->MustSetParked = 0;
                FirstWoken = w;
            }
            return FilterOp.Unpark;
        }

        public void Finished(int woken, bool hasMoreWaiters)
        {
            if (FromReader && !WriterWoken && !WakeAll)
            {
                return; // no writer parked: WakeParked's second pass
            }
            // Threads stay parked: HasParked must come back before the next
            // release. Either we keep it, or (the usual case) the first thread
            // we wake sets it again in its next CAS on the word, and meanwhile
            // readers are not held off while that thread wakes up (tens of
            // microseconds on 2 cores; keeping the bit measured a convoy).
            // Whoever releases before that CAS finds no HasParked and wakes
            // nobody, which is fine: the woken thread is awake, will CAS the
            // word (acquiring, or announcing itself before parking again), and
            // the release after that wakes the rest.
            bool keepParked = hasMoreWaiters && FirstWoken == null;
            if (FromReader && WriterWoken)
            {
                // The last reader woke the writer the readers parked behind:
                // HasParked stays set whatever else is parked, so that new
                // readers (spinning ones included) keep out until that writer
                // has had its turn (CPython's rule; the rwlock port test
                // checks it). The writer keeps the bit in its acquire CAS and
                // its unlock clears it.
                keepParked = true;
            }
            else if (hasMoreWaiters && FirstWoken != null)
            {
                FirstWoken->MustSetParked = 1; // read after its wake (parker hand-over)
            }
            nuint bits = Volatile.Read(ref *Rw);
            while (true)
            {
                nuint next;
                if (FromReader)
                {
                    next = keepParked ? bits | HasParked : bits & ~HasParked;
                }
                else
                {
                    // Release (full barrier): the writer's stores happen before
                    // the acquire of the threads it wakes and of every later
                    // reader or writer.
                    next = (bits & ReaderBias) | (keepParked ? HasParked : 0);
                }
                nuint seen = Interlocked.CompareExchange(ref *Rw, next, bits);
                if (seen == bits)
                {
                    return;
                }
                bits = seen;
            }
        }
    }

    /// <summary>
    /// Wakes the parked threads of rw as <see cref="WakeFilter"/> says. From a
    /// writer's unlock this also releases the write lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WakeParked(nuint* rw, bool fromReader)
    {
        if (ContentionProfile.On != 0)
        {
            // The release's stack, for a sampled waiter (before the lot is entered).
            ContentionProfile.OnRelease(rw);
        }
        var filter = new WakeFilter { Rw = rw, FromReader = fromReader };
        ParkingLot.UnparkFilter(rw, ref filter);
        if (fromReader && !filter.WriterWoken)
        {
            // No writer parked, perhaps readers: wake them all and clear
            // HasParked (nothing is left to prefer).
            var all = new WakeFilter { Rw = rw, FromReader = true, WakeAll = true };
            ParkingLot.UnparkFilter(rw, ref all);
        }
    }

    /// <summary>
    /// How many times a reader that finds a writer in (or waiting) re-reads
    /// the word, with a short pause between (Thread.SpinWait(1) doubling to
    /// SpinWait(8), normalized by the runtime to a few tens of nanoseconds
    /// per unit), before it parks. A write
    /// critical section is usually short: on 2 cores a park costs a futex
    /// sleep and a wake-up of tens of microseconds, this spin at most a few
    /// microseconds (docs/locks.md, "Reader bias (BRAVO)", has the figures).
    /// </summary>
    private const int ReaderSpins = 100;

    /// <summary>The same for a writer that finds the lock held.</summary>
    private const int WriterSpins = 100;

    /// <summary>
    /// The pause between two looks doubles up to 2^SpinBackoffShift
    /// SpinWait units (ReaderSpins and WriterSpins count units, not looks).
    /// Measured (read95, 2-16 threads, alternated in one process): 3 gained
    /// 10-25% over looking after every unit; larger shifts gained more only
    /// by parking one thread while another ran alone (per-thread counts
    /// 0.25-0.5 of each other).
    /// </summary>
    private const int SpinBackoffShift = 3;

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void RLockSlow(nuint* rw) => RLockProfiled(rw, WaitLimits.Forever);

    /// <summary>
    /// weave_rwmutex_rlock_timed: the read acquire with a timeout and the
    /// WEAVE_LOCK_* flags of weave_mutex_lock_timed (validated by the caller).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int RLockTimed(nuint* rw, long timeoutNs, int flags) => RLockProfiled(rw, new WaitLimits(timeoutNs, flags));

    /// <summary>RLockWait, as a sampled wait when the contention profile is on.</summary>
    private static int RLockProfiled(nuint* rw, in WaitLimits limits)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            int status = RLockWait(rw, limits);
            ContentionProfile.EndWait(rw, status == LockStatus.Acquired);
            return status;
        }
        return RLockWait(rw, limits);
    }

    private static int RLockWait(nuint* rw, in WaitLimits limits)
    {
        nuint bits = Volatile.Read(ref *rw);
        // A try (timeout 0) looks once and does not spin.
        int spins = limits.TimeoutNs == 0 ? ReaderSpins : 0;
        Waiter waiter = default;
        bool announced = false;
        while (true)
        {
            if ((bits & WriteLocked) == 0 && ((bits & HasParked) == 0 || waiter.Granted != 0))
            {
                nuint parked = waiter.MustSetParked != 0 ? HasParked : 0;
                // Unlocked or read-locked, nobody waiting (or a writer's
                // unlock woke us to go in ahead of the writers still
                // parked). With the bias on, take our slot (the writer that
                // held the lock when the fast path looked is gone); if it is
                // taken (a colliding thread or lock), count ourselves in the
                // word instead. A MustSetParked duty needs the word's CAS.
                if ((bits & (ReaderBias | HasParked)) == ReaderBias && parked == 0 && Native.RWMutexTryRLockBiased(rw) != 0)
                {
                    return LockStatus.Acquired;
                }
                // Acquire (full barrier): pairs with the release of the last
                // writer's Unlock.
                nuint seen = Interlocked.CompareExchange(ref *rw, (bits + OneReader) | parked, bits);
                if (seen == bits)
                {
                    return LockStatus.Acquired;
                }
                if (ReaderCount(seen) != ReaderCount(bits) || ReaderCount(bits) != 0)
                {
                    // Another reader moved the count under us, or our CAS
                    // failed while other readers hold the lock: readers
                    // contend on the word, which is what the bias is for.
                    MaybeEnableBias(rw);
                }
                bits = Volatile.Read(ref *rw);
                continue;
            }
            // A writer holds the lock, or waits for it (then we must not
            // join the current readers: writers are preferred).
            int status = SpinOrPark(rw, ref bits, ref spins, ReaderSpins, &waiter, limits, ref announced);
            if (status >= 0)
            {
                return status;
            }
        }
    }

    /// <summary>
    /// A reader's CAS on the word lost to another reader: turns the bias on
    /// when it is off, no writer holds it, and the inhibit time of the
    /// last revocation has passed. One attempt: a failed CAS means the word
    /// moved, and the next contended reader will try again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MaybeEnableBias(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        // HasParked does not matter: biased readers back out while it is
        // set, so the bias only takes effect once the waiters have run. (On
        // read95 requiring it clear kept the bias off for whole runs: with a
        // write every 20 operations the bit is set much of the time.)
        if ((bits & (ReaderBias | WriteLocked)) != 0 || Native.RWMutexBiasAllowed(rw) == 0)
        {
            return;
        }
        // Full barrier. The CAS sets the bit only on a word without
        // WriteLocked: no writer holds the lock, so no slot holds a stale
        // reader (the class invariant), and the next writer sees the bit in
        // its CAS and waits for the slots. Biased readers that load this value
        // synchronize with the last writer's release through the word's
        // release sequence (every change of the word is a read-modify-write).
        Interlocked.CompareExchange(ref *rw, bits | ReaderBias, bits);
    }

    /// <summary>
    /// weave_rwmutex_runlock (and its slow path): 0, or WEAVE_E_NOT_OWNER when
    /// no reader holds the lock (the word is left as it was).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int RUnlock(nuint* rw)
    {
        // A biased read lock of the caller first: its slot names rw and holds
        // its thread id (a reader of another thread in a colliding slot does
        // not count). Checked whether or not the bias is still on: a revoking
        // writer may be waiting for exactly this slot. But while a biased read
        // lock is held the word keeps ReaderBias or WriteLocked (only a writer
        // holding WriteLocked clears the bias, and it keeps WriteLocked until
        // every slot is free), and this load follows the caller's own rlock
        // in the word's modification order (read-read coherence): with
        // neither bit the caller's lock is counted, and the slot lookup (a
        // thread-id read and a table load) is skipped.
        nuint bits = Volatile.Read(ref *rw);
        if ((bits & (ReaderBias | WriteLocked)) != 0)
        {
            if (Native.RWMutexTryRUnlockBiased(rw) != 0)
            {
                return 0;
            }
            bits = Volatile.Read(ref *rw);
        }
        while (true)
        {
            // A CAS loop rather than CPython's fetch-sub: a misplaced runlock
            // must not wrap the reader count into the flag bits.
            if (ReaderCount(bits) == 0)
            {
                return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
            }
            nuint next = bits - OneReader;
            // Release (full barrier): the reader's loads happen before the
            // writer's acquire that sees the count drop.
            nuint seen = Interlocked.CompareExchange(ref *rw, next, bits);
            if (seen != bits)
            {
                if (ReaderCount(seen) != ReaderCount(bits))
                {
                    MaybeEnableBias(rw); // readers contend on the word
                }
                bits = Volatile.Read(ref *rw);
                continue;
            }
            if (ReaderCount(next) == 0 && (next & HasParked) != 0)
            {
                // Last reader out in front of a parked writer: wake it
                // (HasParked stays set while others stay parked, so that new
                // readers keep out until the writer has had its turn).
                WakeParked(rw, fromReader: true);
            }
            return 0;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void LockSlow(nuint* rw) => LockProfiled(rw, WaitLimits.Forever);

    /// <summary>weave_rwmutex_lock_timed: the write acquire with a timeout and flags.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int LockTimed(nuint* rw, long timeoutNs, int flags) => LockProfiled(rw, new WaitLimits(timeoutNs, flags));

    /// <summary>LockWait, as a sampled wait when the contention profile is on.</summary>
    private static int LockProfiled(nuint* rw, in WaitLimits limits)
    {
        if (ContentionProfile.On != 0 && ContentionProfile.BeginWait(rw))
        {
            int status = LockWait(rw, limits);
            ContentionProfile.EndWait(rw, status == LockStatus.Acquired);
            return status;
        }
        return LockWait(rw, limits);
    }

    private static int LockWait(nuint* rw, in WaitLimits limits)
    {
        nuint bits = Volatile.Read(ref *rw);
        int spins = limits.TimeoutNs == 0 ? WriterSpins : 0;
        Waiter waiter = default;
        waiter.IsWriter = 1;
        bool announced = false;
        while (true)
        {
            if ((bits & ~(HasParked | ReaderBias)) == 0)
            {
                // No counted readers, no writer: take it, keeping HasParked
                // for the threads still parked (our Unlock will wake them) and
                // ReaderBias as it is: from here on a biased reader that
                // re-reads the word sees WriteLocked and backs out of its
                // slot, and the bias is back on for readers the moment we
                // unlock. Full barrier (acquire, and the store half of the
                // Dekker pair with the readers' slot CAS + re-read of the
                // word; docs/locks.md). A writer woken with MustSetParked
                // sets HasParked again for the threads still parked
                // (WakeFilter.Finished).
                nuint seen = Interlocked.CompareExchange(ref *rw, bits | WriteLocked | (waiter.MustSetParked != 0 ? HasParked : 0), bits);
                if (seen == bits)
                {
                    if ((bits & ReaderBias) != 0)
                    {
                        return WaitForBiasedReaders(rw, limits);
                    }
                    return LockStatus.Acquired;
                }
                bits = seen;
                continue;
            }
            // Counted readers or a writer hold it. Once we park, HasParked
            // keeps new readers out of the table as well as out of the count
            // (they re-read the word after their slot CAS), so the counted
            // readers drain and we get in next.
            int status = SpinOrPark(rw, ref bits, ref spins, WriterSpins, &waiter, limits, ref announced);
            if (status >= 0)
            {
                return status;
            }
        }
    }

    /// <summary>Pauses spent on the stripe before the writer starts yielding.</summary>
    private const int RevokeSpins = 512;

    /// <summary>
    /// Called holding WriteLocked, the bias having been on when we took it:
    /// waits until no slot of the visible-readers table names rw (the readers
    /// that got in before our CAS leave; no new one can commit). The usual
    /// case is one pass over the lock's stripe (16 cache lines) with at most
    /// a short spin on a reader in its critical section, and the bias stays
    /// on. A reader that takes longer (preempted, or a long read section)
    /// makes us yield, and then turn the bias off and sleep (detached unless
    /// the caller said otherwise: the reader may need the Python thread
    /// state we hold to finish); the bias then stays off for a multiple of
    /// what this wait cost, so that long readers and writers settle on the
    /// plain word. Returns Acquired, or (time up, signal) gives the write
    /// lock back and returns the failure.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WaitForBiasedReaders(nuint* rw, in WaitLimits limits)
    {
        int at = Native.RWMutexWaitBiasedReaders(rw, 0, RevokeSpins);
        if (at < 0)
        {
            return LockStatus.Acquired;
        }
        return WaitForSlowReaders(rw, at, limits);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int WaitForSlowReaders(nuint* rw, int at, in WaitLimits limits)
    {
        long start = Futex.MonotonicNow();
        int round = 0;
        bool revoked = false;
        bool detached = false;
        nint token = 0;
        long sleepNs = 10_000;
        int status = LockStatus.Acquired;
        while ((at = Native.RWMutexWaitBiasedReaders(rw, at, 16)) >= 0)
        {
            long left = limits.Remaining();
            if (left == 0)
            {
                status = LockStatus.Failure;
                break;
            }
            if (round < 64)
            {
                SpinWaits.Yield();
            }
            else
            {
                if (!revoked)
                {
                    // Turn the bias off (we hold WriteLocked, so no reader
                    // commits through the table meanwhile whatever the bit
                    // says). Full barrier, in a loop: parked threads may set
                    // HasParked under us.
                    nuint bits = Volatile.Read(ref *rw);
                    nuint seen;
                    while ((seen = Interlocked.CompareExchange(ref *rw, bits & ~ReaderBias, bits)) != bits)
                    {
                        bits = seen;
                    }
                    revoked = true;
                }
                if (!detached && limits.Detach)
                {
                    token = ThreadDetach.BeforeSleep();
                    detached = true;
                }
                long wakeAt = Futex.MonotonicNow() + (left > 0 ? Math.Min(sleepNs, left) : sleepNs);
                int never = 0; // a private word nobody wakes: a timed sleep
                if (Futex.Wait(&never, 0, wakeAt) == Futex.EINTR && (limits.Flags & (LockFlags.HandleSignals | LockFlags.FailIfInterrupted)) != 0)
                {
                    if (detached)
                    {
                        ThreadDetach.AfterSleep(token); // Python's handlers need the thread state
                        detached = false;
                    }
                    if (limits.GiveUpOnSignal())
                    {
                        status = LockStatus.Interrupted;
                        break;
                    }
                }
                sleepNs = Math.Min(sleepNs * 2, 1_000_000);
            }
            round++;
        }
        if (detached)
        {
            ThreadDetach.AfterSleep(token);
        }
        if (status != LockStatus.Acquired)
        {
            if (revoked)
            {
                // Readers we did not wait for may still sit in their slots:
                // the bias must be on when WriteLocked goes (the class
                // invariant), so the next writer waits for them too. Full
                // barrier; we hold WriteLocked, so only flag bits move.
                nuint bits = Volatile.Read(ref *rw);
                nuint seen;
                while ((seen = Interlocked.CompareExchange(ref *rw, bits | ReaderBias, bits)) != bits)
                {
                    bits = seen;
                }
            }
            // Give the write lock back, waking the parked as a release does.
            Unlock(rw);
            return status;
        }
        if (revoked)
        {
            Native.RWMutexRevoked(rw, start);
        }
        return LockStatus.Acquired;
    }

    /// <summary>
    /// weave_rwmutex_unlock (and its slow path): 0, or WEAVE_E_NOT_OWNER when
    /// the lock is not write-locked (the word is left as it was).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Unlock(nuint* rw)
    {
        nuint bits = Volatile.Read(ref *rw);
        while (true)
        {
            // A CAS loop rather than CPython's blind exchange to 0: an unlock
            // of a read-locked or unlocked word must not clear it.
            if ((bits & WriteLocked) == 0)
            {
                return Abi.ErrorCodes.WEAVE_E_NOT_OWNER;
            }
            if ((bits & HasParked) != 0)
            {
                // Threads are parked: wake one writer or all readers, and
                // release the lock under the bucket lock with the word that
                // goes with the choice (WakeFilter.Finished).
                WakeParked(rw, fromReader: false);
                return 0;
            }
            // Release (full barrier): the writer's stores happen before the
            // acquire of the next reader or writer (a biased reader's re-read
            // of the word included). Clearing HasParked is fine: every parked
            // thread is woken below and re-announces itself if it has to wait
            // again. ReaderBias stays as it is: readers go back to their slots
            // at once.
            nuint seen = Interlocked.CompareExchange(ref *rw, bits & ReaderBias, bits);
            if (seen != bits)
            {
                bits = seen;
                continue;
            }
            return 0;
        }
    }
}
