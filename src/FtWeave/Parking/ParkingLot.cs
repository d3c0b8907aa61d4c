using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Threads;

namespace FtWeave.Parking;

/// <summary>Results of <see cref="ParkingLot.Park"/>, as WEAVE_PARK_* in ft_weave.h.</summary>
internal static class ParkResult
{
    internal const int Ok = 0;
    internal const int Again = -1;
    internal const int Timeout = -2;
    internal const int Interrupted = -3;
}

/// <summary>
/// Callback run by <see cref="ParkingLot.Unpark{TCallback}"/> under the bucket
/// lock, with the dequeued waiter's park argument (NULL if none).
/// Obligations: it must not park, allocate, throw, or call into the lot.
/// </summary>
internal unsafe interface IUnparkCallback
{
    void OnUnpark(void* parkArg, bool hasMoreWaiters);
}

/// <summary>
/// Callbacks of <see cref="ParkingLot.Park{TCallback}"/> (parking_lot_core's
/// validate and before_sleep).
/// </summary>
internal interface IParkCallback
{
    /// <summary>
    /// Runs under the bucket lock before the thread is queued; false returns
    /// ParkResult.Again without sleeping. Same obligations as
    /// <see cref="IUnparkCallback"/>: no parking, no allocation, no throwing,
    /// no call into the lot.
    /// </summary>
    bool Validate();

    /// <summary>
    /// Runs once the thread is queued and the bucket lock released, before it
    /// sleeps (not when Validate failed or the timeout was 0). It holds no
    /// bucket lock and may call into the lot, for example to unlock a mutex;
    /// a waker may already have dequeued the thread, whose sleep then returns
    /// at once.
    /// </summary>
    void BeforeSleep();
}

/// <summary>What <see cref="ParkingLot.UnparkFilter{TCallback}"/> does with one waiter.</summary>
internal enum FilterOp
{
    /// <summary>Wake it.</summary>
    Unpark,
    /// <summary>Leave it parked and look at the next one.</summary>
    Skip,
    /// <summary>Leave it and every later waiter parked.</summary>
    Stop,
}

/// <summary>
/// Callbacks of <see cref="ParkingLot.UnparkFilter{TCallback}"/> (parking_lot_core's
/// unpark_filter); both run under the bucket lock. Same obligations as
/// <see cref="IUnparkCallback"/>.
/// </summary>
internal unsafe interface IUnparkFilterCallback
{
    /// <summary>Decides for one waiter (in queue order) from its park argument.</summary>
    FilterOp Filter(void* parkArg);

    /// <summary>After the walk, before any wake: how many will be woken, and whether waiters stay parked.</summary>
    void Finished(int woken, bool hasMoreWaiters);
}

/// <summary>What <see cref="ParkingLot.UnparkRequeue{TCallback}"/> does with the waiters of <c>from</c>.</summary>
internal enum RequeueOp
{
    /// <summary>Nothing: no waiter is touched.</summary>
    Abort,
    /// <summary>Wake the first waiter.</summary>
    UnparkOne,
    /// <summary>Move the first waiter to <c>to</c>.</summary>
    RequeueOne,
    /// <summary>Wake the first waiter and move the rest to <c>to</c>.</summary>
    UnparkOneRequeueRest,
    /// <summary>Move every waiter to <c>to</c>.</summary>
    RequeueAll,
}

/// <summary>
/// Callbacks of <see cref="ParkingLot.UnparkRequeue{TCallback}"/>; both run
/// with the buckets of <c>from</c> and <c>to</c> locked. Same obligations as
/// <see cref="IUnparkCallback"/>.
/// </summary>
internal unsafe interface IRequeueCallback
{
    /// <summary>Decides the operation from the first waiter's park argument (NULL: no waiter).</summary>
    RequeueOp Validate(void* firstParkArg);

    /// <summary>Whether this waiter may be moved; a waiter that may not is woken instead.</summary>
    bool CanRequeue(void* parkArg);

