using System;
using System.Runtime.CompilerServices;
using FtWeave.Interop;

namespace FtWeave.Parking;

/// <summary>
/// How long a parked thread polls its wait word before it sleeps in the
/// kernel: a per-thread budget that adapts to how soon its wakes come, in the
/// manner of KVM's halt polling (grow when the wake came soon after the
/// thread went to sleep, shrink when it came late).
///
/// Why poll at all: a futex wake that reaches a CPU still in its idle loop
/// costs about a microsecond, one that reaches a CPU that has halted costs
/// what the machine charges to wake a halted CPU: on the 2-vCPU VMs we run
/// on, 10-20 us per wake, every time (bench `pingpong`, docs/benchmarks.md).
/// A thread that polls for a while keeps its CPU awake, and a waker that
/// finds it polling sets its word and skips the system call altogether
/// (<see cref="ThreadParker.Unpark"/>): a ping-pong of two threads then runs
/// without any sleep. The budget must be longer than one halted wake-up and
/// back, or two threads that wake each other never get out of the slow
/// pattern (each one's poll ends before the other's slow wake arrives).
///
/// What it costs: up to <see cref="MaxNs"/> of CPU per wait on threads whose
/// waits keep ending within that time; nothing on threads whose waits are
/// longer (the budget halves on every such wait and reaches zero), nothing
/// on a single CPU, and nothing on a thread's first wait.
///
/// Who polls, and moves the budget: the waits for an event (weave_park,
/// conditions, events, once, static values). The waits of locks (mutex, recursive mutex, RW mutex,
/// critical sections, the word lock and raw mutex) do not: they spin before
/// they park already, and when threads outnumber CPUs a polling lock waiter
/// takes the CPU of a thread that has work (contended "small" at 8-16
/// threads lost 15-20% in bench/lockbench). Not polling also keeps every lock
/// wait that asks for signals (WEAVE_LOCK_HANDLE_SIGNALS,
/// WEAVE_LOCK_FAIL_IF_INTERRUPTED) interruptible from its first instant: a
/// signal handled during a poll interrupts nothing.
/// </summary>
internal static unsafe class ParkSpin
{
    /// <summary>The longest poll, and the wait time under which the budget grows.</summary>
    internal const int MaxNs = 50_000;

    /// <summary>The first non-zero budget.</summary>
    private const int StartNs = 4_000;

    /// <summary>How many pauses between two clock reads (each pause is tens of ns).</summary>
    internal const int PausesPerClockRead = 8;

    // The budget is a C thread-local (src/native/park_spin.c says why not a
    // [ThreadStatic]), 0 until the thread's first short wait: a thread that
    // only ever waits long never polls. Only its own thread touches it.

    /// <summary>
    /// The calling thread's budget; pass it back to <see cref="AfterSleep"/>.
    /// NULL under the JIT (the xunit tests of src/FtWeave.Tests run this code
    /// without the library's C part): no budget, never polls. NativeAOT
    /// compiles the condition away.
    /// </summary>
    internal static int* Budget => RuntimeFeature.IsDynamicCodeCompiled ? null : Native.ParkBudget();

    /// <summary>
    /// After a wait that slept in the kernel and ended after
    /// <paramref name="waitedNs"/> (poll included). A wake that came within
    /// <see cref="MaxNs"/> would have been caught by a long enough poll: grow
    /// (doubling, so two threads in the slow pattern get out in a few rounds).
    /// A later one would not: halve, so that a thread whose waits are long
    /// stops polling after a few of them.
    /// </summary>
    internal static void AfterSleep(int* slot, long waitedNs)
    {
        if (slot == null)
        {
            return;
        }
        int budget = *slot;
        if (waitedNs <= MaxNs)
        {
            if (budget < MaxNs && Environment.ProcessorCount > 1)
            {
                *slot = budget == 0 ? StartNs : Math.Min(budget * 2, MaxNs);
            }
        }
        else if (budget != 0)
        {
            *slot = budget / 2 < StartNs ? 0 : budget / 2;
        }
    }
}
