using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;

namespace FtWeave.Threads;

/// <summary>
/// Keeps a shared object loaded while the library holds a pointer to code in
/// it that it will call later (a thread-exit destructor, a wvls key's or a
/// storage key's destructor), as glibc does for C++ <c>thread_local</c>
/// destructors: a plugin with live registrations stays mapped through a
/// <c>dlclose</c>, and unloads once they have run or been unregistered.
///
/// A pin is one <c>dlopen(RTLD_NOLOAD)</c> reference, shared by every
/// registration into the same object and counted in a slot of a fixed table:
///
///   slot word (64 bits)          | meaning
///   -----------------------------+--------------------------------------------
///   generation &lt;&lt; 32 | 0          | not pinned (no reference held)
///   generation &lt;&lt; 32 | n (n &gt; 0) | pinned: one dlopen reference, n registrations
///
/// The generation grows each time a slot goes from 0 to pinned, so a thread's
/// cached (destructor, slot, generation) is valid exactly while the word still
/// shows that generation with n &gt; 0: the object has stayed loaded since the
/// cache was filled, so the destructor is still inside it. That makes a
/// repeated registration one compare-and-swap; finding the object is
/// _dl_find_object (no lock), and a registration that finds no pin pays a
/// dlopen(RTLD_NOLOAD) (the loader lock, taken outside every lock of ours).
/// </summary>
internal static unsafe class ModulePins
{
    /// <summary>No pin: the code is in the program, in a library that cannot be
    /// unloaded, or the table is full.</summary>
    internal const int None = -1;

