using System;
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
    public void Waiters_get_the_lock_in_arrival_order()
    {
        // FIFO: with the lock held, five threads queue one after another;
        // after the release each takes the lock in the order it queued (the
        // old stack woke the newest first, so the oldest could starve). No
        // thread barges here: each woken waiter is the only one running.
        const int threads = 5;
        nuint* word = (nuint*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)sizeof(nuint));
        var order = new int[threads];
        int next = 0;
        WordLock.Lock(word);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                WordLock.Lock(word);
                order[next++] = id;
                WordLock.Unlock(word);
            });
            workers[t].Start();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (WordLock.QueuedCount(word) != t + 1)
            {
                Assert.True(DateTime.UtcNow < deadline, "waiter did not queue");
                Thread.Sleep(1);
            }
        }
        WordLock.Unlock(word);
        foreach (Thread w in workers)
        {
            w.Join();
        }
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, order);
        Assert.Equal((nuint)0, *word);
        System.Runtime.InteropServices.NativeMemory.Free(word);
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
