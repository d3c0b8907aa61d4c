using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;
using FtWeave.Parking;

namespace FtWeave.Storage;

/// <summary>
/// The storage registry's lock, and how a fork child recognises the registry
/// state it inherited - without any pthread_atfork handler.
///
/// Why no handler: every function of this library is managed code (NativeAOT),
/// [UnmanagedCallersOnly] callbacks included. A handler would make fork() run
/// managed code on the forking thread - attaching it to the .NET runtime if it
/// never called the library - and, in the child, enter the runtime while its
/// locks may be held by threads that do not exist there (a GC suspension in
/// progress at the moment of fork hangs the child before it can exec). With no
/// handler, fork() runs none of this library's code, and a child that never
/// calls the library (fork + exec) never enters the runtime.
///
/// Instead the lock and a "this process has checked the registry" mark live in
/// a page advised MADV_WIPEONFORK (Linux 4.14+), which reads as zeros in a fork
/// child. The child's first registry operation therefore finds the lock free
/// (its holders and waiters were parent threads) and the mark clear, and
/// repairs what parent threads left half-done (<see cref="StorageKeys.AfterFork"/>)
/// before anything else uses the registry. Every write made under the lock is
/// ordered so that any prefix of it is repairable: fork() copies the address
/// space while the parent's mappings are write-locked, so a parent thread that
/// was inside a registry operation has made a prefix of its writes, in program
/// order (release stores), visible to the child.
///
/// If the page cannot be had (mmap or madvise refused), the words live in
/// ordinary memory and the process id does the same job: the lock word holds
/// the holder's pid, and a word held under another pid was inherited (its
/// holder is in the parent) and is taken over; the mark is the pid that last
/// checked. That fallback is exact except for pid reuse (a descendant that gets
/// its ancestor's pid would wait for an inherited holder), which the wiped page
/// does not depend on.
///
///   lock word            | meaning
///   ---------------------+----------------------------------------------------
///   0                    | free
///   pid                  | held by a thread of process pid, nobody sleeps
///   pid | Contended      | held, threads may sleep on the word (futex)
///   other pid            | (fallback only) inherited from the parent: free here
/// </summary>
internal static unsafe partial class RegistryLock
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Words
    {
        public int Lock;
        /// <summary>getpid(), cached (wiped page only: 0 again in a child).</summary>
        public int Pid;
        /// <summary>The pid of the process whose registry state is known good; 0 (or the parent's pid) in a fresh fork child.</summary>
        public int CheckedPid;
    }

    // pids are at most PID_MAX_LIMIT (2^22): bit 30 is free for the flag.
    private const int Contended = 1 << 30;
    private const int PidMask = Contended - 1;
    private const int SpinLimit = 40;

    // Words*, with bit 0 set when it is the wipe-on-fork page; 0 until first use.
    private static nint s_words;
#pragma warning disable CS0649 // written through its address only
    private static Words s_fallback;
