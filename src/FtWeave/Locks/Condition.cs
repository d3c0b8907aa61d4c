using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Abi;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Sections;
using FtWeave.Threads;

namespace FtWeave.Locks;

/// <summary>
/// The park argument of a thread waiting on a condition. It starts with a
/// <see cref="MutexWaiter"/>: once requeued onto the mutex's queue, the
/// mutex's unlock callback treats it as one of its own waiters and may hand
/// it the lock. Lives on the waiter's stack for the whole wait.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CondWaiter
{
    /// <summary>Must stay first (the mutex's unlock casts the park argument).</summary>
    public MutexWaiter Waiter;
    /// <summary>The mutex the waiter will re-lock: where a signal requeues it.</summary>
    public byte* Mutex;
    /// <summary>Set under both bucket locks when a signal moved us onto the mutex's queue.</summary>
    public int Requeued;
}

/// <summary>
/// weave_cond_t: one byte, a condition variable over a <see cref="Mutex"/>
/// that requeues instead of stampeding (Rust parking_lot's Condvar; the
/// has-waiters byte and its validation as in WebKit's WTF::Condition).
///
///   v | meaning
///   --+------------------------------------------------------------------
///   0 | no waiter queued (nor about to be: a waiter would find 0 and retry)
///   1 | waiters may be parked on &amp;v
///
/// Invariant: while a waiter is queued on &amp;v, v is 1. A waiter stores 1
/// under the bucket lock as it queues itself, and 0 is stored only under
/// that bucket lock when no waiter is queued. The waiter releases the mutex
/// only after it is queued (as WebKit's and parking_lot's conditions do),
/// so a signaller, which changed the predicate holding the mutex, either
/// finds the waiter queued or ran before the waiter checked the predicate.
/// A signal that reads 0 therefore has nobody to wake.
/// </summary>
internal static unsafe class Condition
{
    /// <summary>
    /// weave_cond_wait: 1 when woken (perhaps spuriously), 0 on timeout,
    /// WEAVE_E_NOT_OWNER (message recorded) when <paramref name="mutex"/> is
    /// not held. The mutex is held again, once, on return, except after an
    /// error. Inside critical sections: see Sections/CriticalSection.cs,
    /// "Condition waits inside sections" (the sections are suspended while
    /// the thread sleeps; on return the innermost, and the one holding the
    /// mutex with every section inside it, are active).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Wait(byte* cond, byte* mutex, long timeoutNs)
    {
        int where = CriticalSections.PrepareWait(mutex, out CriticalSections.WaitSections sections);
        if (where == CriticalSections.WaitMutexSuspended)
        {
            // The mutex belongs to an outer section that a blocking call
            // suspended: the caller does not hold it, and read its condition
            // without it, so sleeping now could miss a signal sent before.
            // Take it back (resuming that section and those inside it) and
            // return at once: a spurious wake-up, after which the caller's
            // loop re-checks its condition under the mutex and waits again.
            CriticalSections.DetachForWait(ref sections, null);
            CriticalSections.ReattachAfterWait(ref sections, mutex, holdsM: false);
            return timeoutNs == 0 ? 0 : 1;
        }
        if (where == CriticalSections.WaitMutexUnresumable)
        {
            return ThreadContexts.SetError(ErrorCodes.WEAVE_E_NOT_OWNER, "weave_cond_wait: the mutex belongs to a suspended critical section, which cannot be resumed here (a section inside it holds one of its mutexes)\0"u8);
        }
        if (Volatile.Read(ref *mutex) != Mutex.Locked)
        {
            // Nothing touched.
            return ThreadContexts.SetError(ErrorCodes.WEAVE_E_NOT_OWNER, "weave_cond_wait: the mutex is not locked\0"u8);
        }
        if (timeoutNs == 0)
        {
            // Would not sleep: nothing to announce, release or re-take.
            return 0;
        }

        // Count ourselves among the mutex's condition waiters (we hold it):
        // until we hold it again, every unlock of it takes the slow path, so
        // a signal may move us onto it while it is held (Notify).
        Mutex.AddCondWaiter(mutex, 1);

        CondWaiter waiter;
        // Set properly when a signal requeues us (fairness counts from then).
        waiter.Waiter.TimeToBeFairNs = long.MaxValue;
        waiter.Waiter.HandedOff = 0;
        waiter.Mutex = mutex;
        waiter.Requeued = 0;

        // The caller's sections: suspended now (all their mutexes released
        // but ours, which the park releases once we are queued), and hidden
        // from the parking lot's detach until we re-attach them below.
        if (sections.Ctx != null)
        {
            CriticalSections.DetachForWait(ref sections, mutex);
        }

        // 1. Queue ourselves on &v (and store v = 1) under the bucket lock
        //    while still holding the mutex; 2. only then release the mutex
        //    (BeforeSleep). A signaller changes the predicate holding the
        //    mutex, so it either did so before our caller checked the
        //    predicate, or it takes the mutex after step 2 and then finds us
        //    queued: there is no window in which a signal can miss us.
        //    (Storing 1 and unlocking before parking, with the park validating
        //    v == 1, is not enough: a signal that finds nobody queued stores
        //    0, but the signaller may then wait itself and store 1 again
        //    before our validation runs; we would sleep through its signal.)
        var park = new WaitCallback { Cond = cond, Mutex = mutex };
        int parked = ParkingLot.Park(cond, ref park, timeoutNs, &waiter, detach: true);

        // 3. Own the mutex again. A requeued waiter woken by the mutex's
        //    unlock may have been handed it: the unlock callback left the byte
        //    locked and set HandedOff before the parker's release store, which
        //    Park's acquire made visible to us. (A signal that requeues us
        //    before our own unlock in BeforeSleep makes that unlock wake us,
        //    which is just a wake.)
        bool handedOff = parked == ParkResult.Ok && waiter.Waiter.HandedOff != 0;
        if (sections.Ctx != null)
        {
            // The mutex and the sections' mutexes, without waiting for one
            // while holding another; then the sections are active again.
            CriticalSections.ReattachAfterWait(ref sections, mutex, handedOff);
        }
        else if (!handedOff)
        {
            Mutex.Lock(mutex); // parks with detach, as Mutex.LockSlow
        }
        // We hold the mutex again, and are off every queue.
        Mutex.AddCondWaiter(mutex, -1);

        if (parked == ParkResult.Timeout)
        {
            // Requeued was written under both bucket locks; Park's timeout path
            // took our current bucket's lock after that, so we read it here.
            // A waiter that a signal moved to the mutex was signalled: it
            // reports a wake, not a timeout, or the signal would be lost
            // (the signaller counted it and woke nobody else).
            return waiter.Requeued != 0 ? 1 : 0;
        }
        // Ok, or Interrupted (EINTR, a spurious wake). Again cannot happen:
        // our validation always parks.
        return 1;
    }

