using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using FtWeave.Abi;
using FtWeave.Threads;

namespace FtWeave.Diagnostics;

/// <summary>WEAVE_DEBUG_* (ft_weave.h, "Diagnostics: debug mode").</summary>
internal static class DebugFlags
{
    internal const int LockOrder = 1;
    internal const int Owner = 2;
    internal const int LiveDeadlock = 4;
    internal const int FailOnCycle = 8;
    internal const int Watchdog = 16;
    internal const int All = LockOrder | Owner | LiveDeadlock;
    internal const int Known = LockOrder | Owner | LiveDeadlock | FailOnCycle | Watchdog;
}

/// <summary>What a held-lock entry or a graph node is.</summary>
internal static class LockKind
{
    internal const int Mutex = 1;
    internal const int Recursive = 2;
    internal const int RwRead = 3;
    internal const int RwWrite = 4;

    /// <summary>A weave_mutex_t held by an active critical section.</summary>
    internal const int Section = 5;

    internal static string Name(int kind) => kind switch
    {
        Mutex => "mutex",
        Recursive => "recursive mutex",
        RwRead => "rwmutex (read)",
        RwWrite => "rwmutex (write)",
        Section => "mutex (critical section)",
        _ => "lock",
    };

    /// <summary>
    /// Whether the lock at <paramref name="address"/> still looks held in the
    /// way the entry says. An entry whose lock was released through an
    /// unchecked inline path (code compiled without -DFT_WEAVE_DEBUG) fails
    /// this and is dropped. Relaxed reads: a hint, the entry's own thread is
    /// the only one that removes it.
    /// </summary>
    internal static unsafe bool StillHeld(nint address, int kind, ulong thread)
    {
        switch (kind)
        {
            case Mutex:
            case Section:
                return Volatile.Read(ref *(byte*)address) == Locks.Mutex.Locked;
            case Recursive:
                return Volatile.Read(ref ((weave_recursive_mutex_t*)address)->thread) == thread;
            case RwWrite:
                return (Volatile.Read(ref *(nuint*)address) & 1) != 0;
            case RwRead:
                return (Volatile.Read(ref *(nuint*)address) >> 2) != 0;
            default:
                return false;
        }
    }
}

/// <summary>
/// One thread's debug record: the locks it holds through checked paths (in
/// acquisition order) and the lock it is blocked acquiring. A slot of the
/// fixed native table <see cref="DebugThreads"/>; other threads read it
/// without locking (the live-deadlock check and owner checks), so the owner
/// publishes an entry before the count that covers it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct DebugThread
{
    internal const int MaxHeld = 32;

    /// <summary>Offset 0: 1 while a thread owns the slot; src/native/debug.c stores 0 at thread exit.</summary>
    public int InUse;
    public int Tid;
    public ulong ThreadId;
    public nint WaitingOn;
    public nint WaitingSite;
    public int WaitingKind;
    public int HeldCount;
    /// <summary>Non-zero while this thread runs the report callback: its lock calls are not checked.</summary>
    public int Reporting;
    public int Padding;
    public fixed long HeldLock[MaxHeld];
    public fixed long HeldSite[MaxHeld];
    public fixed int HeldKind[MaxHeld];
}

/// <summary>The table of per-thread records (allocated when debug mode is first turned on, never freed).</summary>
internal static unsafe class DebugThreads
{
    internal const int Capacity = 1024;
    internal static DebugThread* s_table;
    /// <summary>Slots [0, s_high) have been claimed at least once.</summary>
    internal static int s_high;
    private static int s_fullReported;
    private static int s_overflowReported;

    /// <summary>Called under DebugMode's set lock.</summary>
    internal static bool Allocate()
    {
        if (s_table != null)
        {
            return true;
        }
        var table = (DebugThread*)NativeMemory.AllocZeroed((nuint)Capacity, (nuint)sizeof(DebugThread));
        if (table == null)
        {
            return false;
        }
        // Full fence: the zeroed slots are visible before the pointer that leads to them.
        Interlocked.MemoryBarrier();
        s_table = table;
        return true;
    }

