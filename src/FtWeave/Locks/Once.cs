using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Threads;

namespace FtWeave.Locks;

/// <summary>
/// weave_once_t: run an initialiser once, with retry after failure, in one
/// byte (CPython's _PyOnceFlag, Python/lock.c).
///
///   v | Running | HasParked | Done | meaning
///   --+---------+-----------+------+----------------------------------------
///   0 |    0    |     0     |  0   | not run (or the last run failed)
///   1 |    1    |     0     |  0   | a caller is running fn
///   3 |    1    |     1     |  0   | running, other callers parked waiting
///   4 |    0    |     0     |  1   | done (final)
///
/// The runner publishes its result with one exchange; if a waiter had set
/// HasParked it wakes them all. Waiters re-read the byte: Done returns 0, 0
/// (the run failed) lets one of them run fn next.
///
/// The byte has no room for the runner's identity, so every run also has a
/// record in a process-wide table (<see cref="Run"/>): which flag, which
/// thread (weave_thread_id, kernel tid, pid). It serves two cases CPython's
/// flag cannot see:
/// - a recursive call on the same flag from inside fn finds its own record
///   and returns WEAVE_E_DEADLOCK instead of waiting for itself forever;
/// - a runner that never returns from fn because its thread ended inside it
///   (pthread_exit, or pthread_cancel at a cancellation point in fn; glibc
///   unwinds through the library's frames, so nothing of ours runs) left the
///   flag Running. Waiters sleep with a timeout and, when they wake to the
///   flag still Running, check the runner's thread; the first to find it gone
///   takes its record over and runs fn itself (the run is retried, as after
///   fn returned -1).
/// Invariant: a runner publishes its record before it sets Running and
/// removes it after its result is published, so a Running flag always has
/// its runner's record (plus, briefly, records of callers that lost the race
/// to claim the run and are about to remove theirs).
/// </summary>
internal static unsafe class Once
{
    internal const byte Running = 1;
    internal const byte HasParked = 2;
    internal const byte Done = 4;

    /// <summary>What <see cref="CallSlow"/> returns for an fn result other than 0 or -1.</summary>
    internal const int BadResult = Abi.ErrorCodes.WEAVE_E_INVALID;

    /// <summary>What <see cref="CallSlow"/> returns for a call from inside fn on the same flag.</summary>
    internal const int Recursive = Abi.ErrorCodes.WEAVE_E_DEADLOCK;

    /// <summary>What <see cref="CallSlow"/> returns when no run record can be allocated.</summary>
    internal const int NoMemory = Abi.ErrorCodes.WEAVE_E_NOMEM;

    /// <summary>
    /// How long a waiter sleeps before it checks that the runner still exists.
    /// Only waiters pay for it, and only while fn runs; it bounds how long
    /// they hang on after a runner's thread ended inside fn.
    /// </summary>
    private const long RunnerCheckNs = 50_000_000;

    /// <summary>The inline check of ft_weave.h: already done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsDone(byte* once)
    {
        // Acquire: pairs with the exchange in Finish, so fn's writes are
        // visible to every caller that sees Done.
        return Volatile.Read(ref *once) == Done;
    }

    /// <summary>
    /// weave_once_call_slow: 0 when done (by us or earlier), -1 when our run
    /// of fn failed, <see cref="BadResult"/> when fn returned anything else,
    /// <see cref="Recursive"/> for a call from inside fn on the same flag,
    /// <see cref="NoMemory"/> when the run could not be recorded.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int CallSlow(byte* once, delegate* unmanaged<void*, int> fn, void* arg)
    {
        // Acquire: pairs with the exchange in Finish.
        byte v = Volatile.Read(ref *once);
        while (true)
        {
            if (v == 0)
            {
                // Nobody runs it (never ran, or the last run failed): claim
                // the run, with our record published first (class invariant).
                Run* run = Claim(once);
                if (run == null)
                {
                    return NoMemory;
                }
                // Full barrier; on failure another caller claimed it first.
                byte seen = Interlocked.CompareExchange(ref *once, Running, 0);
                if (seen != 0)
                {
                    Release(run, once);
                    v = seen;
                    continue;
                }
                return RunAndFinish(once, run, fn, arg);
            }
            if (v == Done)
            {
                return 0;
            }

            // Running. If the runner is this thread, we are inside its fn.
            if (FindOwn(once))
            {
                return Recursive;
            }
            if ((v & HasParked) == 0)
            {
                // We are the first waiter: announce it, so Finish unparks.
                byte announced = (byte)(v | HasParked);
                byte seen = Interlocked.CompareExchange(ref *once, announced, v);
                if (seen != v)
                {
                    v = seen;
                    continue;
                }
                v = announced;
            }

            // Sleeps only while the byte is still v; Finish's exchange happens
            // before its UnparkAll, so we either see the result here (AGAIN)
            // or are queued when it unparks. Detached, as CPython's waiters:
            // the runner may need this thread's interpreter lock.
            int parked = ParkingLot.Park(once, &v, sizeof(byte), RunnerCheckNs, null, detach: true);
            // Acquire: pairs with the exchange in Finish.
            v = Volatile.Read(ref *once);
            if (parked == ParkResult.Timeout && (v & Running) != 0)
            {
                Run* orphan = TakeOverFromExitedRunner(once);
                if (orphan != null)
                {
                    // The flag is still Running (its runner can no longer
                    // change it): the run is ours now.
                    return RunAndFinish(once, orphan, fn, arg);
                }
            }
        }
    }

