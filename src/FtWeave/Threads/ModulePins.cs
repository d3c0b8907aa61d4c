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
/// repeated registration one compare-and-swap; the first registration of a
/// destructor on a thread pays dladdr and dlopen (both take the loader lock,
/// outside every lock of this library).
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
        public nuint Base;    // dli_fbase of the object; 0 = slot unused
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
        if (ctx != null && ctx->PinCode == code && ctx->PinSlot != None)
        {
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
        Dl.DlInfo info;
        if (Dl.Addr(code, &info) == 0 || info.dli_fbase == null || info.dli_fname == null)
        {
            return None;
        }
        // A new reference first (outside our lock: dlopen takes the loader
        // lock, which a thread in a constructor may hold while it waits for us).
        // NULL for the program itself and for anything that is not a loaded
        // shared object: nothing to pin.
        void* handle = Dl.Open(info.dli_fname, Dl.RTLD_NOLOAD | Dl.RTLD_LAZY);
        if (handle == null)
        {
            return None;
        }
        int found = CountIn((nuint)info.dli_fbase, handle, out bool keepHandle, out ulong generation);
        if (!keepHandle)
        {
            // Already pinned by an earlier registration (or no room): ours is
            // not needed. Closing it only drops the count we added.
            Dl.Close(handle);
        }
        if (found != None && ctx != null)
        {
            ctx->PinCode = code;
            ctx->PinSlot = found;
            ctx->PinGeneration = (uint)generation;
        }
        return found;
    }

    /// <summary>
    /// Finds or makes the slot of the object at <paramref name="fbase"/> and
    /// adds one registration; <paramref name="keepHandle"/> says whether
    /// <paramref name="handle"/> became the slot's reference.
    /// </summary>
    private static int CountIn(nuint fbase, void* handle, out bool keepHandle, out ulong generation)
    {
        keepHandle = false;
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
                if (slots[i].Base == fbase)
                {
                    found = i;
                    break;
                }
            }
            if (found == None && s_used < Capacity)
            {
                found = s_used;
                slots[found].Base = fbase;
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
                        // Not pinned: our reference becomes the slot's. Nobody
                        // can take the fast path meanwhile (it needs a count
                        // above 0), and an unpinner that brought it to 0 has
                        // already read the handle it closes.
                        slot->Handle = handle;
                        ulong pinned = (word & ~CountMask) + OneGeneration + 1;
                        if (Interlocked.CompareExchange(ref slot->Word, pinned, word) == word)
                        {
                            keepHandle = true;
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
