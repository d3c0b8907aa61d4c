using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>The dynamic linker's symbol lookup (in libc since glibc 2.34).</summary>
internal static unsafe partial class Dl
{
    /// <summary>RTLD_DEFAULT: search the global scope (the executable and every RTLD_GLOBAL library).</summary>
    internal const nint RTLD_DEFAULT = 0;

    [LibraryImport("libc", EntryPoint = "dlsym")]
    internal static partial void* Sym(nint handle, byte* name);
}