    /// <summary>After the moves: how many were woken and moved, and whether <c>from</c> still has waiters.</summary>
    void Finished(int woken, int requeued, bool fromHasMoreWaiters);
}

/// <summary>
/// The address-keyed parking lot (CPython Python/parking_lot.c, Rust
/// parking_lot_core, WebKit WTF::ParkingLot). It knows nothing about locks:
/// locks reach it only through park, unpark and the callbacks.
///
/// Addresses hash to the buckets of the current table; each bucket is a
/// <see cref="WordLock"/> and one doubly-linked FIFO of the waiters of every
/// address that hashes there. Waiters are entries on the parked threads' own
/// stacks, so parking allocates nothing. Two addresses in one bucket only share
/// a queue scan; has-more-waiters is computed per address, so they never see
/// each other's waiters.
///
/// The table starts with <see cref="InitialBucketCount"/> buckets and grows
/// to about three buckets per queued thread (Rust parking_lot and WebKit do
/// the same per live thread), so that scans stay short with thousands of
/// parked threads: see <see cref="Grow"/>. Every lookup therefore locks the
/// bucket it computed and then checks that the table is still the current
/// one (<see cref="LockBucket"/>).
/// </summary>
internal static unsafe class ParkingLot
{
    // 1024 buckets of one cache line: 64 KiB, so that a handful of hot locks
    // rarely share a bucket (CPython has 257). Grown tables are larger powers
    // of two, up to 2^MaxBucketBits buckets (64 MiB).
    private const int InitialBucketBits = 10;
    internal const int InitialBucketCount = 1 << InitialBucketBits;
    private const int MaxBucketBits = 20;
    // Target of the growth: buckets per queued thread.
    private const int LoadFactor = 3;
    // The table word holds the bucket array's address (page aligned) with
    // its log2 size in the low bits.
    private const nuint BitsMask = 0xFFF;

    [StructLayout(LayoutKind.Sequential, Size = 64)]
    private struct Bucket
    {
        public nuint Lock;      // WordLock word
        public WaitEntry* Head; // oldest waiter
        public WaitEntry* Tail; // newest waiter
    }

    /// <summary>A parked thread; lives on that thread's stack while it is in Park.</summary>
    private struct WaitEntry
    {
        public WaitEntry* Prev;
        public WaitEntry* Next;
        /// <summary>The key. Changed only by a requeue, which holds both buckets'
        /// locks; the owner re-reads it under a bucket lock (see LockBucketOf).</summary>
        public nuint Address;
        public void* ParkArg;
        /// <summary>Set under the bucket lock when a waker has dequeued this entry:
        /// from then on the owner must consume the wake, even after a timeout.</summary>
        public int IsUnparking;
        /// <summary>Chains entries dequeued together, to be woken after the locks are released.</summary>
        public WaitEntry* NextToWake;
        public ThreadParker Parker;
    }

    // The current table: (Bucket*) | log2(bucket count). The first table is
    // static storage of the library's C part (src/native/parking_fork.c):
    // nothing to allocate, so nothing can fail. Grown tables are mappings
    // from the same file. No table is ever freed: threads of any library may
    // park until the process ends, and a thread that read an old table's
    // word may still lock one of its buckets (it then sees the word changed
    // and retries), as Rust's parking_lot leaks its old tables. Fork keeps
    // this word and the kernel zeroes every table's buckets (MADV_WIPEONFORK),
    // so a child has a table of the same size, empty and unlocked.
    private static nuint s_table;

    // The growth words, in the C part's per-process page (zero in a fork
    // child): [0] threads queued now, [1] 1 while a thread grows the table.
    private static int* s_growthWords;

    // Set when a table could not be had: then the lot stays at its size.
    private static bool s_growthFailed;

