using System.Collections.Generic;

namespace FtWeave.AbiCheck;

/// <summary>
/// Header macros whose C# counterparts do not carry the C name (habit 8 asks
/// for it; these predate the check). A C# constant spelled exactly like the
/// macro or enum constant (as <c>FtWeave.Abi.ErrorCodes.WEAVE_E_INVALID</c>)
/// needs no entry. Every entry is checked in both directions: a macro that
/// is gone from the header or a C# constant that is gone from the assembly is
/// a difference, so the table cannot go stale silently. Macros in neither
/// place are listed as "not compared" in the tool's output.
/// </summary>
internal static class ConstantMap
{
    public static readonly IReadOnlyDictionary<string, string> MacroToCSharp = new Dictionary<string, string>
    {
        // Parking lot results (Parking/ParkingLot.cs)
        ["WEAVE_PARK_OK"] = "FtWeave.Parking.ParkResult.Ok",
        ["WEAVE_PARK_AGAIN"] = "FtWeave.Parking.ParkResult.Again",
        ["WEAVE_PARK_TIMEOUT"] = "FtWeave.Parking.ParkResult.Timeout",
        ["WEAVE_PARK_INTR"] = "FtWeave.Parking.ParkResult.Interrupted",
        // Lock statuses and flags (Locks/LockStatus.cs)
        ["WEAVE_LOCK_FAILURE"] = "FtWeave.Locks.LockStatus.Failure",
        ["WEAVE_LOCK_ACQUIRED"] = "FtWeave.Locks.LockStatus.Acquired",
        ["WEAVE_LOCK_INTR"] = "FtWeave.Locks.LockStatus.Interrupted",
        ["WEAVE_LOCK_DONT_DETACH"] = "FtWeave.Locks.LockFlags.DontDetach",
        ["WEAVE_LOCK_DETACH"] = "FtWeave.Locks.LockFlags.Detach",
        ["WEAVE_LOCK_HANDLE_SIGNALS"] = "FtWeave.Locks.LockFlags.HandleSignals",
        ["WEAVE_LOCK_FAIL_IF_INTERRUPTED"] = "FtWeave.Locks.LockFlags.FailIfInterrupted",
        ["WEAVE_LOCK_ALL_FLAGS"] = "FtWeave.Locks.LockFlags.All",
        // State-word bits the inline fast paths in the header share with the C# slow paths
        ["WEAVE_MUTEX_LOCKED"] = "FtWeave.Locks.Mutex.Locked",
        ["WEAVE_MUTEX_HAS_PARKED"] = "FtWeave.Locks.Mutex.HasParked",
        ["WEAVE_RAW_MUTEX_LOCKED"] = "FtWeave.Parking.WordLock.Locked",
        ["WEAVE_EVENT_SET"] = "FtWeave.Locks.Event.Set",
        ["WEAVE_EVENT_HAS_PARKED"] = "FtWeave.Locks.Event.HasParked",
        ["WEAVE_ONCE_RUNNING"] = "FtWeave.Locks.Once.Running",
        ["WEAVE_ONCE_HAS_PARKED"] = "FtWeave.Locks.Once.HasParked",
        ["WEAVE_ONCE_DONE"] = "FtWeave.Locks.Once.Done",
        ["WEAVE_RWMUTEX_WRITE_LOCKED"] = "FtWeave.Locks.RWMutex.WriteLocked",
        ["WEAVE_RWMUTEX_HAS_PARKED"] = "FtWeave.Locks.RWMutex.HasParked",
        ["WEAVE_RWMUTEX_READER_SHIFT"] = "FtWeave.Locks.RWMutex.ReaderShift",
        ["WEAVE_RWMUTEX_ONE_READER"] = "FtWeave.Locks.RWMutex.OneReader",
        // Limits
        ["WEAVE_DESTRUCTOR_ROUNDS"] = "FtWeave.Threads.ThreadExitDestructors.MaxRounds",
        ["WEAVE_STORAGE_KEY_MAX"] = "FtWeave.Storage.StorageKeys.MaxKeyLength",
        // Versions (Abi/LibraryVersion.cs)
        ["FT_WEAVE_VERSION_MAJOR"] = "FtWeave.Abi.LibraryVersion.Major",
        ["FT_WEAVE_VERSION_MINOR"] = "FtWeave.Abi.LibraryVersion.Minor",
        ["FT_WEAVE_VERSION_PATCH"] = "FtWeave.Abi.LibraryVersion.Patch",
        ["FT_WEAVE_ABI_VERSION"] = "FtWeave.Abi.LibraryVersion.AbiVersion",
    };
}