#pragma warning restore CS0649

    // Incremented (under the lock) by each process's first registry
    // operation: 1 in the process that first used the library, higher in its
    // fork descendants. Ordinary memory, so a child inherits its parent's
    // number and makes it larger: a value recorded in an inherited entry is
    // always smaller than the child's own (two sibling children may share a
    // number, but never memory).
    private static int s_incarnation;

    /// <summary>The current process's number (see s_incarnation); read under the lock.</summary>
    internal static int Incarnation => s_incarnation;

    private const int PROT_READ = 1;
    private const int PROT_WRITE = 2;
    private const int MAP_PRIVATE = 2;
    private const int MAP_ANONYMOUS = 0x20;
    private const int MADV_WIPEONFORK = 18;
    private const nuint PageBytes = 4096; // one page on every Linux page size (mmap rounds up)

    [LibraryImport("libc", EntryPoint = "getpid")]
    [SuppressGCTransition]
    private static partial int GetPid();

    [LibraryImport("libc", EntryPoint = "mmap")]
    private static partial void* Mmap(void* address, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);

    private static Words* GetWords(out bool wiped)
    {
        // Acquire: pairs with the publishing CAS in CreateWords.
        nint raw = Volatile.Read(ref s_words);
        if (raw == 0)
        {
            raw = CreateWords();
        }
        wiped = (raw & 1) != 0;
        return (Words*)(raw & ~(nint)1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint CreateWords()
    {
        nint raw;
        void* page = Mmap(null, PageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page != (void*)-1 && Madvise(page, PageBytes, MADV_WIPEONFORK) == 0)
        {
            raw = (nint)page | 1;
        }
        else
        {
            if (page != (void*)-1)
            {
                Munmap(page, PageBytes);
            }
            page = null;
            // Statics of unmanaged type are never moved.
            raw = (nint)Unsafe.AsPointer(ref s_fallback);
        }
        nint seen = Interlocked.CompareExchange(ref s_words, raw, 0);
        if (seen != 0)
        {
            if (page != null)
            {
                Munmap(page, PageBytes);
            }
            return seen;
        }
        return raw;
    }

    private static int CurrentPid(Words* words, bool wiped)
    {
        if (!wiped)
        {
            return GetPid(); // a cached copy would be the parent's in a child
        }
        int pid = Volatile.Read(ref words->Pid);
        if (pid == 0)
        {
            // Racing threads all store the same value.
            pid = GetPid();
            Volatile.Write(ref words->Pid, pid);
        }
        return pid;
    }

    /// <summary>
    /// Takes the lock; the first time in a process (the first process, or a
    /// fork child), also brings the registry to a consistent state.
    /// </summary>
    internal static void Enter()
    {
        Words* words = GetWords(out bool wiped);
        int pid = CurrentPid(words, wiped);
        int take = pid;
        int spins = 0;
        while (true)
        {
            int v = Volatile.Read(ref words->Lock);
            if (v == 0 || (v & PidMask) != pid)
            {
                // Free, or (fallback only) held under another pid: by a thread
                // of the parent this process was forked from, which will never
                // release it here. Acquire (Interlocked is a full barrier):
                // pairs with the release in Exit.
                if (Interlocked.CompareExchange(ref words->Lock, take, v) == v)
                {
                    break;
                }
                continue;
            }
            if ((v & Contended) == 0)
            {
                if (spins < SpinLimit)
                {
                    // Registry sections are short (a lookup, a malloc): the
                    // holder is likely gone within a few hundred cycles.
                    SpinWaits.Pause(1 << (spins < 6 ? spins : 6));
                    spins++;
                    continue;
                }
                if (Interlocked.CompareExchange(ref words->Lock, v | Contended, v) != v)
                {
                    continue;
                }
            }
            // A thread that has slept takes the lock as Contended from now on:
            // others may still sleep, and its Exit must wake one (the classic
            // three-state futex mutex; no lost wake-up).
            take = pid | Contended;
            // Woken, interrupted by a signal (EINTR) or the word changed
            // (EAGAIN): all mean "look again", which the loop does.
            Futex.Wait(&words->Lock, v | Contended, -1);
        }
        if (Volatile.Read(ref words->CheckedPid) != pid)
        {
            // The first registry operation of this process: under the lock, so
            // exactly one thread does it, before any other thread's operation.
            s_incarnation++;
            if (s_incarnation > 1)
            {
                StorageKeys.AfterFork();
            }
            Volatile.Write(ref words->CheckedPid, pid);
        }
    }

    internal static void Exit()
    {
        Words* words = GetWords(out _);
        // Release (full barrier): the section's writes before the word's.
        int v = Interlocked.Exchange(ref words->Lock, 0);
        if ((v & Contended) != 0)
        {
            Futex.Wake(&words->Lock, 1);
        }
    }

    /// <summary>
    /// True on the thread that called fork() to create this process (or on the
    /// first thread of a process not forked): the one thread of a fork child
    /// that existed in its parent, and the only one whose tid is the pid.
    /// </summary>
    internal static bool OnInitialThread() => NativeHooks.IsMainThread() != 0;
}