    private static nuint Table
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            // Acquire: a grown table's queues were written before the word
            // was published (release in Grow); a thread that finds the new
            // word must see them. Null only before the first use.
            nuint table = Volatile.Read(ref s_table);
            return table != 0 ? table : Initialize();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint Initialize()
    {
        s_growthWords = Native.ParkingGrowthWords();
        nuint initial = (nuint)Native.ParkingTable() | InitialBucketBits;
        // CAS, not a store: racing first callers agree on the static table,
        // and a table grown meanwhile must not be replaced by it.
        nuint seen = Interlocked.CompareExchange(ref s_table, initial, 0);
        return seen != 0 ? seen : initial;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BitsOf(nuint table) => (int)(table & BitsMask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Bucket* BucketsOf(nuint table) => (Bucket*)(table & ~BitsMask);

    /// <summary>
    /// weave_parking_lot_after_fork: resets every bucket in a fork child.
    /// Fork needs no call: the kernel hands the child a zeroed copy of every
    /// table (MADV_WIPEONFORK), or, on a kernel without it, a child handler
    /// in C clears them (src/native/parking_fork.c explains why nothing
    /// managed runs at fork). Calling this again in the child, before the
    /// child's own threads use the lot, is harmless.
    /// </summary>
    internal static void AfterFork()
    {
        nuint table = Table;
        NativeMemory.Clear(BucketsOf(table), (nuint)sizeof(Bucket) << BitsOf(table));
        s_growthWords[0] = 0;
        s_growthWords[1] = 0;
    }

    /// <summary>The bucket count of the current table (for tests and diagnostics).</summary>
    internal static int BucketCount => 1 << BitsOf(Table);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Bucket* BucketIn(nuint table, nuint address)
    {
        // Fibonacci hashing: neighbouring bytes (one-byte locks in an array)
        // land in different buckets.
        ulong h = (ulong)address * 0x9E3779B97F4A7C15UL;
        return BucketsOf(table) + (nint)(h >> (64 - BitsOf(table)));
    }

    /// <summary>
    /// Locks the bucket of <paramref name="address"/> in the current table.
    /// A growth replaces the table while it holds every bucket lock of the
    /// old one, and publishes the new word before it releases them: so once
    /// we hold a bucket lock, re-reading the word tells whether our table is
    /// still current (the CAS that took the lock acquires the grower's
    /// release of it, which follows its store of the word).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Bucket* LockBucket(nuint address)
    {
        while (true)
        {
            nuint table = Table;
            Bucket* bucket = BucketIn(table, address);
            WordLock.Lock(&bucket->Lock);
            if (Volatile.Read(ref s_table) == table)
            {
                return bucket;
            }
            WordLock.Unlock(&bucket->Lock);
        }
    }

    /// <summary>
    /// Grows the table to about <see cref="LoadFactor"/> buckets per queued
    /// thread, if it is smaller. Runs outside every bucket lock (the caller
    /// is a thread that has just queued itself). One grower at a time (the
    /// others return: the table they need is on its way). The new table is
    /// mapped before any lock is taken, so nothing blocks under the bucket
    /// locks but the bucket locks themselves; then every bucket of the old
    /// table is locked in index order (address order, as LockPair does, so
    /// the two cannot deadlock), every waiter moved to its new bucket in
    /// queue order (FIFO per address is kept: a bucket's waiters of one
    /// address stay in order, and an address lives in one old bucket), the
    /// new word published, and the old locks released. Waiters that were
    /// sleeping stay asleep: their entries only changed queues, which their
    /// owners re-find by address under a bucket lock (LockBucketOf).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Grow(int queued)
    {
        int* growing = &s_growthWords[1];
        if (Interlocked.CompareExchange(ref *growing, 1, 0) != 0)
        {
            return;
        }
        nuint old = Table;
        int oldBits = BitsOf(old);
        int bits = oldBits;
        while (bits < MaxBucketBits && ((long)1 << bits) < (long)queued * LoadFactor)
        {
            bits++;
        }
        if (bits > oldBits)
        {
            Bucket* fresh = (Bucket*)Native.ParkingTableAlloc((nuint)sizeof(Bucket) << bits);
            if (fresh == null)
            {
                s_growthFailed = true;
            }
            else
            {
                Rehash(old, (nuint)fresh | (nuint)bits);
            }
        }
        // Release: pairs with the CAS of the next grower.
        Volatile.Write(ref *growing, 0);
    }

    private static void Rehash(nuint old, nuint fresh)
    {
        Bucket* oldBuckets = BucketsOf(old);
        int count = 1 << BitsOf(old);
        for (int i = 0; i < count; i++)
        {
            WordLock.Lock(&oldBuckets[i].Lock);
        }
        // Only a grower replaces the word, and we are the only grower: it is
        // still `old`.
        for (int i = 0; i < count; i++)
        {
            WaitEntry* e = oldBuckets[i].Head;
            while (e != null)
            {
                WaitEntry* next = e->Next;
                Enqueue(BucketIn(fresh, e->Address), e);
                e = next;
            }
            oldBuckets[i].Head = null;
            oldBuckets[i].Tail = null;
        }
        // Release: the new buckets' queues are written before the word that
        // makes them reachable (acquire in Table).
        Volatile.Write(ref s_table, fresh);
        for (int i = 0; i < count; i++)
        {
            WordLock.Unlock(&oldBuckets[i].Lock);
        }
    }

    /// <summary>
    /// Counts a thread that has just queued itself (outside the bucket lock)
    /// and grows the table when it has fewer than about LoadFactor buckets
    /// per queued thread. One atomic add on a path that is about to sleep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CountQueued()
    {
        int queued = Interlocked.Increment(ref s_growthWords[0]);
        if ((long)queued * LoadFactor > (1L << BitsOf(Volatile.Read(ref s_table))) && !s_growthFailed
            && BitsOf(Volatile.Read(ref s_table)) < MaxBucketBits)
        {
            Grow(queued);
        }
    }

    /// <summary>Compares the value at address with expected, as size bytes, atomically.</summary>
    private static bool ValueMatches(void* address, void* expected, int size) => size switch
    {
        1 => Volatile.Read(ref *(byte*)address) == *(byte*)expected,
        2 => Volatile.Read(ref *(ushort*)address) == *(ushort*)expected,
        4 => Volatile.Read(ref *(uint*)address) == *(uint*)expected,
        _ => Volatile.Read(ref *(ulong*)address) == *(ulong*)expected,
    };

    private static void Enqueue(Bucket* bucket, WaitEntry* entry)
    {
        entry->Next = null;
        entry->Prev = bucket->Tail;
        if (bucket->Tail != null)
        {
            bucket->Tail->Next = entry;
        }
        else
        {
            bucket->Head = entry;
        }
        bucket->Tail = entry;
    }

    private static void Remove(Bucket* bucket, WaitEntry* entry)
    {
        if (entry->Prev != null)
        {
            entry->Prev->Next = entry->Next;
        }
        else
        {
            bucket->Head = entry->Next;
        }
        if (entry->Next != null)
        {
            entry->Next->Prev = entry->Prev;
        }
        else
        {
            bucket->Tail = entry->Prev;
        }
        entry->Prev = entry->Next = null;
    }

    private static WaitEntry* FirstFor(Bucket* bucket, nuint address, WaitEntry* start)
    {
        for (WaitEntry* e = start; e != null; e = e->Next)
        {
            if (e->Address == address)
            {
                return e;
            }
        }
        return null;
    }

    /// <summary>
    /// Locks the bucket that currently holds <paramref name="entry"/>. A requeue
    /// may move the entry to another address between our read of the key and
    /// our taking the lock, so the key is re-read under the lock until stable.
    /// </summary>
    private static Bucket* LockBucketOf(WaitEntry* entry)
    {
        while (true)
        {
            nuint address = Volatile.Read(ref entry->Address);
            Bucket* bucket = LockBucket(address);
            if (Volatile.Read(ref entry->Address) == address)
            {
                return bucket;
            }
            WordLock.Unlock(&bucket->Lock);
        }
    }

    /// <summary>weave_park's validation: the value at the address still equals expected.</summary>
    private struct ValueMatch : IParkCallback
    {
        public void* Address;
        public void* Expected;
        public int Size;

        public bool Validate() => ValueMatches(Address, Expected, Size);

        public void BeforeSleep()
        {
        }
    }

    /// <summary>
    /// weave_park. The caller validated size (1, 2, 4, 8) and alignment.
    /// Blocks; runs outside every lock except its own short bucket sections.
    /// </summary>
    internal static int Park(void* address, void* expected, int size, long timeoutNs, void* parkArg, bool detach, bool poll = true)
    {
        var callback = new ValueMatch { Address = address, Expected = expected, Size = size };
        return Park(address, ref callback, timeoutNs, parkArg, detach, poll);
    }

    /// <summary>
    /// Park with a validation run under the bucket lock and a hook run after
    /// the thread is queued (see <see cref="IParkCallback"/>): how a
    /// condition variable queues its waiter before it releases the mutex.
    /// <paramref name="poll"/> false: sleep at once, without the poll of
    /// <see cref="ParkSpin"/> (the waits of locks, which spin before they park).
    /// </summary>
    internal static int Park<TCallback>(void* address, ref TCallback callback, long timeoutNs, void* parkArg, bool detach, bool poll = true)
        where TCallback : struct, IParkCallback
    {
        nuint key = (nuint)address;
        long deadline = timeoutNs > 0 ? Futex.MonotonicNow() + timeoutNs : -1;

        Unsafe.SkipInit(out WaitEntry entry); // every field is set before use
        Bucket* bucket = LockBucket(key);
        // The validation and the enqueue are one step with respect to unpark
        // (same bucket lock): a waker that changes the value and then unparks
        // either makes us see the new value, or finds us queued.
        if (!callback.Validate())
        {
            WordLock.Unlock(&bucket->Lock);
            return ParkResult.Again;
        }
        if (timeoutNs == 0)
        {
            WordLock.Unlock(&bucket->Lock);
            return ParkResult.Timeout;
        }
        entry.Address = key;
        entry.ParkArg = parkArg;
        entry.IsUnparking = 0;
        entry.NextToWake = null;
        entry.Parker.Prepare();
        Enqueue(bucket, &entry);
        WordLock.Unlock(&bucket->Lock);

        // Queued and visible to wakers; a wake from here on sets our parker,
        // and Parker.Park below returns at once.
        callback.BeforeSleep();
        CountQueued();
        Statistics.Increment(Statistics.Counter.Parks);
        nint detached = detach ? ThreadDetach.BeforeSleep() : 0;

        int result;
        ParkOutcome outcome = entry.Parker.Park(deadline, poll);
        if (outcome == ParkOutcome.Unparked)
        {
            result = ParkResult.Ok;
        }
        else
        {
            // Timeout or signal (EINTR): not a wake, and our entry may still
            // be queued. Dequeue it ourselves under the bucket lock before
            // this frame goes away (the WordLock waits for that lock are not
            // interruptible), unless a waker got to it first.
            bucket = LockBucketOf(&entry);
            if (entry.IsUnparking != 0)
            {
                // A waker already dequeued us and is about to wake us: consume
                // that wake (our entry must outlive its store), and report OK,
                // since the waker's callback may have handed us something.
                WordLock.Unlock(&bucket->Lock);
                entry.Parker.ParkUntilUnparked();
                result = ParkResult.Ok;
            }
            else
            {
                Remove(bucket, &entry);
                WordLock.Unlock(&bucket->Lock);
                result = outcome == ParkOutcome.TimedOut ? ParkResult.Timeout : ParkResult.Interrupted;
            }
        }

        // Out of every queue now (woken, or removed ourselves above).
        Interlocked.Decrement(ref s_growthWords[0]);
        if (detach)
        {
            ThreadDetach.AfterSleep(detached);
        }
        return result;
    }

    /// <summary>weave_unpark: wake the first waiter on address; 1 if one was woken.</summary>
    internal static int Unpark<TCallback>(void* address, ref TCallback callback)
        where TCallback : struct, IUnparkCallback
    {
        nuint key = (nuint)address;
        Bucket* bucket = LockBucket(key);
        WaitEntry* waiter = FirstFor(bucket, key, bucket->Head);
        bool hasMore = false;
        if (waiter != null)
        {
            // The bucket's tail ends the scan early when the waiter is last.
            hasMore = waiter != bucket->Tail && FirstFor(bucket, key, waiter->Next) != null;
            Remove(bucket, waiter);
            waiter->IsUnparking = 1;
        }
        callback.OnUnpark(waiter != null ? waiter->ParkArg : null, hasMore);
        WordLock.Unlock(&bucket->Lock);
        if (waiter == null)
        {
            return 0;
        }
        Statistics.Increment(Statistics.Counter.Unparks);
        ThreadParker.Unpark(&waiter->Parker);
        return 1;
    }

    /// <summary>weave_unpark_all: wake every waiter on address; returns how many.</summary>
    internal static int UnparkAll(void* address)
    {
        var everyone = new WakeEveryone();
        return UnparkFilter(address, ref everyone);
    }

    /// <summary>UnparkAll's filter: every waiter of the address is woken.</summary>
    private struct WakeEveryone : IUnparkFilterCallback
    {
        public FilterOp Filter(void* parkArg) => FilterOp.Unpark;

        public void Finished(int woken, bool hasMoreWaiters)
        {
        }
    }

    /// <summary>
    /// Wakes the waiters on address that the callback picks, walking them in
    /// queue (FIFO) order under the bucket lock, and tells it the outcome
    /// before releasing the lock, so that it can publish the lock word that
    /// goes with it (how an RW lock wakes one writer or all readers). Returns
    /// how many were woken.
    /// </summary>
    internal static int UnparkFilter<TCallback>(void* address, ref TCallback callback)
        where TCallback : struct, IUnparkFilterCallback
    {
        nuint key = (nuint)address;
        WaitEntry* toWake = null;
        WaitEntry** tail = &toWake;
        int count = 0;
        bool hasMore = false;
        // Locked in the current table (LockBucket re-checks after a growth).
        Bucket* bucket = LockBucket(key);
        WaitEntry* e = bucket->Head;
        while (e != null)
        {
            WaitEntry* next = e->Next;
            if (e->Address == key)
            {
                FilterOp op = callback.Filter(e->ParkArg);
                if (op == FilterOp.Stop)
                {
                    hasMore = true;
                    break;
                }
                if (op == FilterOp.Skip)
                {
                    hasMore = true;
                }
                else
                {
                    Remove(bucket, e);
                    e->IsUnparking = 1;
                    e->NextToWake = null;
                    *tail = e;
                    tail = &e->NextToWake;
                    count++;
                }
            }
            e = next;
        }
        callback.Finished(count, hasMore);
        WordLock.Unlock(&bucket->Lock);
        WakeChain(toWake);
        return count;
    }

    /// <summary>
    /// Wakes a chain built under a bucket lock. NextToWake is read before the
    /// wake: after it, the entry may be gone.
    /// </summary>
    private static void WakeChain(WaitEntry* chain)
    {
        ulong woken = 0;
        while (chain != null)
        {
            WaitEntry* next = chain->NextToWake;
            ThreadParker.Unpark(&chain->Parker);
            chain = next;
            woken++;
        }
        Statistics.Add(Statistics.Counter.Unparks, woken);
    }

    /// <summary>
    /// Runs <paramref name="inspect"/> under the bucket lock with the park
    /// argument of the first waiter on <paramref name="address"/> (NULL if none)
    /// and returns what it returns: how a condition variable learns which
    /// mutex its waiters use without dereferencing a waiter outside the lock.
    /// </summary>
    internal static void* InspectFirst(void* address, delegate*<void*, void*> inspect)
    {
        nuint key = (nuint)address;
        Bucket* bucket = LockBucket(key);
        WaitEntry* first = FirstFor(bucket, key, bucket->Head);
        void* result = inspect(first != null ? first->ParkArg : null);
        WordLock.Unlock(&bucket->Lock);
        return result;
    }

    /// <summary>
    /// Wakes and/or moves waiters of <paramref name="from"/> to the queue of
    /// <paramref name="to"/>, as the callback decides, with both buckets locked
    /// (in address order, so two requeues in opposite directions cannot
    /// deadlock). Returns the number of waiters woken plus moved.
    /// </summary>
    internal static int UnparkRequeue<TCallback>(void* from, void* to, ref TCallback callback)
        where TCallback : struct, IRequeueCallback
    {
        nuint fromKey = (nuint)from, toKey = (nuint)to;
        Bucket* fromBucket, toBucket;
        while (true)
        {
            // Both buckets from one table, checked current once both are held.
            nuint table = Table;
            fromBucket = BucketIn(table, fromKey);
            toBucket = BucketIn(table, toKey);
            LockPair(fromBucket, toBucket);
            if (Volatile.Read(ref s_table) == table)
            {
                break;
            }
            UnlockPair(fromBucket, toBucket);
        }

        WaitEntry* first = FirstFor(fromBucket, fromKey, fromBucket->Head);
        RequeueOp op = callback.Validate(first != null ? first->ParkArg : null);
        WaitEntry* toWake = null;
        WaitEntry** tail = &toWake;
        int woken = 0, requeued = 0;
        if (first != null && op != RequeueOp.Abort)
        {
            bool wakeFirst = op == RequeueOp.UnparkOne || op == RequeueOp.UnparkOneRequeueRest;
            bool onlyFirst = op == RequeueOp.UnparkOne || op == RequeueOp.RequeueOne;
            WaitEntry* e = first;
            bool isFirst = true;
            while (e != null)
            {
                WaitEntry* next = FirstFor(fromBucket, fromKey, e->Next);
                Remove(fromBucket, e);
                if ((isFirst && wakeFirst) || !callback.CanRequeue(e->ParkArg))
                {
                    e->IsUnparking = 1;
                    e->NextToWake = null;
                    *tail = e;
                    tail = &e->NextToWake;
                    woken++;
                }
                else
                {
                    // The owner re-reads Address under a bucket lock
                    // (LockBucketOf); we hold both, so it sees old or new
                    // key together with the matching queue.
                    Volatile.Write(ref e->Address, toKey);
                    Enqueue(toBucket, e);
                    requeued++;
                }
                isFirst = false;
                if (onlyFirst)
                {
                    break;
                }
                e = next;
            }
        }
        bool fromHasMore = FirstFor(fromBucket, fromKey, fromBucket->Head) != null;
        callback.Finished(woken, requeued, fromHasMore);
        UnlockPair(fromBucket, toBucket);
        WakeChain(toWake);
        return woken + requeued;
    }

    private static void LockPair(Bucket* a, Bucket* b)
    {
        if (a == b)
        {
            WordLock.Lock(&a->Lock);
        }
        else if (a < b)
        {
            WordLock.Lock(&a->Lock);
            WordLock.Lock(&b->Lock);
        }
        else
        {
            WordLock.Lock(&b->Lock);
            WordLock.Lock(&a->Lock);
        }
    }

    private static void UnlockPair(Bucket* a, Bucket* b)
    {
        WordLock.Unlock(&a->Lock);
        if (a != b)
        {
            WordLock.Unlock(&b->Lock);
        }
    }
}