    /// <summary>The calling thread's record, claimed on first use; null when none is left or while it reports.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static DebugThread* Current()
    {
        DebugThread* self = DebugNative.Record();
        if (self == null)
        {
            self = Claim();
        }
        return self != null && self->Reporting == 0 ? self : null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DebugThread* Claim()
    {
        DebugThread* table = s_table;
        if (table == null)
        {
            return null;
        }
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < Capacity; i++)
            {
                DebugThread* r = table + i;
                if (Volatile.Read(ref r->InUse) == 0 && Interlocked.CompareExchange(ref r->InUse, 1, 0) == 0)
                {
                    r->Tid = DebugNative.GetTid();
                    r->ThreadId = ThreadIds.Current();
                    r->WaitingOn = 0;
                    r->HeldCount = 0;
                    r->Reporting = 0;
                    int high = Volatile.Read(ref s_high);
                    while (high < i + 1)
                    {
                        int seen = Interlocked.CompareExchange(ref s_high, i + 1, high);
                        if (seen == high)
                        {
                            break;
                        }
                        high = seen;
                    }
                    if (DebugNative.SetRecord(r) != 0)
                    {
                        Volatile.Write(ref r->InUse, 0);
                        return null;
                    }
                    return r;
                }
            }
            // Full: take back the slots of threads that ended without their
            // key destructor running (it frees the slot otherwise).
            int used = Volatile.Read(ref s_high);
            for (int i = 0; i < used; i++)
            {
                DebugThread* r = table + i;
                if (Volatile.Read(ref r->InUse) != 0 && DebugNative.ThreadAlive(r->Tid) == 0)
                {
                    Interlocked.CompareExchange(ref r->InUse, 0, 1);
                }
            }
        }
        if (Interlocked.Exchange(ref s_fullReported, 1) == 0)
        {
            DebugMode.Report($"ft_weave debug: more than {Capacity} threads use checked locks at once; thread {ThreadIds.Current()} and later ones are not checked");
        }
        return null;
    }

    internal static void Push(DebugThread* t, nint address, int kind, void* site)
    {
        int n = t->HeldCount;
        if (n == DebugThread.MaxHeld)
        {
            if (Interlocked.Exchange(ref s_overflowReported, 1) == 0)
            {
                DebugMode.Report($"ft_weave debug: thread {t->ThreadId} holds more than {DebugThread.MaxHeld} checked locks; the others are not tracked");
            }
            return;
        }
        t->HeldLock[n] = address;
        t->HeldSite[n] = (long)site;
        t->HeldKind[n] = kind;
        // Release: the entry is complete before a reader's count covers it.
        Volatile.Write(ref t->HeldCount, n + 1);
    }

    /// <summary>The newest entry for (address, kind), or -1.</summary>
    internal static int Find(DebugThread* t, nint address, int kind)
    {
        for (int i = t->HeldCount - 1; i >= 0; i--)
        {
            if (t->HeldLock[i] == address && t->HeldKind[i] == kind)
            {
                return i;
            }
        }
        return -1;
    }

    internal static void RemoveAt(DebugThread* t, int index)
    {
        int n = t->HeldCount;
        for (int i = index; i < n - 1; i++)
        {
            t->HeldLock[i] = t->HeldLock[i + 1];
            t->HeldSite[i] = t->HeldSite[i + 1];
            t->HeldKind[i] = t->HeldKind[i + 1];
        }
        Volatile.Write(ref t->HeldCount, n - 1);
    }

    /// <summary>Another thread whose record holds (address, kind), or null. A racy scan: a hint for reports.</summary>
    internal static DebugThread* FindHolder(nint address, int kind, DebugThread* except, out int index)
    {
        index = -1;
        DebugThread* table = s_table;
        int used = Volatile.Read(ref s_high);
        for (int i = 0; i < used; i++)
        {
            DebugThread* r = table + i;
            if (r == except || Volatile.Read(ref r->InUse) == 0)
            {
                continue;
            }
            int n = Math.Min(Volatile.Read(ref r->HeldCount), DebugThread.MaxHeld);
            for (int j = 0; j < n; j++)
            {
                if (r->HeldLock[j] == address && (kind == 0 || r->HeldKind[j] == kind))
                {
                    index = j;
                    return r;
                }
            }
        }
        return null;
    }
}

