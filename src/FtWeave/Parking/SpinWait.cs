using System.Threading;
using FtWeave.Interop;

namespace FtWeave.Parking;

/// <summary>Spinning helpers for the moments before a thread parks.</summary>
internal static class SpinWaits
{
    /// <summary>A short busy-wait with the CPU's pause instruction (no system call).</summary>
    internal static void Pause(int iterations) => Thread.SpinWait(iterations);

    /// <summary>Gives the core away for a moment (sched_yield): on 2 cores a
    /// lock holder that was preempted gets to run and release the lock.</summary>
    internal static void Yield() => Futex.SchedYield();
}
