using System.Runtime.InteropServices;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>
/// ft_weave.h section 4, "Seqlock". weave_seqlock_begin_read and
/// weave_seqlock_end_read are the exported copies of the header's static
/// inline functions (same behaviour, for FFIs). The writer functions return
/// void: misuse is reported through weave_last_error() only.
/// </summary>
internal static unsafe class SeqLockExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_lock_write")]
    private static void LockWrite(uint* seqlock)
    {
        if (seqlock == null)
        {
            NullLock("weave_seqlock_lock_write: seqlock is NULL\0"u8);
            return;
        }
        SeqLock.LockWrite(seqlock);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_unlock_write")]
    private static void UnlockWrite(uint* seqlock)
    {
        if (seqlock == null)
        {
            NullLock("weave_seqlock_unlock_write: seqlock is NULL\0"u8);
            return;
        }
        if (!SeqLock.FinishWrite(seqlock, publish: true))
        {
            ThreadContexts.SetError(WEAVE_E_NOT_OWNER, "weave_seqlock_unlock_write: the seqlock is not write-locked\0"u8);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_abandon_write")]
    private static void AbandonWrite(uint* seqlock)
    {
        if (seqlock == null)
        {
            NullLock("weave_seqlock_abandon_write: seqlock is NULL\0"u8);
            return;
        }
        if (!SeqLock.FinishWrite(seqlock, publish: false))
        {
            ThreadContexts.SetError(WEAVE_E_NOT_OWNER, "weave_seqlock_abandon_write: the seqlock is not write-locked\0"u8);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_begin_read")]
    private static uint BeginRead(uint* seqlock)
    {
        if (seqlock == null)
        {
            NullLock("weave_seqlock_begin_read: seqlock is NULL\0"u8);
            return 0;
        }
        return SeqLock.BeginRead(seqlock);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_begin_read_slow")]
    private static uint BeginReadSlow(uint* seqlock)
    {
        if (seqlock == null)
        {
            NullLock("weave_seqlock_begin_read: seqlock is NULL\0"u8);
            return 0;
        }
        return SeqLock.BeginReadSlow(seqlock);
    }

    // As the inline function: 0 (retry) for NULL, with no error recorded.
    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_end_read")]
    private static int EndRead(uint* seqlock, uint previous) => seqlock != null && SeqLock.EndRead(seqlock, previous) ? 1 : 0;

    [UnmanagedCallersOnly(EntryPoint = "weave_seqlock_after_fork")]
    private static int AfterFork(uint* seqlock)
    {
        if (seqlock == null)
        {
            return NullLock("weave_seqlock_after_fork: seqlock is NULL\0"u8);
        }
        return SeqLock.AfterFork(seqlock) ? 1 : 0;
    }

    private static int NullLock(System.ReadOnlySpan<byte> message) => ThreadContexts.SetError(WEAVE_E_INVALID, message);
}
