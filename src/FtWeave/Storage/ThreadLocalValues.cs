using System;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Storage;

/// <summary>
/// Per-thread values of weave_tls_get. Each thread has a
/// <see cref="ThreadStorage"/> block in native memory (hung off its
/// ThreadContext): a cache from key to <see cref="KeyEntry"/> (so gets after
/// the first take no lock) and its values in creation order. Only the owning
/// thread touches it, except that weave_storage_reset bumps the registry
/// generation, which the owner notices at its next call (stale values are then
/// freed without their destructor).
/// </summary>
internal static unsafe class ThreadLocalValues
{
    private const int SlotNone = 0;
    private const int SlotInitialising = 1;
    private const int SlotReady = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct Value
    {
        public KeyEntry* Key;
        public void* Pointer;
        public int State;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ThreadStorage
    {
        public KeyEntry** Cache;   // open addressing by key hash
        public int CacheCapacity;  // power of two
        public int CacheCount;
        public Value* Values;      // in creation order (destroyed in reverse)
        public int ValueCount;
        public int ValueCapacity;
        public ulong Generation;   // registry generation the values belong to
        public int TearingDown;
    }

    private static ThreadStorage* Get(ThreadContext* ctx)
    {
        ThreadStorage* ts = (ThreadStorage*)ctx->Storage;
        if (ts == null)
        {
            ts = (ThreadStorage*)Libc.Calloc(1, (nuint)sizeof(ThreadStorage));
            if (ts == null)
            {
                return null;
            }
            ts->Generation = StorageKeys.Generation;
            ctx->Storage = ts;
        }
        else if (ts->Generation != StorageKeys.Generation && ts->TearingDown == 0)
        {
            // (Never during a teardown: DestroyAll is walking the values, and
            // a destructor's call - weave_static_get, weave_tls_set_destructor
            // - must not free them under it. DestroyAll drops them itself.)
            DropStale(ts);
        }
        return ts;
    }

    /// <summary>
    /// After a reset by another thread: free this thread's old values without
    /// their destructors (they may live in a plugin being unloaded). A slot
    /// whose init is still running is not freed: that get frees it.
    /// </summary>
    private static void DropStale(ThreadStorage* ts)
    {
        ulong generation = StorageKeys.Generation;
        for (int i = 0; i < ts->ValueCount; i++)
        {
            if (ts->Values[i].State == SlotReady)
            {
                Libc.Free(ts->Values[i].Pointer);
            }
        }
        ts->ValueCount = 0;
        ts->Generation = generation;
    }

    /// <summary>Finds a key through the thread's cache, or the registry on first use.</summary>
    internal static KeyEntry* FindKey(ThreadContext* ctx, byte* key, int length, ulong hash)
        => FindKey(ctx != null ? Get(ctx) : null, key, length, hash);

    /// <summary>As above, for a caller that already holds the thread's storage (or NULL).</summary>
    private static KeyEntry* FindKey(ThreadStorage* ts, byte* key, int length, ulong hash)
    {
        if (ts != null && ts->CacheCapacity != 0)
        {
            int mask = ts->CacheCapacity - 1;
            for (int i = (int)hash & mask; ts->Cache[i] != null; i = (i + 1) & mask)
            {
                if (StorageKeys.Matches(ts->Cache[i], key, length, hash))
                {
                    return ts->Cache[i];
                }
            }
        }
        KeyEntry* entry = StorageKeys.FindOrAdd(key, length, hash);
        if (entry != null && ts != null)
        {
            // A failure to grow the cache only costs a registry lookup next time.
            CacheInsert(ts, entry);
        }
        return entry;
    }

    private static void CacheInsert(ThreadStorage* ts, KeyEntry* entry)
    {
        if ((ts->CacheCount + 1) * 2 > ts->CacheCapacity)
        {
            int capacity = ts->CacheCapacity == 0 ? 16 : ts->CacheCapacity * 2;
            KeyEntry** cache = capacity > 0 ? (KeyEntry**)Libc.Calloc((nuint)capacity, (nuint)sizeof(KeyEntry*)) : null;
            if (cache == null)
            {
                return;
            }
            for (int i = 0; i < ts->CacheCapacity; i++)
            {
                if (ts->Cache[i] != null)
                {
                    Place(cache, capacity, ts->Cache[i]);
                }
            }
            Libc.Free(ts->Cache);
            ts->Cache = cache;
            ts->CacheCapacity = capacity;
        }
        Place(ts->Cache, ts->CacheCapacity, entry);
        ts->CacheCount++;
    }

    private static void Place(KeyEntry** cache, int capacity, KeyEntry* entry)
    {
        int i = (int)entry->Hash & (capacity - 1);
        while (cache[i] != null)
        {
            i = (i + 1) & (capacity - 1);
        }
        cache[i] = entry;
    }

    private static int Find(ThreadStorage* ts, KeyEntry* key)
    {
        for (int i = 0; i < ts->ValueCount; i++)
        {
            if (ts->Values[i].Key == key)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>weave_tls_get.</summary>
    internal static void* Get(byte* key, nuint size, delegate* unmanaged<void*, void*, int> init, void* arg)
    {
        ReadOnlySpan<byte> fn = "weave_tls_get"u8;
        if (!StorageKeys.Measure(key, fn, out int length, out ulong hash))
        {
            return null;
        }
        if (size == 0)
        {
            ThreadContexts.SetError(WEAVE_E_INVALID, "weave_tls_get: size is 0\0"u8);
            return null;
        }
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out int error);
        if (ctx == null)
        {
            ThreadContexts.SetError(error, error == WEAVE_E_STATE
                ? "weave_tls_get: the thread has already destroyed its thread-local values\0"u8
                : "weave_tls_get: out of memory\0"u8);
            return null;
        }
        ThreadStorage* ts = Get(ctx);
        if (ts == null)
        {
            ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_get: out of memory\0"u8);
            return null;
        }
        if (ts->TearingDown != 0)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_tls_get: the thread is destroying its thread-local values\0"u8);
            return null;
        }
        KeyEntry* entry = FindKey(ts, key, length, hash);
        if (entry == null)
        {
            ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_get: out of memory\0"u8);
            return null;
        }
        if (StorageKeys.CheckShape(entry, KeyKind.ThreadLocal, size, fn) != WEAVE_OK)
        {
            return null;
        }

        // Linear in the number of keys this thread uses; with the handful of
        // keys a program has this beats any index (and needs no global numbering).
        int index = Find(ts, entry);
        if (index >= 0)
        {
            Value* v = &ts->Values[index];
            if (v->State == SlotReady)
            {
                return v->Pointer;
            }
            ThreadContexts.BeginError("init asked for its own key\0"u8)
                .Append("weave_tls_get: the init of key \""u8).Append(entry->Key, entry->Length, 64)
                .Append("\" asked for its own key on the same thread"u8);
            return null;
        }

        if (ts->ValueCount == ts->ValueCapacity)
        {
            int capacity = ts->ValueCapacity == 0 ? 8 : ts->ValueCapacity * 2;
            if (capacity <= 0)
            {
                ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_get: out of memory\0"u8);
                return null;
            }
            Value* grown = (Value*)Libc.Realloc(ts->Values, (nuint)capacity * (nuint)sizeof(Value));
            if (grown == null)
            {
                ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_get: out of memory\0"u8);
                return null;
            }
            ts->Values = grown;
            ts->ValueCapacity = capacity;
        }
        void* pointer = Libc.Calloc(1, size);
        if (pointer == null)
        {
            ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_get: out of memory for the value\0"u8);
            return null;
        }
        // Recorded (as initialising) before init runs, so that init asking for
        // its own key is detected, and values init creates come after it in
        // creation order. init may grow Values: index, not pointer, from here.
        index = ts->ValueCount++;
        ts->Values[index].Key = entry;
        ts->Values[index].Pointer = pointer;
        ts->Values[index].State = SlotInitialising;
        // The generation the value is made for. Get(ctx) above brought the
        // thread to the registry's generation; a reset since then (by another
        // thread, even before init started) counts as overlapping init.
        ulong generation = ts->Generation;
        int result = init != null ? init(pointer, arg) : 0;
        if (ts->Generation != generation || StorageKeys.Generation != generation)
        {
            // The storage was reset while init ran: by init itself on this
            // thread (Reset dropped this thread's values and moved it to the
            // new generation), or by another thread. The value belongs to no
            // generation: not returned, not kept. Drops skip slots that are
            // not ready, so it is freed here, exactly once, now that init is done.
            if (ts->Generation == generation)
            {
                DropStale(ts); // this thread's other old values too, as its next call would
            }
            Libc.Free(pointer);
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_tls_get: the storage was reset while init ran\0"u8);
            return null;
        }
        if (result != 0)
        {
            RemoveAt(ts, index);
            Libc.Free(pointer);
            ThreadContexts.BeginError("init failed\0"u8)
                .Append("weave_tls_get: init of key \""u8).Append(entry->Key, entry->Length, 64)
                .Append("\" failed with "u8).Append((long)result);
            return null;
        }
        ts->Values[index].State = SlotReady;
        return pointer;
    }

    private static void RemoveAt(ThreadStorage* ts, int index)
    {
        for (int i = index + 1; i < ts->ValueCount; i++)
        {
            ts->Values[i - 1] = ts->Values[i];
        }
        ts->ValueCount--;
    }

    /// <summary>weave_tls_set_destructor.</summary>
    internal static int SetDestructor(byte* key, delegate* unmanaged<void*, void> destructor)
    {
        ReadOnlySpan<byte> fn = "weave_tls_set_destructor"u8;
        if (!StorageKeys.Measure(key, fn, out int length, out ulong hash))
        {
            return WEAVE_E_INVALID;
        }
        if (destructor == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_tls_set_destructor: destructor is NULL\0"u8);
        }
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out _);
        KeyEntry* entry = FindKey(ctx, key, length, hash);
        if (entry == null)
        {
            return ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_tls_set_destructor: out of memory\0"u8);
        }
        int shape = StorageKeys.CheckShape(entry, KeyKind.ThreadLocal, 0, fn);
        if (shape != WEAVE_OK)
        {
            return shape;
        }
        // The destructor's shared object stays loaded while the key has it
        // (any thread's exit may call it), even through a dlclose; the one it
        // replaces is let go.
        int pin = ModulePins.Pin(destructor, ctx) + 1;
        // Release: a thread exiting later reads it with Volatile.Read.
        Volatile.Write(ref entry->Destructor, (nint)destructor);
        ModulePins.Unpin(Interlocked.Exchange(ref entry->DestructorPin, pin) - 1);
        return WEAVE_OK;
    }