    /// <summary>The waiter's side of the park: announce under the bucket lock, then release the mutex.</summary>
    private struct WaitCallback : IParkCallback
    {
        public byte* Cond;
        public byte* Mutex;

        /// <summary>Under the condition's bucket lock; no parking, allocation or throwing.</summary>
        public bool Validate()
        {
            // Under the bucket lock, with our enqueue: v is 1 whenever a waiter
            // is queued. The bucket lock's release, then the mutex unlock in
            // BeforeSleep, make it visible to any signaller that takes the
            // mutex after us, so its "v == 0: nobody to wake" check is sound.
            Volatile.Write(ref *Cond, 1);
            return true;
        }

        public void BeforeSleep()
        {
            // We are queued: a signal from now on finds us. The result is
            // ignored: Wait checked that the mutex was locked; another
            // thread unlocking it meanwhile is misuse we cannot repair.
            Locks.Mutex.Unlock(Mutex);
        }
    }

    /// <summary>weave_cond_signal (all: false) and weave_cond_broadcast (all: true).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Notify(byte* cond, bool all)
    {
        while (true)
        {
            // Nobody queued (see the invariant above). Relaxed would do: a
            // signaller that took the mutex after a waiter released it reads
            // that waiter's 1 or a later value, and every later 0 was stored
            // when that waiter was no longer queued.
            if (Volatile.Read(ref *cond) == 0)
            {
                return 0;
            }

            // The first waiter's mutex tells us which queue to requeue onto.
            // Read under the bucket lock: outside it the waiter may be gone.
            byte* mutex = (byte*)ParkingLot.InspectFirst(cond, &MutexOfWaiter);

            // With no waiter queued we still go through UnparkRequeue (onto
            // our own address, touching nobody) so that v = 0 is stored under
            // the bucket lock. A plain store after InspectFirst could land
            // after a new waiter had queued itself and stored 1: v would be 0
            // with a waiter queued, and later signals would skip it.
            var callback = new NotifyCallback
            {
                Cond = cond,
                Mutex = mutex,
                All = all,
            };
            int count = ParkingLot.UnparkRequeue(cond, mutex != null ? mutex : cond, ref callback);
            if (!callback.Retry)
            {
                return count;
            }
            // The first waiter changed to one of another mutex (or appeared)
            // between InspectFirst and UnparkRequeue: start again.
        }
    }

