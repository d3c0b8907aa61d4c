using FtWeave.Interop;

namespace FtWeave.Threads;

/// <summary>
/// weave_thread_id: the glibc thread pointer (pthread_self). It is non-zero and
/// unique among live threads, and the header can compute the same value inline
/// (the recursive mutex's owner check needs it without a call into the library).
/// </summary>
internal static class ThreadIds
{
    internal static ulong Current() => Pthread.Self();
}
