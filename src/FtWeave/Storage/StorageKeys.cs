using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Storage;

/// <summary>What a key names: decided by its first use, then fixed.</summary>
internal enum KeyKind
{
    Unknown = 0,     // only weave_tls_set_destructor has named it so far
    ThreadLocal = 1,
    Static = 2,
}

/// <summary>
/// One registered key. Allocated once in native memory and never freed, so a
/// pointer to it may be cached by any thread without a lock. Key, Length and
/// Hash never change after publication; the other fields are written under
/// the registry lock and read with Volatile where read without it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KeyEntry
{
    public byte* Key;          // the registry's own NUL-terminated copy
    public int Length;
    public ulong Hash;
    public nuint Size;         // 0 until the first get fixes it
    public int Kind;           // KeyKind
    /// <summary>delegate* unmanaged&lt;void*, void&gt; for thread-local values, or 0.</summary>
    public nint Destructor;
    /// <summary>The pin keeping the destructor's shared object loaded (Threads/ModulePins.cs) + 1, or 0.</summary>
    public int DestructorPin;
    /// <summary>Static: the value once initialised (NULL before, and after a reset).</summary>
    public void* StaticValue;
    /// <summary>Static: 0 none, 1 initialising, 2 ready. 4 bytes: the parking-lot word waiters sleep on.</summary>
    public int StaticState;
    /// <summary>Static, while initialising: 1 once a thread parked (or is about to park) on StaticState.</summary>
    public int StaticWaiters;
    /// <summary>Static, while initialising: the initialiser (weave_thread_id) ...</summary>
    public ulong StaticInitThread;
    /// <summary>... the process it runs in (<see cref="RegistryLock.Incarnation"/>) ...</summary>
    public int StaticInitIncarnation;
    /// <summary>... and its attempt, unique in the process and its fork descendants.</summary>
    public ulong StaticInitToken;
}

/// <summary>
/// The process-wide key registry: an open-addressing hash table of
/// <see cref="KeyEntry"/> pointers under one <see cref="RegistryLock"/>. Only
/// first uses on a thread come here; after that, threads find entries in
/// their own cache (<see cref="ThreadLocalValues"/>).
///
/// fork: there is no pthread_atfork handler (see RegistryLock for why). A
/// child may inherit the registry in the middle of a parent thread's
/// operation, so every operation writes in an order whose every prefix the
/// child's <see cref="AfterFork"/> can complete or ignore: an entry is fully
/// written before its slot is; a grown table is fully written before one
/// store publishes it; a static's pointer is cleared before it is freed; a
/// reset is marked as running while it runs.
/// </summary>
internal static unsafe class StorageKeys
{
    internal const int MaxKeyLength = 1024;

    /// <summary>A table: the header, then Capacity slots (KeyEntry*).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Table
    {
        public int Capacity;   // power of two
        public int Count;
    }

    private static nint s_table;          // Table*: 0 until the first key; replaced whole by Grow
    private static ulong s_generation;    // bumped by weave_storage_reset
    private static int s_resetting;       // 1 while ResetAll runs (a fork child finishes it)
    private static ulong s_initTokens;    // the last StaticInitToken handed out

    internal static ulong Generation => Volatile.Read(ref s_generation);

    private static KeyEntry** Slots(Table* table) => (KeyEntry**)(table + 1);

    internal static void Lock() => RegistryLock.Enter();

    internal static void Unlock() => RegistryLock.Exit();

    /// <summary>A fresh StaticInitToken; under the lock.</summary>
    internal static ulong NextInitToken() => ++s_initTokens;

    /// <summary>
    /// In a fork child, under the lock, before any other registry operation:
    /// completes or ignores what a parent thread was doing at the moment of
    /// fork. A table mid-Grow: the new one was either published or not (a
    /// leaked copy at worst). An entry mid-insert: its slot was either written
    /// or not; the count may be one short, so it is recounted. A reset in
    /// progress is finished here, as if fork had happened after it. Statics
    /// whose init ran on a parent thread are handled where they are next used
    /// (StaticValues: their StaticInitIncarnation is older than this process's).
    /// </summary>
    internal static void AfterFork()
    {
        Table* table = (Table*)s_table;
        if (table != null)
        {
            int count = 0;
            for (int i = 0; i < table->Capacity; i++)
            {
                if (Slots(table)[i] != null)
                {
                    count++;
                }
            }
            table->Count = count;
        }
        if (s_resetting != 0)
        {
            ResetEntries();
            Volatile.Write(ref s_generation, s_generation + 1);
            Volatile.Write(ref s_resetting, 0);
        }
    }

