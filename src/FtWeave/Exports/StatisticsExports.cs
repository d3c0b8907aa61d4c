using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Parking;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 4, "Statistics".</summary>
internal static unsafe class StatisticsExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_stats")]
    private static int Stats(weave_stats_t* output)
    {
        if (output == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_stats: out is NULL\0"u8);
        }
        output->parks = Statistics.Read(Statistics.Counter.Parks);
        output->unparks = Statistics.Read(Statistics.Counter.Unparks);
        output->handoffs = Statistics.Read(Statistics.Counter.Handoffs);
        output->spins = Statistics.Read(Statistics.Counter.Spins);
        output->managed_bytes = Statistics.ManagedBytes();
        return WEAVE_OK;
    }
}
