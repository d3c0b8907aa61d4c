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
/// State changes happen under the registry lock and are followed by an
/// unpark-all of the word; a waiter's park re-checks the word under the
/// bucket lock, so it either sees the change or is queued before the
/// unpark-all: no lost wake-up.
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
            if (entry->StaticValue != null)
            {
                void* ready = entry->StaticValue;
                StorageKeys.Unlock();
                return ready;
            }
            if (entry->StaticState == Busy)
            {
                bool mine = entry->StaticInitThread == me;
                StorageKeys.Unlock();
                if (mine)
                {
                    ThreadContexts.BeginError("init asked for its own key\0"u8)
                        .Append("weave_static_get: the init of key \""u8).Append(entry->Key, entry->Length, 64)
                        .Append("\" asked for its own key"u8);
                    return null;
                }
                int busy = Busy;
                // Detached: the waiter may hold a CPython thread state that
                // the initialiser needs.
                ParkingLot.Park(&entry->StaticState, &busy, sizeof(int), -1, null, detach: true);
                continue;
            }

            entry->StaticState = Busy;
            entry->StaticInitThread = me;
            ulong generation = StorageKeys.Generation;
            StorageKeys.Unlock();

            void* pointer = Libc.Calloc(1, size);
            int result = pointer == null ? -1 : init != null ? init(pointer, arg) : 0;

            StorageKeys.Lock();
            bool publish = pointer != null && result == 0 && StorageKeys.Generation == generation;
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
            StorageKeys.Unlock();
            ParkingLot.UnparkAll(&entry->StaticState);

            if (publish)
            {
                return pointer;
            }
            Libc.Free(pointer);
            if (pointer == null)
            {
                ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_static_get: out of memory for the value\0"u8);
            }
            else if (result != 0)
            {
                ThreadContexts.BeginError("init failed\0"u8)
                    .Append("weave_static_get: init of key \""u8).Append(entry->Key, entry->Length, 64)
                    .Append("\" failed with "u8).Append((long)result);
            }
            else
            {
                ThreadContexts.SetError(WEAVE_E_STATE, "weave_static_get: the storage was reset while init ran\0"u8);
            }
            return null;
        }
    }
}