    /// <summary>
    /// Measures and hashes a key (FNV-1a 64), reading at most MaxKeyLength + 1
    /// bytes. Returns false (with the error recorded) for NULL, empty or too long.
    /// </summary>
    internal static bool Measure(byte* key, ReadOnlySpan<byte> function, out int length, out ulong hash)
    {
        length = 0;
        hash = 14695981039346656037UL;
        if (key == null)
        {
            ThreadContexts.BeginError("key is NULL\0"u8).Append(function).Append(": key is NULL"u8);
            return false;
        }
        while (length <= MaxKeyLength && key[length] != 0)
        {
            hash = (hash ^ key[length]) * 1099511628211UL;
            length++;
        }
        if (length == 0 || length > MaxKeyLength)
        {
            ThreadContexts.BeginError("bad key\0"u8).Append(function)
                .Append(length == 0 ? ": key is empty"u8 : ": key is longer than 1024 bytes"u8);
            return false;
        }
        return true;
    }

    internal static bool Matches(KeyEntry* entry, byte* key, int length, ulong hash) =>
        entry->Hash == hash && entry->Length == length &&
        new ReadOnlySpan<byte>(entry->Key, length).SequenceEqual(new ReadOnlySpan<byte>(key, length));

    /// <summary>Finds or creates the entry; NULL only when memory ran out.</summary>
    internal static KeyEntry* FindOrAdd(byte* key, int length, ulong hash)
    {
        Lock();
        try
        {
            Table* table = (Table*)s_table;
            if (table != null)
            {
                int mask = table->Capacity - 1;
                for (int i = (int)hash & mask; Slots(table)[i] != null; i = (i + 1) & mask)
                {
                    if (Matches(Slots(table)[i], key, length, hash))
                    {
                        return Slots(table)[i];
                    }
                }
            }
            if (table == null || (table->Count + 1) * 2 > table->Capacity)
            {
                table = Grow(table);
                if (table == null)
                {
                    return null;
                }
            }
            KeyEntry* entry = (KeyEntry*)Libc.Calloc(1, (nuint)sizeof(KeyEntry));
            byte* copy = (byte*)Libc.Malloc((nuint)length + 1);
            if (entry == null || copy == null)
            {
                Libc.Free(entry);
                Libc.Free(copy);
                return null;
            }
            new ReadOnlySpan<byte>(key, length).CopyTo(new Span<byte>(copy, length));
            copy[length] = 0;
            entry->Key = copy;
            entry->Length = length;
            entry->Hash = hash;
            // The entry is complete before its slot is written (a fork child
            // sees either no slot or a whole entry); the count follows.
            Insert(table, entry);
            table->Count++;
            return entry;
        }
        finally
        {
            Unlock();
        }
    }

    private static void Insert(Table* table, KeyEntry* entry)
    {
        int mask = table->Capacity - 1;
        int i = (int)entry->Hash & mask;
        while (Slots(table)[i] != null)
        {
            i = (i + 1) & mask;
        }
        // Release: the entry's fields before the pointer to it.
        Volatile.Write(ref *(nint*)&Slots(table)[i], (nint)entry);
    }

    /// <summary>Replaces the table with one twice as large; NULL (nothing changed) when out of memory.</summary>
    private static Table* Grow(Table* old)
    {
        int capacity = old == null ? 64 : old->Capacity * 2;
        if (capacity <= 0 || capacity > (1 << 28))
        {
            return null; // 2^27 keys (gigabytes of entries): treated as out of memory
        }
        Table* table = (Table*)Libc.Calloc(1, (nuint)sizeof(Table) + (nuint)capacity * (nuint)sizeof(KeyEntry*));
        if (table == null)
        {
            return null;
        }
        table->Capacity = capacity;
        if (old != null)
        {
            for (int i = 0; i < old->Capacity; i++)
            {
                if (Slots(old)[i] != null)
                {
                    Insert(table, Slots(old)[i]);
                }
            }
            table->Count = old->Count;
        }
        // One store publishes the complete table: a fork child has the old or
        // the new one (and leaks the other), never a half-built one. A full
        // barrier, not only a release: free's own writes (the old table on a
        // free list) must not become visible before the table is unpublished,
        // or a child could have both.
        Interlocked.Exchange(ref s_table, (nint)table);
        Libc.Free(old);
        return table;
    }