    private static int RunAndFinish(byte* once, Run* run, delegate* unmanaged<void*, int> fn, void* arg)
    {
        int result = fn(arg);
        // If fn does not return (its thread ended inside it), nothing below
        // runs: the record stays, and a waiter takes it over.
        int status = Finish(once, result);
        Release(run, once);
        return status;
    }

    /// <summary>Publishes the runner's result and wakes the waiters.</summary>
    private static int Finish(byte* once, int result)
    {
        byte next = result == 0 ? Done : (byte)0;
        // Full barrier (release half): fn's writes happen before the acquire
        // of every caller that sees Done. Reading the old byte in the same step
        // catches a waiter that set HasParked at any moment before.
        byte old = Interlocked.Exchange(ref *once, next);
        if ((old & HasParked) != 0)
        {
            ParkingLot.UnparkAll(once);
        }
        return result == 0 || result == -1 ? result : BadResult;
    }

    // ---- run records --------------------------------------------------------

    /// <summary>
    /// One run in progress. <see cref="Flag"/> is the state: 0 free,
    /// <see cref="Reserved"/> while one thread fills or inspects the other
    /// fields, else the address of the flag being run (published with release
    /// after the other fields). Readers that see a flag address read the rest
    /// after it (acquire) and get the values written before the publication.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Run
    {
        public nuint Flag;
        public ulong Runner; // weave_thread_id of the runner
        public int Tid;      // its kernel thread id
        public int Pid;      // the process the record was made in (a fork child inherits records)
    }

    private const nuint Reserved = 1;

    /// <summary>
    /// Records live in chunks chained from <see cref="s_first"/>; chunks are
    /// never freed, so a pointer to a record stays valid. The first chunk is
    /// static storage of the library's C part (a once can always run); more
    /// are allocated when more runs are in progress at once than it holds.
    /// </summary>
    private const int ChunkHeaderBytes = 64;
    private const int RunsPerChunk = 64;

    private static int ChunkBytes => ChunkHeaderBytes + RunsPerChunk * sizeof(Run);

    // The chunk header's first word is the next chunk (void*, as nint for Volatile/Interlocked).
    private static nint s_first;

    private static nint* NextOf(byte* chunk) => (nint*)chunk;

    private static Run* RunAt(byte* chunk, int i) => (Run*)(chunk + ChunkHeaderBytes) + i;

    private static byte* FirstChunk()
    {
        byte* first = (byte*)Volatile.Read(ref s_first);
        if (first != null)
        {
            return first;
        }
        nuint bytes;
        byte* chunk = (byte*)Native.OnceFirstChunk(&bytes);
        if (bytes < (nuint)ChunkBytes)
        {
            chunk = (byte*)Libc.Calloc(1, (nuint)ChunkBytes);
            if (chunk == null)
            {
                return null;
            }
        }
        // Release/acquire: racing first callers agree on one chunk (a losing
        // calloc'ed one is freed; the static one is the same for everyone).
        nint previous = Interlocked.CompareExchange(ref s_first, (nint)chunk, 0);
        if (previous != 0)
        {
            if (chunk != (byte*)previous && bytes < (nuint)ChunkBytes)
            {
                Libc.Free(chunk);
            }
            return (byte*)previous;
        }
        return chunk;
    }

    /// <summary>
    /// Publishes a record of the calling thread running <paramref name="once"/>.
    /// Records of that flag whose threads have exited are dropped first:
    /// when the flag reads 0 nobody runs it, so such a record is from an
    /// earlier flag at the same address. Null when memory ran out.
    /// </summary>
    private static Run* Claim(byte* once)
    {
        nuint flag = (nuint)once;
        ulong me = ThreadIds.Current();
        int tid = Native.GetTid();
        int pid = Native.GetPid();
        DropStale(flag, pid);
        byte* chunk = FirstChunk();
        while (chunk != null)
        {
            for (int i = 0; i < RunsPerChunk; i++)
            {
                Run* run = RunAt(chunk, i);
                if (Volatile.Read(ref run->Flag) == 0 && Interlocked.CompareExchange(ref run->Flag, Reserved, 0) == 0)
                {
                    run->Runner = me;
                    run->Tid = tid;
                    run->Pid = pid;
                    // Release: the fields above before the flag address.
                    Volatile.Write(ref run->Flag, flag);
                    return run;
                }
            }
            chunk = NextChunk(chunk);
        }
        return null;
    }

