using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FtWeave.Abi;
using Xunit;

namespace FtWeave.Tests;

/// <summary>
/// The C# mirrors of ft_weave.h's structs have the sizes and offsets that the
/// header's WEAVE_STATIC_ASSERTs fix (64-bit targets: linux-x64, linux-arm64).
/// </summary>
public class AbiLayoutTests
{
    [Fact]
    public void Mutex_is_one_byte()
    {
        Assert.Equal(1, Unsafe.SizeOf<weave_mutex_t>());
        Assert.Equal(0, (int)Marshal.OffsetOf<weave_mutex_t>(nameof(weave_mutex_t._bits)));
    }

    [Fact]
    public void Raw_mutex_is_one_word()
    {
        Assert.Equal(nint.Size, Unsafe.SizeOf<weave_raw_mutex_t>());
        Assert.Equal(0, (int)Marshal.OffsetOf<weave_raw_mutex_t>(nameof(weave_raw_mutex_t.v)));
    }

    [Fact]
    public void Event_once_and_cond_are_one_byte()
    {
        Assert.Equal(1, Unsafe.SizeOf<weave_event_t>());
        Assert.Equal(1, Unsafe.SizeOf<weave_once_t>());
        Assert.Equal(1, Unsafe.SizeOf<weave_cond_t>());
    }

    [Fact]
    public void Recursive_mutex_layout()
    {
        Assert.Equal(24, Unsafe.SizeOf<weave_recursive_mutex_t>());
        Assert.Equal(0, (int)Marshal.OffsetOf<weave_recursive_mutex_t>(nameof(weave_recursive_mutex_t.mutex)));
        Assert.Equal(8, (int)Marshal.OffsetOf<weave_recursive_mutex_t>(nameof(weave_recursive_mutex_t.thread)));
        Assert.Equal(16, (int)Marshal.OffsetOf<weave_recursive_mutex_t>(nameof(weave_recursive_mutex_t.level)));
    }

    [Fact]
    public void Rwmutex_and_seqlock_layout()
    {
        Assert.Equal(nint.Size, Unsafe.SizeOf<weave_rwmutex_t>());
        Assert.Equal(4, Unsafe.SizeOf<weave_seqlock_t>());
    }

    [Fact]
    public void Stats_has_five_uint64_fields_in_contract_order()
    {
        Assert.Equal(40, Unsafe.SizeOf<weave_stats_t>());
        string[] fields = { "parks", "unparks", "handoffs", "spins", "managed_bytes" };
        for (int i = 0; i < fields.Length; i++)
        {
            Assert.Equal(8 * i, (int)Marshal.OffsetOf<weave_stats_t>(fields[i]));
        }
    }

    [Fact]
    public void Error_codes_have_the_contract_values()
    {
        Assert.Equal(-101, ErrorCodes.WEAVE_E_INVALID);
        Assert.Equal(-102, ErrorCodes.WEAVE_E_NOT_OWNER);
    }
}