    /// <summary>Run by InspectFirst under the bucket lock: the waiter's mutex, or NULL.</summary>
    private static void* MutexOfWaiter(void* parkArg) =>
        parkArg == null ? null : ((CondWaiter*)parkArg)->Mutex;


    /// <summary>
    /// Decides, under the buckets of the condition and the mutex, whom to
    /// wake and whom to move. Obligations (it runs under both bucket locks):
    /// no parking, no allocation, no throwing, no call into the lot.
    /// </summary>
    private struct NotifyCallback : IRequeueCallback
    {
        public byte* Cond;
        public byte* Mutex;
        public bool All;
        public bool Retry;
        public long RequeuedAtNs;
        public RequeueOp Op;

        public RequeueOp Validate(void* firstParkArg)
        {
            if (firstParkArg == null)
            {
                // Nobody queued: Finished stores v = 0.
                Op = RequeueOp.Abort;
                return Op;
            }
            if (((CondWaiter*)firstParkArg)->Mutex != Mutex)
            {
                // Not the mutex InspectFirst saw (the first waiter left and the
                // next uses another mutex, or one appeared): our `to` bucket is
                // the wrong one. Touch nobody and retry with the new first.
                Retry = true;
                Op = RequeueOp.Abort;
                return Op;
            }
            RequeuedAtNs = Futex.MonotonicNow();
            byte parked = Volatile.Read(ref *Locks.Mutex.Parked(Mutex));
            if (Volatile.Read(ref *Mutex) == Locks.Mutex.Locked && (parked & Locks.Mutex.CondWaitersMask) != 0)
            {
                // The mutex is held (likely by us, the signaller): waking a
                // waiter would only make it block on the mutex. Move it. The
                // waiters we move count themselves in the mutex's _parked
                // until they hold it again (Mutex.AddCondWaiter), and only a
                // holder changes that count, so the holder's unlock reads it
                // non-zero and takes the slow path, which needs this bucket
                // lock and so finds them. No process-wide barrier is needed,
                // unlike a mutex waiter's own announcement.
                Op = All ? RequeueOp.RequeueAll : RequeueOp.RequeueOne;
            }
            else
            {
                // The mutex is free: wake the first, who will lock it (and,
                // on broadcast, unlock it later, waking the rest we move
                // now). A held mutex without counted condition waiters cannot
                // be ours (our first waiter counts itself before it queues):
                // the bytes were overwritten; waking is safe then too.
                Op = All ? RequeueOp.UnparkOneRequeueRest : RequeueOp.UnparkOne;
            }
            return Op;
        }

        public bool CanRequeue(void* parkArg)
        {
            CondWaiter* waiter = (CondWaiter*)parkArg;
            if (waiter->Mutex != Mutex)
            {
                // Misuse (two mutexes on one condition): wake it instead; it
                // locks its own mutex. No wake-up is lost, only a requeue.
                return false;
            }
            // Its wait for the mutex starts now: a hand-off after 1 ms more,
            // as for any mutex waiter.
            waiter->Waiter.TimeToBeFairNs = RequeuedAtNs + Locks.Mutex.TimeToBeFairNs;
            waiter->Requeued = 1;
            return true;
        }

        public void Finished(int woken, int requeued, bool fromHasMoreWaiters)
        {
            if (requeued != 0)
            {
                // Announce the moved waiters in bit 0 too (we still hold the
                // mutex's bucket lock, so no unlock slow path can look for
                // them yet), so that lockers park behind them instead of
                // spinning and the unlock callbacks keep the bit while any
                // remain. Their wake-up does not depend on this store: their
                // count in _parked sends every unlock to the slow path.
                Locks.Mutex.SetHasParked(Mutex, true);
            }
            // Under the condition's bucket lock: 0 only when nobody is queued
            // (the invariant in the class comment). Relaxed would do; the
            // bucket lock orders it with parkers' validation.
            Volatile.Write(ref *Cond, fromHasMoreWaiters ? (byte)1 : (byte)0);
        }
    }
}
