using System.Threading;
using FtWeave.Parking;
using Xunit;

namespace FtWeave.Tests;

/// <summary>The bucket lock, exercised from C# threads (JIT, not NativeAOT).</summary>
public unsafe class WordLockTests
{
    [Fact]
    public void Lock_sets_one_and_unlock_clears_it()
    {
        nuint word = 0;
        WordLock.Lock(&word);
        Assert.Equal(WordLock.Locked, word);
        Assert.False(WordLock.TryLock(&word));
        Assert.True(WordLock.Unlock(&word));
        Assert.Equal((nuint)0, word);
        Assert.False(WordLock.Unlock(&word)); // not locked: the caller reports NOT_OWNER
        Assert.Equal((nuint)0, word);
    }

    [Fact]
    public void Contended_counter_is_exact_and_the_word_ends_at_zero()
    {
        const int threads = 4, iterations = 20000;
        nuint* word = (nuint*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)sizeof(nuint));
        long counter = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                for (int i = 0; i < iterations; i++)
                {
                    WordLock.Lock(word);
                    counter++;
                    WordLock.Unlock(word);
                }
            });
            workers[t].Start();
        }
        foreach (Thread w in workers)
        {
            w.Join();
        }
        Assert.Equal((long)threads * iterations, counter);
        Assert.Equal((nuint)0, *word);
        System.Runtime.InteropServices.NativeMemory.Free(word);
    }
}

public class StatisticsTests
{
    [Fact]
    public void Counters_add_up_across_threads()
    {
        ulong before = Statistics.Read(Statistics.Counter.Handoffs);
        var workers = new Thread[4];
        for (int t = 0; t < workers.Length; t++)
        {
            workers[t] = new Thread(() =>
            {
                for (int i = 0; i < 1000; i++)
                {
                    Statistics.Increment(Statistics.Counter.Handoffs);
                }
                Statistics.Add(Statistics.Counter.Handoffs, 5);
                Statistics.Add(Statistics.Counter.Handoffs, 0);
            });
            workers[t].Start();
        }
        foreach (Thread w in workers)
        {
            w.Join();
        }
        // Nothing else in this test process hands a mutex off, so the total
        // must be exact (a lost stripe update would show here).
        Assert.Equal(before + 4 * 1005, Statistics.Read(Statistics.Counter.Handoffs));
    }
}
