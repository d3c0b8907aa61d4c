namespace FtWeave.Abi;

/// <summary>
/// Mirror of the header's <c>weave_error_t</c>. Errors are negative and
/// distinct from every status value any function returns.
/// </summary>
internal static class ErrorCodes
{
    internal const int WEAVE_OK = 0;
    internal const int WEAVE_E_INVALID = -101;   // NULL or bad argument
    internal const int WEAVE_E_NOT_OWNER = -102; // unlock of a lock not held by the caller
    internal const int WEAVE_E_NOMEM = -103;     // out of memory; nothing half-stored
    internal const int WEAVE_E_DISABLED = -104;  // experimental feature not enabled
    internal const int WEAVE_E_MISMATCH = -105;  // storage key reused with another size
    internal const int WEAVE_E_STATE = -106;     // not allowed now (e.g. thread teardown)
    internal const int WEAVE_E_DEADLOCK = -107;  // debug-mode deadlock detection

    /// <summary>Static NUL-terminated names for <c>weave_strerror</c>.</summary>
    internal static unsafe byte* Describe(int code)
    {
        System.ReadOnlySpan<byte> text = code switch
        {
            WEAVE_OK => "success\0"u8,
            WEAVE_E_INVALID => "WEAVE_E_INVALID: NULL or invalid argument\0"u8,
            WEAVE_E_NOT_OWNER => "WEAVE_E_NOT_OWNER: lock is not held by the caller\0"u8,
            WEAVE_E_NOMEM => "WEAVE_E_NOMEM: out of memory\0"u8,
            WEAVE_E_DISABLED => "WEAVE_E_DISABLED: experimental feature not enabled\0"u8,
            WEAVE_E_MISMATCH => "WEAVE_E_MISMATCH: storage key reused with a different size\0"u8,
            WEAVE_E_STATE => "WEAVE_E_STATE: call not allowed in the current state\0"u8,
            WEAVE_E_DEADLOCK => "WEAVE_E_DEADLOCK: deadlock detected\0"u8,
            _ => "unknown ft_weave error code\0"u8,
        };
        // u8 literals live in the image's read-only data: the pointer stays valid
        // for the life of the process, so C callers may keep it.
        fixed (byte* p = text)
        {
            return p;
        }
    }
}
