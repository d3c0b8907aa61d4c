using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>
/// The library's own C code (src/native/*.c), linked into libft_weave.so and
/// bound at link time (DirectPInvoke, see FtWeave.csproj). It holds what must
/// work without managed code: state set up by ELF constructors when the
/// library is loaded, memory that the kernel wipes at fork, and the per-thread
/// id that has to work at any point of a thread's life.
/// </summary>
internal static unsafe partial class Native
{
    internal const string Library = "ft_weave_native";

    /// <summary>The calling thread's weave_thread_id if it has one, else 0. Never blocks.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_thread_id_peek")]
    [SuppressGCTransition]
    internal static partial ulong ThreadIdPeek();

    /// <summary>
    /// The calling thread's weave_thread_id, assigned on its first call. May
    /// allocate (pthread_setspecific) on that first call, so it keeps the GC
    /// transition.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_thread_id")]
    internal static partial ulong ThreadId();

    /// <summary>The calling thread's poll budget in nanoseconds (src/native/park_spin.c; C thread-local, zero at first).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_park_budget")]
    [SuppressGCTransition]
    internal static partial int* ParkBudget();

    /// <summary>The parking lot's bucket table (64 KiB, zeroed, wiped by the kernel in a fork child).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_parking_table")]
    [SuppressGCTransition]
    internal static partial void* ParkingTable();

    /// <summary>
    /// A zeroed bucket table of <paramref name="bytes"/> bytes for the
    /// parking lot's growth, wiped at fork like the static one and never
    /// freed; NULL when it cannot be had (mmap failed, too many tables, or
    /// no fork reset available). A system call: keeps the GC transition.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_parking_table_alloc")]
    internal static partial void* ParkingTableAlloc(nuint bytes);

    /// <summary>The parking lot's two growth words (queued threads, grower flag), zero in a fork child.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_parking_growth_words")]
    [SuppressGCTransition]
    internal static partial int* ParkingGrowthWords();

    /// <summary>How the table is reset in a fork child: 1 kernel wipe, 2 C atfork handler, 0 not at all.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_parking_fork_mode")]
    [SuppressGCTransition]
    internal static partial int ParkingForkMode();

    /// <summary>The RW mutexes' visible-readers table (src/native/rwmutex_bias.c; 64 KiB, static).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_readers")]
    [SuppressGCTransition]
    internal static partial void* RWMutexReaders();

    /// <summary>weave_rwmutex_t reader bias (src/native/rwmutex_bias.c): 1 if the caller now holds a biased read lock.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_try_rlock_biased")]
    [SuppressGCTransition]
    internal static partial int RWMutexTryRLockBiased(nuint* rw);

    /// <summary>1 if the caller held a biased read lock on rw and released it.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_try_runlock_biased")]
    [SuppressGCTransition]
    internal static partial int RWMutexTryRUnlockBiased(nuint* rw);

    /// <summary>
    /// Waits (at most `spins` pauses) for the slots of rw's stripe from `start` on
    /// to stop naming rw: -1 when none does, else the slot still waited for.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_wait_biased_readers")]
    [SuppressGCTransition]
    internal static partial int RWMutexWaitBiasedReaders(nuint* rw, int start, int spins);

    /// <summary>A revocation of rw's bias that started at startNs (MonotonicNow) ended: set its inhibit time.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_revoked")]
    [SuppressGCTransition]
    internal static partial void RWMutexRevoked(nuint* rw, long startNs);

    /// <summary>1 when rw's bias may be turned on again.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_rwmutex_bias_allowed")]
    [SuppressGCTransition]
    internal static partial int RWMutexBiasAllowed(nuint* rw);

    /// <summary>The statistics stripes (32 cache lines, zeroed).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_statistics_cells")]
    [SuppressGCTransition]
    internal static partial void* StatisticsCells();

    /// <summary>CPython's functions as found when the library was loaded (all NULL if not found).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_python_symbols")]
    [SuppressGCTransition]
    internal static partial PythonApi* PythonSymbols();

