using System.Runtime.CompilerServices;
using System.Threading;
using FtWeave.Parking;

namespace FtWeave.Locks;

/// <summary>
/// weave_seqlock_t: a sequence lock on a 32-bit counter, CPython's _PySeqLock
/// (Python/lock.c). The counter is itself the writers' lock:
///
///   sequence | meaning
///   ---------+-----------------------------------------------------------
///   even     | no write in progress; readers may copy the data
///   odd      | a writer holds it; readers wait, other writers spin
///
/// A reader copies the data between BeginRead and EndRead and keeps the copy
/// only if the sequence did not move. Writers never park: they yield until
/// the sequence is even, so write sections must be short.
/// </summary>
internal static unsafe class SeqLock
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsUpdating(uint sequence) => (sequence & 1) != 0;

    /// <summary>weave_seqlock_lock_write.</summary>
    internal static void LockWrite(uint* seqlock)
    {
        uint prev = Volatile.Read(ref *seqlock);
        while (true)
        {
            if (IsUpdating(prev))
            {
                // Another writer is updating.
                SpinWaits.Yield();
                prev = Volatile.Read(ref *seqlock);
                continue;
            }
            // Full barrier: the odd sequence is visible before any data store
            // of this write section (CPython adds a release fence here; the
            // Interlocked call already is one). Readers that see the data
            // stores then see the sequence move in EndRead.
            uint seen = Interlocked.CompareExchange(ref *seqlock, prev + 1, prev);
            if (seen == prev)
            {
                return;
            }
            SpinWaits.Yield();
            prev = seen;
        }
    }

    /// <summary>
    /// weave_seqlock_unlock_write (<paramref name="publish"/>: +1, readers
    /// retry) and weave_seqlock_abandon_write (-1, back to the sequence before
    /// the write, no reader retries). False when the sequence is even (not
    /// write-locked): nothing is changed.
    /// </summary>
    internal static bool FinishWrite(uint* seqlock, bool publish)
    {
        uint seq = Volatile.Read(ref *seqlock);
        while (IsUpdating(seq))
        {
            // Release (full barrier): the data stores of the write section
            // happen before the even sequence, which pairs with the readers'
            // acquire in BeginRead. A CAS instead of CPython's plain store so
            // that two racing unlocks (a misuse) cannot advance it twice.
            uint next = unchecked(publish ? seq + 1 : seq - 1); // odd seq: -1 never wraps, +1 may
            uint seen = Interlocked.CompareExchange(ref *seqlock, next, seq);
            if (seen == seq)
            {
                return true;
            }
            seq = seen;
        }
        return false;
    }

    /// <summary>The inline weave_seqlock_begin_read of ft_weave.h, for the exported copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint BeginRead(uint* seqlock)
    {
        // Acquire: pairs with the release in FinishWrite.
        uint sequence = Volatile.Read(ref *seqlock);
        return IsUpdating(sequence) ? BeginReadSlow(seqlock) : sequence;
    }

    /// <summary>weave_seqlock_begin_read_slow: yields while a write is in progress.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static uint BeginReadSlow(uint* seqlock)
    {
        // Acquire: pairs with the release in FinishWrite; the data loads that
        // follow see at least that writer's stores.
        uint sequence = Volatile.Read(ref *seqlock);
        while (IsUpdating(sequence))
        {
            SpinWaits.Yield();
            sequence = Volatile.Read(ref *seqlock);
        }
        return sequence;
    }

    /// <summary>weave_seqlock_end_read: true when the copy is consistent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool EndRead(uint* seqlock, uint previous)
    {
        // Acquire fence: the reader's data loads stay before the second load
        // of the sequence (CPython gh-121368); pairs with the full barrier of
        // LockWrite, which orders the odd sequence before the data stores.
        Volatile.ReadBarrier();
        return Volatile.Read(ref *seqlock) == previous;
    }

    /// <summary>
    /// weave_seqlock_after_fork: in a fork child only the forking thread
    /// exists, so a write in progress will never finish: reset the counter.
    /// </summary>
    internal static bool AfterFork(uint* seqlock)
    {
        if (IsUpdating(Volatile.Read(ref *seqlock)))
        {
            // No other thread exists to pair with; Volatile only keeps the
            // store a single, untorn write.
            Volatile.Write(ref *seqlock, 0);
            return true;
        }
        return false;
    }
}
