using FtWeave.Python;

namespace FtWeave.Threads;

/// <summary>
/// What a thread gives up while it sleeps with detach requested (weave_park's
/// detach argument, WEAVE_LOCK_DETACH): its CPython thread state. The parking
/// lot calls these outside its bucket locks.
/// </summary>
internal static class ThreadDetach
{
    /// <summary>Returns a token for <see cref="AfterSleep"/>.</summary>
    internal static nint BeforeSleep() => CPythonRuntime.Detach();

    internal static void AfterSleep(nint token) => CPythonRuntime.Restore(token);
}