    /// <summary>
    /// Sets a Python exception (<paramref name="kind"/> 0 ValueError, 1
    /// MemoryError, 2 RuntimeError) with the message "what: detail", through
    /// the CPython functions found when the library was loaded. The caller
    /// checked that the thread has an attached thread state. 1 if set, 0 when
    /// those functions are unknown. Calls into CPython: keeps the GC transition.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_python_raise")]
    internal static partial int PythonRaise(int kind, byte* what, byte* detail);

    /// <summary>
    /// weave_set_python_errors: keeps the handed-over error functions unless
    /// the load-time probe found them or a set was handed over before. Never blocks.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_python_set_errors")]
    [SuppressGCTransition]
    internal static partial void PythonSetErrors(void* setString, void* valueError, void* memoryError, void* runtimeError);

    /// <summary>
    /// Calls <paramref name="restore"/> (PyEval_RestoreThread) with
    /// <paramref name="threadState"/>. A thread that CPython ends in there
    /// (pthread_exit once finalization has begun) never returns: it is
    /// parked for good in C, so the forced unwind never reaches managed
    /// frames. Blocks (the GIL, a stop-the-world pause): keeps the GC transition.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ftw_python_restore")]
    internal static partial void PythonRestore(void* restore, nint threadState);

    /// <summary>src/native/python_probe.c's struct; same layout as weave_python_api_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PythonApi
    {
        public void* ThreadStateGet;
        public void* GilStateCheck;
        public void* SaveThread;
        public void* RestoreThread;
        public void* MakePendingCalls;
    }
}

internal static unsafe partial class Native
{
    /// <summary>Zeroed static storage for Once's first chunk of run records; <paramref name="bytes"/> gets its size.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_once_first_chunk")]
    [SuppressGCTransition]
    internal static partial void* OnceFirstChunk(nuint* bytes);

    /// <summary>The calling thread's kernel thread id (gettid).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_gettid")]
    internal static partial int GetTid();

    /// <summary>getpid().</summary>
    [LibraryImport(Library, EntryPoint = "ftw_getpid")]
    internal static partial int GetPid();

    /// <summary>
    /// Sets the calling thread's pointer to its ThreadContext.SectionTop for
    /// the critical sections' C fast paths (src/native/critical_section.c),
    /// or clears it (NULL). One thread-local store.
    /// </summary>
    /// <summary>Sends every section begin through C# while debug mode's checks are on.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_debug_sections_set")]
    [SuppressGCTransition]
    internal static partial void DebugSectionsSet(int on);

    [LibraryImport(Library, EntryPoint = "ftw_critical_section_publish")]
    [SuppressGCTransition]
    internal static partial void PublishSectionTop(nuint* top);

    /// <summary>The C fast paths' tag bits and mutex bits, packed (CriticalSections checks them).</summary>
    [LibraryImport(Library, EntryPoint = "ftw_critical_section_constants")]
    [SuppressGCTransition]
    internal static partial ulong CriticalSectionConstants();

    /// <summary>1 if thread <paramref name="tid"/> of this process still runs code, 0 if it is gone.</summary>
    [LibraryImport(Library, EntryPoint = "ftw_thread_alive")]
    internal static partial int ThreadAlive(int tid);
}

/// <summary>
/// The thread-exit part of the C code (src/native/thread_exit.c). None of
/// these block.
/// </summary>
internal static unsafe partial class NativeHooks
{
    /// <summary>
    /// The pthread key that holds each thread's ThreadContext, reserved when
    /// the library was loaded. 0, or ENOSPC when the process had no key left
    /// then.
    /// </summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_context_key")]
    [SuppressGCTransition]
    internal static partial int ContextKey(uint* key);

    /// <summary>
    /// Installs the callback that tears down the calling thread's context from
    /// the runtime's (deferred) pthread key destructor, while the thread is
    /// still attached (src/native/thread_exit.c).
    /// </summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_set_thread_teardown")]
    [SuppressGCTransition]
    internal static partial void SetThreadTeardown(delegate* unmanaged<void> teardown);

    /// <summary>Whether the calling thread is the process's main thread (gettid() == getpid()).</summary>
    [LibraryImport(Native.Library, EntryPoint = "ftw_is_main_thread")]
    [SuppressGCTransition]
    internal static partial int IsMainThread();
}