    private const int Capacity = 256;
    private const ulong CountMask = 0xFFFF_FFFFUL;
    private const ulong OneGeneration = 1UL << 32;

    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        public ulong Word;    // generation << 32 | registrations
        public nuint Base;    // the object's struct link_map; 0 = slot unused
        public void* Handle;  // the dlopen reference while pinned
    }

    private static int s_used;
    private static nuint s_lock; // WordLock: slot allocation and 0 -> pinned only

    /// <summary>
    /// Takes a pin on the object that contains <paramref name="code"/>; returns
    /// the slot (for <see cref="Unpin"/>) or <see cref="None"/>. The caller's
    /// thread context, if any, caches the last lookup.
    /// </summary>
    internal static int Pin(void* code, ThreadContext* ctx)
    {
        if (ctx != null && ctx->PinCode == code)
        {
            if (ctx->PinSlot == None)
            {
                // Code that needs no pin (the program, or no shared object)
                // stays so: nothing can unload it.
                return None;
            }
            Slot* cached = Slots + ctx->PinSlot;
            ulong word = Volatile.Read(ref cached->Word);
            // Same generation and pinned: the object has not been unloaded
            // since the cache was filled. The CAS keeps it that way (an unpin
            // to 0 would change the word).
            if ((word >> 32) == ctx->PinGeneration && (word & CountMask) != 0 &&
                Interlocked.CompareExchange(ref cached->Word, word + 1, word) == word)
            {
                return ctx->PinSlot;
            }
        }
        return PinSlow(code, ctx);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int PinSlow(void* code, ThreadContext* ctx)
    {
        int found = None;
        ulong generation = 0;
        Dl.FindObjectResult where;
        // The program itself ("" as its name) is never unloaded, nor is
        // anything that is not inside a loaded object: nothing to pin.
        if (Dl.FindObject(code, &where) == 0 && where.dlfo_link_map != null &&
            where.dlfo_link_map->l_name != null && where.dlfo_link_map->l_name[0] != 0)
        {
            // The reference is taken before our lock, never under it: dlopen
            // takes the loader lock, and a plugin's constructor (which runs
            // with the loader lock held) may be registering a destructor and
            // waiting for our lock. The object holds the caller's code, so it
            // is loaded (code from an object being unloaded is already broken).
            void* handle = Dl.Open(where.dlfo_link_map->l_name, Dl.RTLD_NOLOAD | Dl.RTLD_LAZY);
            if (handle != null)
            {
                found = CountIn(where.dlfo_link_map, handle, out bool kept, out generation);
                if (!kept)
                {
                    // The slot was pinned already (or there was no room): only
                    // our extra count goes.
                    Dl.Close(handle);
                }
            }
        }
        if (ctx != null)
        {
            // Cached either way: a table that is full stays full, and the
            // program's code never needs a pin.
            ctx->PinCode = code;
            ctx->PinSlot = found;
            ctx->PinGeneration = (uint)generation;
        }
        return found;
    }

    /// <summary>
    /// Finds or makes the slot of <paramref name="map"/> and adds one
    /// registration; <paramref name="kept"/> says whether <paramref name="handle"/>
    /// became the slot's reference (it was not pinned).
    /// </summary>
    private static int CountIn(Dl.LinkMap* map, void* handle, out bool kept, out ulong generation)
    {
        kept = false;
        generation = 0;
        Slot* slots = Slots;
        if (slots == null)
        {
            return None;
        }
        int found = None;
        // Statics of NativeAOT code never move; fixed only satisfies the compiler.
        fixed (nuint* tableLock = &s_lock)
        {
            WordLock.Lock(tableLock);
            for (int i = 0; i < s_used; i++)
            {
                if (slots[i].Base == (nuint)map)
                {
                    found = i;
                    break;
                }
            }
            if (found == None && s_used < Capacity)
            {
                found = s_used;
                slots[found].Base = (nuint)map;
                slots[found].Word = 0;
                s_used++;
            }
            if (found != None)
            {
                Slot* slot = slots + found;
                while (true)
                {
                    ulong word = Volatile.Read(ref slot->Word);
                    if ((word & CountMask) == 0)
                    {
                        // Not pinned: our reference becomes the slot's. The fast
                        // path cannot act meanwhile (it needs a count above 0),
                        // and an unpinner that brought the count to 0 read the
                        // handle it closes before its CAS.
                        slot->Handle = handle;
                        ulong pinned = (word & ~CountMask) + OneGeneration + 1;
                        if (Interlocked.CompareExchange(ref slot->Word, pinned, word) == word)
                        {
                            kept = true;
                            generation = pinned >> 32;
                            break;
                        }
                    }
                    else if (Interlocked.CompareExchange(ref slot->Word, word + 1, word) == word)
                    {
                        generation = word >> 32;
                        break;
                    }
                }
            }
            WordLock.Unlock(tableLock);
        }
        return found;
    }

    /// <summary>Drops one registration's pin; the last one closes the reference.</summary>
    internal static void Unpin(int slotIndex)
    {
        if (slotIndex == None)
        {
            return;
        }
        Slot* slot = Slots + slotIndex;
        while (true)
        {
            ulong word = Volatile.Read(ref slot->Word);
            // Read before the CAS that may make the slot re-pinnable by another
            // thread, which would overwrite it.
            void* handle = slot->Handle;
            if (Interlocked.CompareExchange(ref slot->Word, word - 1, word) == word)
            {
                if ((word & CountMask) == 1)
                {
                    // Outside every lock: the object's destructors may run.
                    Dl.Close(handle);
                }
                return;
            }
        }
    }

    private static Slot* Slots
    {
        get
        {
            Slot* slots = (Slot*)Volatile.Read(ref s_slotsRaw);
            return slots != null ? slots : Allocate();
        }
    }

    // Slot*, native and never freed: registrations of any thread refer to
    // slots by index. (nint: pointers cannot be Interlocked type arguments.)
    private static nint s_slotsRaw;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Slot* Allocate()
    {
        nuint bytes = (nuint)(Capacity * sizeof(Slot));
        Slot* fresh = (Slot*)Libc.Calloc(1, bytes);
        if (fresh == null)
        {
            return null;
        }
        nint previous = Interlocked.CompareExchange(ref s_slotsRaw, (nint)fresh, 0);
        if (previous != 0)
        {
            Libc.Free(fresh);
            return (Slot*)previous;
        }
        return fresh;
    }
}
