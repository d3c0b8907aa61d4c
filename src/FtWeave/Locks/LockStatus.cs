namespace FtWeave.Locks;

/// <summary>WEAVE_LOCK_* statuses and flags of ft_weave.h.</summary>
internal static class LockStatus
{
    internal const int Failure = 0;
    internal const int Acquired = 1;
    internal const int Interrupted = 2;
}

internal static class LockFlags
{
    internal const int DontDetach = 0;
    internal const int Detach = 1;
    internal const int HandleSignals = 2;
    internal const int FailIfInterrupted = 4;
    internal const int All = Detach | HandleSignals | FailIfInterrupted;
}
