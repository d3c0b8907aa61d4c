using System;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Storage;

/// <summary>
/// weave_static_get: process-wide values, initialised exactly once.
///
///   StaticState | meaning
///   ------------+----------------------------------------------------------
///   None (0)    | no value; the next caller initialises
///   Busy (1)    | a thread (StaticInitThread) runs init outside every lock;
///               | others park on the StaticState word until it changes
///   Ready (2)   | StaticValue is published
///
/// State changes happen under the registry lock. A waiter sets StaticWaiters
/// under the lock before it parks, and the initialiser, when it leaves Busy
/// under the lock, unparks all if the flag is set; a waiter's park re-checks
/// the word under the bucket lock, so it either sees the change or is queued
/// before the unpark-all: no lost wake-up. (Without waiters the parking lot
/// is not touched at all.)
///
/// Each Busy records which attempt owns it (StaticInitToken) and in which
/// process it started (StaticInitIncarnation). In a fork child, a Busy from an
/// older incarnation was inherited: its initialiser is a parent thread that
/// does not exist here (unless it is the forking thread itself, continuing
/// its init in the child), so the next get takes the init over. An attempt
/// publishes only if it still owns the entry.
/// </summary>
internal static unsafe class StaticValues
{
    internal const int None = 0;
    internal const int Busy = 1;
    internal const int Ready = 2;

    internal static void* Get(byte* key, nuint size, delegate* unmanaged<void*, void*, int> init, void* arg)
    {
        ReadOnlySpan<byte> fn = "weave_static_get"u8;
        if (!StorageKeys.Measure(key, fn, out int length, out ulong hash))
        {
            return null;
        }
        if (size == 0)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_static_get: size is 0\0"u8);
            return null;
        }
        // The thread's key cache when it has a context; the registry otherwise.
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out _);
        KeyEntry* entry = ThreadLocalValues.FindKey(ctx, key, length, hash);
        if (entry == null)
        {
            ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_static_get: out of memory\0"u8);
            return null;
        }
        if (StorageKeys.CheckShape(entry, KeyKind.Static, size, fn) != WEAVE_OK)
        {
            return null;
        }
        // Acquire: pairs with the release that published the value, so its
        // initialised contents are visible.
        void* value = (void*)Volatile.Read(ref *(nint*)&entry->StaticValue);
        return value != null ? value : GetSlow(entry, size, init, arg);
    }

    private static void* GetSlow(KeyEntry* entry, nuint size, delegate* unmanaged<void*, void*, int> init, void* arg)
    {
        ulong me = ThreadIds.Current();
        while (true)
        {
            StorageKeys.Lock();
            void* ready = entry->StaticValue;
            if (ready != null)
            {
                // (A fork child may find a value a parent thread published
                // just before the fork, with the state still Busy.)
                entry->StaticState = Ready;
                StorageKeys.Unlock();
                return ready;
            }
            if (entry->StaticState == Busy)
            {
                bool inherited = entry->StaticInitIncarnation != RegistryLock.Incarnation;
                // pthread_self is unique among live threads. An inherited
                // Busy is this thread's only if this thread is the one that
                // forked (a thread created in the child may reuse the id of a
                // parent thread that does not exist here).
                bool mine = entry->StaticInitThread == me && (!inherited || RegistryLock.OnInitialThread());
                if (mine)
                {
                    StorageKeys.Unlock();
                    ThreadContexts.BeginError("init asked for its own key\0"u8)
                        .Append("weave_static_get: the init of key \""u8).Append(entry->Key, entry->Length, 64)
                        .Append("\" asked for its own key"u8);
                    return null;
                }
                if (!inherited)
                {
                    entry->StaticWaiters = 1;
                    StorageKeys.Unlock();
                    int busy = Busy;
                    // Detached: the waiter may hold a CPython thread state that
                    // the initialiser needs. Any return (woken, changed, EINTR)
                    // means "look again".
                    ParkingLot.Park(&entry->StaticState, &busy, sizeof(int), -1, null, detach: true);
                    continue;
                }
                // Inherited from the process this one was forked from, and not
                // ours: nobody here will finish it. Take it over. (Its waiters
                // were parent threads: none to wake here.)
                entry->StaticWaiters = 0;
            }

            ulong token = StorageKeys.NextInitToken();
            entry->StaticInitThread = me;
            entry->StaticInitIncarnation = RegistryLock.Incarnation;
            entry->StaticInitToken = token;
            entry->StaticState = Busy;
            ulong generation = StorageKeys.Generation;
            StorageKeys.Unlock();

            void* pointer = Libc.Calloc(1, size);
            int result = pointer == null ? -1 : init != null ? init(pointer, arg) : 0;

            StorageKeys.Lock();
            // Still ours unless, in a fork child, another thread took over an
            // init the forking thread had started in the parent.
            bool owner = entry->StaticState == Busy && entry->StaticInitToken == token;
            bool reset = StorageKeys.Generation != generation;
            bool publish = owner && pointer != null && result == 0 && !reset;
            bool wake = false;
            if (owner)
            {
                if (publish)
                {
                    // Release: the value's contents before the pointer.
                    Volatile.Write(ref *(nint*)&entry->StaticValue, (nint)pointer);
                    entry->StaticState = Ready;
                }
                else
                {
                    entry->StaticState = None; // a waiter (or the next caller) retries
                }
                entry->StaticInitThread = 0;
                wake = entry->StaticWaiters != 0;
                entry->StaticWaiters = 0;
            }
            StorageKeys.Unlock();
            if (wake)
            {
                ParkingLot.UnparkAll(&entry->StaticState);
            }

            if (publish)
            {
                return pointer;
            }
            // Not published: this attempt's value is freed here, whatever init
            // did (a value that overlapped a reset belongs to no generation).
            Libc.Free(pointer);
            if (reset)
            {
                ThreadContexts.SetError(WEAVE_E_STATE, "weave_static_get: the storage was reset while init ran\0"u8);
                return null;
            }
            if (!owner)
            {
                continue; // the value of the thread that took over is ours too
            }
            if (pointer == null)
            {
                ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_static_get: out of memory for the value\0"u8);
            }
            else
            {
                ThreadContexts.BeginError("init failed\0"u8)
                    .Append("weave_static_get: init of key \""u8).Append(entry->Key, entry->Length, 64)
                    .Append("\" failed with "u8).Append((long)result);
            }
            return null;
        }
    }
}