/// <summary>
/// The one flag the exported lock paths test. A class of its own, with only
/// constant initialisers (which ILC preinitialises: no static constructor
/// runs): touching <see cref="DebugMode"/> would run its static constructor,
/// which allocates, and a thread's first lock must allocate no managed
/// memory. -1 means "FT_WEAVE_DEBUG not read yet".
/// </summary>
internal static class DebugSwitch
{
    internal static int s_flags = -1;
    internal static int s_watchdogMs = 1000;
}

/// <summary>
/// Debug mode's switch, its report sink and the environment. The exported
/// lock paths test <see cref="DebugSwitch.s_flags"/> (one load) and come here only when
/// it is not 0; -1 means "FT_WEAVE_DEBUG not read yet", so the first checked
/// call reads it.
/// </summary>
internal static unsafe class DebugMode
{

    private sealed class Sink
    {
        public delegate* unmanaged<byte*, void*, void> Fn;
        public void* Arg;
    }

    private static Sink? s_sink;
    private static readonly Lock s_setLock = new();

    /// <summary>The flags, reading FT_WEAVE_DEBUG on first use.</summary>
    internal static int Flags
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            int flags = Volatile.Read(ref DebugSwitch.s_flags);
            return flags >= 0 ? flags : FromEnvironment();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int FromEnvironment()
    {
        byte* value = DebugNative.Environment();
        if (value == null || *value == 0)
        {
            // The common case, without allocating: off (unless a concurrent
            // weave_debug_set got there first).
            Interlocked.CompareExchange(ref DebugSwitch.s_flags, 0, -1);
            int now = Volatile.Read(ref DebugSwitch.s_flags);
            Interop.Native.DebugSectionsSet(now & (DebugFlags.LockOrder | DebugFlags.LiveDeadlock));
            return now;
        }
        return FromEnvironmentSlow();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int FromEnvironmentSlow()
    {
        string? problems = null;
        int flags;
        lock (s_setLock)
        {
            if (DebugSwitch.s_flags >= 0)
            {
                return DebugSwitch.s_flags;
            }
            byte* env = DebugNative.Environment();
            string text = env == null ? "" : Marshal.PtrToStringUTF8((nint)env) ?? "";
            flags = Parse(text, out int watchdogMs, out problems);
            if (flags != 0 && !Enable(flags))
            {
                problems = "FT_WEAVE_DEBUG: out of memory for the debug tables; debug mode stays off";
                flags = 0;
            }
            if (watchdogMs > 0)
            {
                DebugSwitch.s_watchdogMs = watchdogMs;
            }
            Volatile.Write(ref DebugSwitch.s_flags, flags);
            Interop.Native.DebugSectionsSet(flags & (DebugFlags.LockOrder | DebugFlags.LiveDeadlock));
        }
        if (problems != null)
        {
            Report("ft_weave debug: " + problems);
        }
        if ((flags & DebugFlags.Watchdog) != 0)
        {
            LiveDeadlocks.StartWatchdog();
        }
        return flags;
    }

    /// <summary>
    /// FT_WEAVE_DEBUG: "all" or a comma list of lock_order, owner,
    /// live_deadlock, fail_on_cycle, watchdog, watchdog=&lt;ms&gt;; "0", "off"
    /// or empty is none. Unknown items are named in <paramref name="problems"/>
    /// and ignored; fail_on_cycle implies lock_order, watchdog live_deadlock.
    /// </summary>
    internal static int Parse(string text, out int watchdogMs, out string? problems)
    {
        int flags = 0;
        watchdogMs = 0;
        problems = null;
        foreach (string raw in text.Split(','))
        {
            string item = raw.Trim().ToLowerInvariant();
            switch (item)
            {
                case "":
                case "0":
                case "off":
                    break;
                case "all":
                case "1":
                    flags |= DebugFlags.All;
                    break;
                case "lock_order":
                    flags |= DebugFlags.LockOrder;
                    break;
                case "owner":
                    flags |= DebugFlags.Owner;
                    break;
                case "live_deadlock":
                    flags |= DebugFlags.LiveDeadlock;
                    break;
                case "fail_on_cycle":
                    flags |= DebugFlags.FailOnCycle | DebugFlags.LockOrder;
                    break;
                case "watchdog":
                    flags |= DebugFlags.Watchdog | DebugFlags.LiveDeadlock;
                    break;
                default:
                    if (item.StartsWith("watchdog=", StringComparison.Ordinal) &&
                        int.TryParse(item.AsSpan(9), out int ms) && ms > 0 && ms <= 3_600_000)
                    {
                        flags |= DebugFlags.Watchdog | DebugFlags.LiveDeadlock;
                        watchdogMs = ms;
                        break;
                    }
                    problems = (problems == null ? "FT_WEAVE_DEBUG: ignored " : problems + ", ") + $"'{raw.Trim()}'" +
                               " (expected all, lock_order, owner, live_deadlock, fail_on_cycle, watchdog or watchdog=<ms>)";
                    break;
            }
        }
        return flags;
    }

    /// <summary>Allocates what the flags need. False: out of memory.</summary>
    private static bool Enable(int flags)
    {
        if (!DebugThreads.Allocate())
        {
            return false;
        }
        if ((flags & DebugFlags.LockOrder) != 0)
        {
            try
            {
                LockOrderGraph.Reset();
            }
            catch (OutOfMemoryException)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>weave_debug_set.</summary>
    internal static int Set(int flags, delegate* unmanaged<byte*, void*, void> fn, void* arg)
    {
        if ((flags & ~DebugFlags.Known) != 0)
        {
            return ThreadContexts.SetError(ErrorCodes.WEAVE_E_INVALID, "weave_debug_set: unknown flags (expected WEAVE_DEBUG_*)\0"u8);
        }
        if ((flags & DebugFlags.FailOnCycle) != 0 && (flags & DebugFlags.LockOrder) == 0)
        {
            return ThreadContexts.SetError(ErrorCodes.WEAVE_E_INVALID, "weave_debug_set: WEAVE_DEBUG_FAIL_ON_CYCLE needs WEAVE_DEBUG_LOCK_ORDER\0"u8);
        }
        if ((flags & DebugFlags.Watchdog) != 0 && (flags & DebugFlags.LiveDeadlock) == 0)
        {
            return ThreadContexts.SetError(ErrorCodes.WEAVE_E_INVALID, "weave_debug_set: WEAVE_DEBUG_WATCHDOG needs WEAVE_DEBUG_LIVE_DEADLOCK\0"u8);
        }
        lock (s_setLock)
        {
            if (flags != 0 && !Enable(flags))
            {
                return ThreadContexts.SetError(ErrorCodes.WEAVE_E_NOMEM, "weave_debug_set: out of memory for the debug tables\0"u8);
            }
            Volatile.Write(ref s_sink, fn == null ? null : new Sink { Fn = fn, Arg = arg });
            LiveDeadlocks.ForgetReported();
            Volatile.Write(ref DebugSwitch.s_flags, flags);
            Interop.Native.DebugSectionsSet(flags & (DebugFlags.LockOrder | DebugFlags.LiveDeadlock));
        }
        if ((flags & DebugFlags.Watchdog) != 0)
        {
            LiveDeadlocks.StartWatchdog();
        }
        return 0;
    }

    /// <summary>
    /// Delivers one finding: to the installed callback, else one line on
    /// stderr. Called with no internal lock held. The calling thread's own
    /// lock calls are not checked meanwhile (a callback that locks must not
    /// report about itself).
    /// </summary>
    internal static void Report(string text)
    {
        DebugThread* self = DebugNative.Record();
        if (self != null)
        {
            self->Reporting++;
        }
        try
        {
            byte[] utf8 = new byte[Encoding.UTF8.GetByteCount(text) + 1];
            Encoding.UTF8.GetBytes(text, 0, text.Length, utf8, 0);
            Sink? sink = Volatile.Read(ref s_sink);
            fixed (byte* line = utf8)
            {
                if (sink != null)
                {
                    sink.Fn(line, sink.Arg);
                }
                else
                {
                    DebugNative.WriteStderr(line);
                }
            }
        }
        finally
        {
            if (self != null)
            {
                self->Reporting--;
            }
        }
    }

    /// <summary>A call site for a report: "function+0xoff (object)".</summary>
    internal static string Site(long site)
    {
        byte* buffer = stackalloc byte[512];
        int n = DebugNative.Symbolize((void*)site, buffer, 512);
        return Encoding.UTF8.GetString(buffer, n);
    }

    internal static string Address(nint address) => "0x" + ((ulong)address).ToString("x");
}
