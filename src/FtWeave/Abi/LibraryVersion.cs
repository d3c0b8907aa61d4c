namespace FtWeave.Abi;

/// <summary>
/// Mirrors FT_WEAVE_VERSION_* and FT_WEAVE_ABI_VERSION in ft_weave.h; the
/// ctests compare the header's macros with what these exports return.
/// </summary>
internal static class LibraryVersion
{
    internal const int Major = 0;
    internal const int Minor = 1;
    internal const int Patch = 0;
    internal const int AbiVersion = 1;
    internal static System.ReadOnlySpan<byte> VersionString => "0.1.0\0"u8;
}
