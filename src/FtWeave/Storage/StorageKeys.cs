using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;
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
    /// <summary>Static: the value once initialised (NULL before, and after a reset).</summary>
    public void* StaticValue;
    /// <summary>Static: 0 none, 1 initialising, 2 ready. 4 bytes: the parking-lot word waiters sleep on.</summary>
    public int StaticState;
    public ulong StaticInitThread;
}

/// <summary>
/// The process-wide key registry: an open-addressing hash table of
/// <see cref="KeyEntry"/> pointers under one <see cref="WordLock"/>. Only
/// first uses on a thread come here; after that, threads find entries in
/// their own cache (<see cref="ThreadLocalValues"/>).
/// </summary>
internal static unsafe class StorageKeys
{
    internal const int MaxKeyLength = 1024;

    private static nuint s_lock;          // WordLock
    private static KeyEntry** s_table;
    private static int s_capacity;        // power of two
    private static int s_count;
    private static ulong s_generation;    // bumped by weave_storage_reset

    private static int s_forkHandlersInstalled;

    internal static ulong Generation => Volatile.Read(ref s_generation);

    internal static void Lock()
    {
        if (Volatile.Read(ref s_forkHandlersInstalled) == 0)
        {
            InstallForkHandlers();
        }
        fixed (nuint* l = &s_lock)
        {
            WordLock.Lock(l);
        }
    }

    /// <summary>
    /// fork() safety, installed before the registry lock is first taken. A
    /// fork child has only the forking thread: without these handlers a lock
    /// held by another thread at the moment of fork, or a static whose init
    /// was running on another thread, would never be released in the child,
    /// and its first get of a new key (or of that static) would hang forever.
    /// As glibc does for malloc's arenas: the prepare handler takes the
    /// registry lock (so the table is consistent when memory is copied; the
    /// lock is never held while user code runs, so this only waits for a
    /// short table operation), the parent releases it, the child resets it
    /// and hands statics whose initialiser is another (now absent) thread
    /// back to "not initialised": the child's next get runs init itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InstallForkHandlers()
    {
        if (Interlocked.Exchange(ref s_forkHandlersInstalled, 1) == 0)
        {
            Pthread.AtFork(&BeforeFork, &AfterForkInParent, &AfterForkInChild);
        }
    }

    [UnmanagedCallersOnly]
    private static void BeforeFork()
    {
        fixed (nuint* l = &s_lock)
        {
            WordLock.Lock(l);
        }
    }

    [UnmanagedCallersOnly]
    private static void AfterForkInParent() => Unlock();

    [UnmanagedCallersOnly]
    private static void AfterForkInChild()
    {
        // The waiters stacked in the lock word are threads of the parent.
        Volatile.Write(ref s_lock, 0);
        ulong me = ThreadIds.Current();
        for (int i = 0; i < s_capacity; i++)
        {
            KeyEntry* entry = s_table[i];
            // An init running on the forking thread itself (an init that
            // forks) continues in the child and publishes as usual.
            if (entry != null && entry->StaticState == StaticValues.Busy && entry->StaticInitThread != me)
            {
                entry->StaticState = StaticValues.None;
                entry->StaticInitThread = 0;
            }
        }
    }

    internal static void Unlock()
    {
        fixed (nuint* l = &s_lock)
        {
            WordLock.Unlock(l);
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
            if (s_capacity != 0)
            {
                for (int i = (int)hash & (s_capacity - 1); s_table[i] != null; i = (i + 1) & (s_capacity - 1))
                {
                    if (Matches(s_table[i], key, length, hash))
                    {
                        return s_table[i];
                    }
                }
            }
            if ((s_count + 1) * 2 > s_capacity && !Grow())
            {
                return null;
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
            Insert(s_table, s_capacity, entry);
            s_count++;
            return entry;
        }
        finally
        {
            Unlock();
        }
    }

    private static void Insert(KeyEntry** table, int capacity, KeyEntry* entry)
    {
        int i = (int)entry->Hash & (capacity - 1);
        while (table[i] != null)
        {
            i = (i + 1) & (capacity - 1);
        }
        table[i] = entry;
    }

    private static bool Grow()
    {
        int capacity = s_capacity == 0 ? 64 : s_capacity * 2;
        KeyEntry** table = (KeyEntry**)Libc.Calloc((nuint)capacity, (nuint)sizeof(KeyEntry*));
        if (table == null)
        {
            return false;
        }
        for (int i = 0; i < s_capacity; i++)
        {
            if (s_table[i] != null)
            {
                Insert(table, capacity, s_table[i]);
            }
        }
        Libc.Free(s_table);
        s_table = table;
        s_capacity = capacity;
        return true;
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
        int dropped = 0;
        Lock();
        for (int i = 0; i < s_capacity; i++)
        {
            KeyEntry* entry = s_table[i];
            if (entry == null)
            {
                continue;
            }
            Volatile.Write(ref entry->Destructor, 0);
            if (entry->StaticValue != null)
            {
                Libc.Free(entry->StaticValue);
                Volatile.Write(ref *(nint*)&entry->StaticValue, 0);
                dropped++;
            }
            if (entry->StaticState == StaticValues.Ready)
            {
                entry->StaticState = StaticValues.None;
            }
        }
        // Release: a thread that sees the new generation sees the cleared entries.
        Volatile.Write(ref s_generation, s_generation + 1);
        Unlock();
        return dropped;
    }
}