    /// <summary>The chunk after <paramref name="chunk"/>, appended if there is none (null without memory).</summary>
    private static byte* NextChunk(byte* chunk)
    {
        byte* next = (byte*)Volatile.Read(ref *NextOf(chunk));
        if (next != null)
        {
            return next;
        }
        byte* fresh = (byte*)Libc.Calloc(1, (nuint)ChunkBytes);
        if (fresh == null)
        {
            return null;
        }
        nint previous = Interlocked.CompareExchange(ref *NextOf(chunk), (nint)fresh, 0);
        if (previous != 0)
        {
            Libc.Free(fresh);
            return (byte*)previous;
        }
        return fresh;
    }

    /// <summary>Removes our record once our result is published (see the class invariant).</summary>
    private static void Release(Run* run, byte* once)
    {
        // A waiter may hold the record Reserved for a moment while it checks
        // whether we still exist (TakeOverFromExitedRunner); it then puts the
        // flag address back. Wait for that instead of freeing under it.
        while (Interlocked.CompareExchange(ref run->Flag, 0, (nuint)once) != (nuint)once)
        {
            Futex.SchedYield();
        }
    }

    /// <summary>Whether the calling thread has a record for <paramref name="once"/>: it is inside its fn.</summary>
    private static bool FindOwn(byte* once)
    {
        nuint flag = (nuint)once;
        ulong me = ThreadIds.Current();
        for (byte* chunk = (byte*)Volatile.Read(ref s_first); chunk != null; chunk = (byte*)Volatile.Read(ref *NextOf(chunk)))
        {
            for (int i = 0; i < RunsPerChunk; i++)
            {
                Run* run = RunAt(chunk, i);
                // Acquire on the flag address, then the fields published before it.
                // Only this thread writes records that name it.
                if (Volatile.Read(ref run->Flag) == flag && run->Runner == me)
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>
    /// Finds a record of <paramref name="once"/> whose thread no longer
    /// exists and makes it the calling thread's: the caller then runs fn.
    /// Null when every runner recorded for the flag still exists, or when
    /// the record was made in another process (a fork parent: whether its
    /// runner is this child's forking thread cannot be told; the flag stays
    /// Running, as documented).
    /// </summary>
    private static Run* TakeOverFromExitedRunner(byte* once)
    {
        nuint flag = (nuint)once;
        int pid = Native.GetPid();
        for (byte* chunk = (byte*)Volatile.Read(ref s_first); chunk != null; chunk = (byte*)Volatile.Read(ref *NextOf(chunk)))
        {
            for (int i = 0; i < RunsPerChunk; i++)
            {
                Run* run = RunAt(chunk, i);
                if (Volatile.Read(ref run->Flag) != flag || run->Pid != pid || Native.ThreadAlive(run->Tid) != 0)
                {
                    continue;
                }
                // Reserve the record, then look again: between our reads, a
                // live thread may have claimed this slot for the same flag
                // (after the flag was reset), or another waiter taken it over.
                if (Interlocked.CompareExchange(ref run->Flag, Reserved, flag) != flag)
                {
                    continue;
                }
                if (run->Pid == pid && Native.ThreadAlive(run->Tid) == 0)
                {
                    run->Runner = ThreadIds.Current();
                    run->Tid = Native.GetTid();
                    // Release: the new owner's fields before the flag address.
                    Volatile.Write(ref run->Flag, flag);
                    return run;
                }
                Volatile.Write(ref run->Flag, flag);
            }
        }
        return null;
    }

    /// <summary>Frees records of <paramref name="flag"/> made in this process by threads that have exited.</summary>
    private static void DropStale(nuint flag, int pid)
    {
        for (byte* chunk = (byte*)Volatile.Read(ref s_first); chunk != null; chunk = (byte*)Volatile.Read(ref *NextOf(chunk)))
        {
            for (int i = 0; i < RunsPerChunk; i++)
            {
                Run* run = RunAt(chunk, i);
                if (Volatile.Read(ref run->Flag) != flag || run->Pid != pid || Native.ThreadAlive(run->Tid) != 0)
                {
                    continue;
                }
                if (Interlocked.CompareExchange(ref run->Flag, Reserved, flag) == flag)
                {
                    // Same re-check as in TakeOverFromExitedRunner.
                    bool stale = run->Pid == pid && Native.ThreadAlive(run->Tid) == 0;
                    Volatile.Write(ref run->Flag, stale ? 0 : flag);
                }
            }
        }
    }
}