    /// <summary>
    /// Fixes the key's kind and size on first use and checks them on every
    /// other. Lock-free when both are already fixed (they never change again).
    /// </summary>
    internal static int CheckShape(KeyEntry* entry, KeyKind kind, nuint size, ReadOnlySpan<byte> function)
    {
        int knownKind = Volatile.Read(ref entry->Kind);
        nuint knownSize = Volatile.Read(ref entry->Size);
        if (knownKind == (int)kind && knownSize == size)
        {
            return WEAVE_OK;
        }
        if (knownKind == (int)KeyKind.Unknown || knownSize == 0)
        {
            Lock();
            if (entry->Kind == (int)KeyKind.Unknown)
            {
                Volatile.Write(ref entry->Kind, (int)kind);
            }
            if (entry->Size == 0 && size != 0)
            {
                Volatile.Write(ref entry->Size, size);
            }
            knownKind = entry->Kind;
            knownSize = entry->Size;
            Unlock();
        }
        if (knownKind != (int)kind && kind != KeyKind.Unknown)
        {
            ThreadContexts.BeginError("key used as both thread-local and static\0"u8)
                .Append(function).Append(": key \""u8).Append(entry->Key, entry->Length, 64)
                .Append(knownKind == (int)KeyKind.Static ? "\" is a static key, not thread-local"u8 : "\" is a thread-local key, not static"u8);
            return WEAVE_E_MISMATCH;
        }
        if (size != 0 && knownSize != size)
        {
            ThreadContexts.BeginError("key reused with a different size\0"u8)
                .Append(function).Append(": key \""u8).Append(entry->Key, entry->Length, 64)
                .Append("\" has size "u8).Append((ulong)knownSize).Append(", asked with size "u8).Append((ulong)size);
            return WEAVE_E_MISMATCH;
        }
        return WEAVE_OK;
    }

    /// <summary>
    /// weave_storage_reset's process-wide part, under the registry lock:
    /// frees every static, forgets every destructor, and bumps the generation
    /// so that every thread drops its cached values at its next call.
    /// Returns how many statics were freed.
    /// </summary>
    internal static int ResetAll()
    {
        Lock();
        // Marked while running: a fork child that inherits a half-done reset
        // finishes it (AfterFork) instead of keeping half the old values. A
        // full barrier: the mark is visible before any entry is cleared.
        Interlocked.Exchange(ref s_resetting, 1);
        int dropped = ResetEntries();
        // Release: a thread that sees the new generation sees the cleared
        // entries; then the mark goes (release: after the generation).
        Volatile.Write(ref s_generation, s_generation + 1);
        Volatile.Write(ref s_resetting, 0);
        Unlock();
        return dropped;
    }

    private static int ResetEntries()
    {
        int dropped = 0;
        Table* table = (Table*)s_table;
        for (int i = 0; table != null && i < table->Capacity; i++)
        {
            KeyEntry* entry = Slots(table)[i];
            if (entry == null)
            {
                continue;
            }
            Volatile.Write(ref entry->Destructor, 0);
            // The destructor is forgotten: its object may unload now.
            Threads.ModulePins.Unpin(Interlocked.Exchange(ref entry->DestructorPin, 0) - 1);
            void* value = entry->StaticValue;
            if (value != null)
            {
                // Cleared before freed, with a full barrier (free's writes must
                // not overtake the clearing): a fork child never holds a pointer
                // to memory its heap has as free. Fast-path readers of a static
                // being reset are the caller's bug (the reset contract).
                Volatile.Write(ref entry->StaticState, StaticValues.None);
                Interlocked.Exchange(ref *(nint*)&entry->StaticValue, 0);
                Libc.Free(value);
                dropped++;
            }
            else if (entry->StaticState == StaticValues.Ready)
            {
                entry->StaticState = StaticValues.None;
            }
            // An init in progress (Busy, no value yet) is left alone: it sees
            // the new generation when it finishes and does not publish.
        }
        return dropped;
    }
}
