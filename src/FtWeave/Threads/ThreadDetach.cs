using FtWeave.Python;
using FtWeave.Sections;

namespace FtWeave.Threads;

/// <summary>
/// What a thread gives up while it sleeps with detach requested (weave_park's
/// detach argument, WEAVE_LOCK_DETACH): its critical sections' mutexes and its
/// CPython thread state, as CPython's own detach does. The parking lot calls
/// these outside its bucket locks, after the thread is queued: a mutex
/// released here may even wake the thread itself, which the parker absorbs.
/// A condition wait suspends and resumes the sections itself and detaches
/// the chain while it sleeps (CriticalSections.DetachForWait), so that here
/// it finds no section: the mutex it waits with may be a section's, and it
/// must be released once and re-taken once.
/// </summary>
internal static class ThreadDetach
{
    /// <summary>Returns a token for <see cref="AfterSleep"/>.</summary>
    internal static nint BeforeSleep()
    {
        if (CriticalSections.Any)
        {
            CriticalSections.SuspendAll();
        }
        return CPythonRuntime.Detach();
    }

    internal static void AfterSleep(nint token)
    {
        CPythonRuntime.Restore(token);
        if (CriticalSections.Any)
        {
            // Only the innermost section; outer ones resume as inner ones end.
            CriticalSections.Resume();
        }
    }
}
