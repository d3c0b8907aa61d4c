using System.Runtime.InteropServices;
using FtWeave.Abi;
using FtWeave.Interop;
using FtWeave.Parking;
using FtWeave.Python;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Exports;

/// <summary>ft_weave.h section 3, "Parking lot".</summary>
internal static unsafe class ParkingLotExports
{
    [UnmanagedCallersOnly(EntryPoint = "weave_park")]
    private static int Park(void* address, void* expected, nuint addressSize, long timeoutNs, void* parkArg, int detach)
    {
        if (address == null || expected == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_park: address or expected is NULL\0"u8);
        }
        if (addressSize != 1 && addressSize != 2 && addressSize != 4 && addressSize != 8)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_park: address_size must be 1, 2, 4 or 8\0"u8);
        }
        if (((nuint)address & (addressSize - 1)) != 0)
        {
            // An unaligned value cannot be read atomically.
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_park: address is not aligned to address_size\0"u8);
        }
        return ParkingLot.Park(address, expected, (int)addressSize, timeoutNs, parkArg, detach != 0);
    }

    /// <summary>Calls the user's C callback under the bucket lock.</summary>
    private struct ForeignCallback : IUnparkCallback
    {
        public delegate* unmanaged<void*, void*, int, void> Fn;
        public void* Arg;

        public void OnUnpark(void* parkArg, bool hasMoreWaiters)
        {
            if (Fn != null)
            {
                Fn(Arg, parkArg, hasMoreWaiters ? 1 : 0);
            }
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_unpark")]
    private static int Unpark(void* address, delegate* unmanaged<void*, void*, int, void> fn, void* arg)
    {
        if (address == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_unpark: address is NULL\0"u8);
        }
        var callback = new ForeignCallback { Fn = fn, Arg = arg };
        return ParkingLot.Unpark(address, ref callback);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_unpark_all")]
    private static int UnparkAll(void* address)
    {
        if (address == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_unpark_all: address is NULL\0"u8);
        }
        return ParkingLot.UnparkAll(address);
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_parking_lot_after_fork")]
    private static void AfterFork() => ParkingLot.AfterFork();

    [UnmanagedCallersOnly(EntryPoint = "weave_set_python_api")]
    private static int SetPythonApi(weave_python_api_t* api)
    {
        if (api == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_set_python_api: api is NULL\0"u8);
        }
        if (api->thread_state_get == null || api->save_thread == null || api->restore_thread == null
            || api->make_pending_calls == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_set_python_api: a required function is NULL\0"u8);
        }
        var symbols = new Native.PythonApi
        {
            ThreadStateGet = api->thread_state_get,
            GilStateCheck = api->gil_state_check,
            SaveThread = api->save_thread,
            RestoreThread = api->restore_thread,
            MakePendingCalls = api->make_pending_calls,
        };
        CPythonRuntime.SetApi(symbols);
        return WEAVE_OK;
    }

    [UnmanagedCallersOnly(EntryPoint = "weave_set_python_errors")]
    private static int SetPythonErrors(weave_python_errors_t* errors)
    {
        if (errors == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_set_python_errors: errors is NULL\0"u8);
        }
        if (errors->set_string == null || errors->value_error == null || errors->memory_error == null
            || errors->runtime_error == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_set_python_errors: a member is NULL\0"u8);
        }
        Native.PythonSetErrors((void*)errors->set_string, errors->value_error, errors->memory_error, errors->runtime_error);
        return WEAVE_OK;
    }
}