    /// <summary>
    /// Destroys the calling thread's values in reverse creation order: each
    /// destructor (if the key has one) runs before the memory is freed.
    /// Returns how many values were dropped.
    /// </summary>
    private static int DestroyAll(ThreadStorage* ts)
    {
        int dropped = 0;
        if (ts->Generation != StorageKeys.Generation)
        {
            DropStale(ts);
            return 0;
        }
        ts->TearingDown = 1;
        for (int i = ts->ValueCount - 1; i >= 0; i--)
        {
            Value v = ts->Values[i];
            if (v.State != SlotReady)
            {
                continue;
            }
            var destructor = (delegate* unmanaged<void*, void>)Volatile.Read(ref v.Key->Destructor);
            if (destructor != null)
            {
                destructor(v.Pointer);
            }
            Libc.Free(v.Pointer);
            dropped++;
        }
        ts->ValueCount = 0;
        ts->TearingDown = 0;
        return dropped;
    }

    /// <summary>Thread exit, after the thread-exit destructors: destroy and free everything.</summary>
    internal static void OnThreadExit(ThreadContext* ctx)
    {
        ThreadStorage* ts = (ThreadStorage*)ctx->Storage;
        if (ts == null)
        {
            return;
        }
        DestroyAll(ts);
        ts->TearingDown = 1; // stays set: the thread is going away
        ctx->Storage = null;
        Libc.Free(ts->Values);
        Libc.Free(ts->Cache);
        Libc.Free(ts);
    }

    /// <summary>weave_storage_reset.</summary>
    internal static int Reset()
    {
        int dropped = 0;
        ThreadContext* ctx = ThreadContexts.Peek();
        ThreadStorage* ts = ctx != null ? (ThreadStorage*)ctx->Storage : null;
        if (ts != null && ts->TearingDown != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_STATE, "weave_storage_reset: called while this thread destroys its values\0"u8);
        }
        if (ts != null)
        {
            // The calling thread's destructors run while they are still known.
            dropped += DestroyAll(ts);
        }
        dropped += StorageKeys.ResetAll();
        if (ts != null)
        {
            ts->Generation = StorageKeys.Generation;
        }
        return dropped;
    }
}
