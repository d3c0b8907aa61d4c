using System.Runtime.InteropServices;
using System.Threading;

namespace FtWeave.Interop;

/// <summary>
/// Linux futex(2) through glibc's syscall(), plus the monotonic clock and
/// sched_yield. glibc has no futex wrapper; syscall() is an assembly stub that
/// moves its arguments into registers, so passing them as fixed arguments is safe.
/// </summary>
internal static unsafe partial class Futex
{
    private const int FUTEX_WAKE = 1;
    private const int FUTEX_WAIT_BITSET = 9;
    private const int FUTEX_PRIVATE_FLAG = 128;
    private const int FUTEX_BITSET_MATCH_ANY = -1;
    internal const int EINTR = 4;
    internal const int EAGAIN = 11;
    internal const int ETIMEDOUT = 110;
    private const int CLOCK_MONOTONIC = 1;

    private static readonly nint SysFutex =
        RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 98 : 202;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long tv_sec;  // time_t
        public long tv_nsec; // long
    }

    // No SetLastError: the marshaller keeps the captured errno in a thread
    // static, and the first touch of the thread-static block allocates it on
    // the GC heap (144 bytes per thread, on the thread's first park). Wait
    // below derives the outcome without errno instead.
    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial nint Syscall(nint number, int* uaddr, nint op, nint val, Timespec* timeout, int* uaddr2, nint val3);

    // A wake never blocks and is short: no GC transition needed.
    [LibraryImport("libc", EntryPoint = "syscall")]
    [SuppressGCTransition]
    private static partial nint SyscallNoTransition(nint number, int* uaddr, nint op, nint val, Timespec* timeout, int* uaddr2, nint val3);

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    [SuppressGCTransition]
    private static partial int ClockGetTime(int clock, Timespec* ts);

    [LibraryImport("libc", EntryPoint = "sched_yield")]
    internal static partial int SchedYield();

    /// <summary>
    /// Sleeps while <c>*address == expected</c>, until woken or until the
    /// absolute monotonic <paramref name="deadlineNs"/> (&lt; 0: no deadline).
    /// Returns 0 when woken (or spuriously), else EAGAIN (value differed),
    /// ETIMEDOUT or EINTR. These are inferred, not read from errno (see
    /// Syscall): a changed word means EAGAIN (or a wake), a passed deadline
    /// ETIMEDOUT (FUTEX_WAIT_BITSET times out on the same clock), anything
    /// else EINTR. The callers re-check the word and the clock anyway; an
    /// EINTR that lands after the deadline is reported as ETIMEDOUT. The
    /// reverse cannot happen: the kernel's absolute timer expires no earlier
    /// than the deadline on this same clock, so after a real ETIMEDOUT the
    /// clock reads past it. Whatever this reports, ThreadParker.Park checks
    /// the word first: a wake is never lost, and EINTR or ETIMEDOUT never
    /// counts as a wake (what a caller owes its still-queued entry then is
    /// in ThreadParker's protocol).
    /// </summary>
    internal static int Wait(int* address, int expected, long deadlineNs)
    {
        Timespec ts;
        Timespec* timeout = null;
        if (deadlineNs >= 0)
        {
            ts.tv_sec = deadlineNs / 1_000_000_000;
            ts.tv_nsec = deadlineNs % 1_000_000_000;
            timeout = &ts;
        }
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
        // retry after EINTR needs no recomputation of the remaining time.
        nint rc = Syscall(SysFutex, address, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, timeout, null, FUTEX_BITSET_MATCH_ANY);
        if (rc == 0)
        {
            return 0;
        }
        if (Volatile.Read(ref *address) != expected)
        {
            return EAGAIN;
        }
        if (deadlineNs >= 0 && MonotonicNow() >= deadlineNs)
        {
            return ETIMEDOUT;
        }
        return EINTR;
    }

    /// <summary>Wakes at most <paramref name="count"/> threads waiting on <paramref name="address"/>.</summary>
    internal static void Wake(int* address, int count)
    {
        SyscallNoTransition(SysFutex, address, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, null, null, 0);
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds (vDSO: no system call).</summary>
    internal static long MonotonicNow()
    {
        Timespec ts;
        ClockGetTime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec;
    }
}
