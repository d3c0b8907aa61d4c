using System.Runtime.CompilerServices;
using FtWeave.Interop;

namespace FtWeave.Threads;

/// <summary>
/// weave_thread_id: a 64-bit counter value assigned on the thread's first call
/// and never reused in the process (src/native/thread_id.c explains the
/// storage: a pthread key of its own, kept through thread teardown). It used
/// to be pthread_self(), which glibc hands to the next thread when one exits:
/// a recursive mutex left locked by an exited thread then belonged to
/// whichever thread got its descriptor next.
/// </summary>
internal static class ThreadIds
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Current()
    {
        // The peek never blocks (no GC transition); only a thread's first
        // call takes the assigning path, which may allocate in libc.
        ulong id = Native.ThreadIdPeek();
        return id != 0 ? id : Native.ThreadId();
    }
}
