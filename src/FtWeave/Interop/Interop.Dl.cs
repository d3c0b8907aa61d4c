using System.Runtime.InteropServices;

namespace FtWeave.Interop;

/// <summary>The dynamic linker's symbol lookup (in libc since glibc 2.34).</summary>
internal static unsafe partial class Dl
{
    /// <summary>RTLD_DEFAULT: search the global scope (the executable and every RTLD_GLOBAL library).</summary>
    internal const nint RTLD_DEFAULT = 0;

    [LibraryImport("libc", EntryPoint = "dlsym")]
    internal static partial void* Sym(nint handle, byte* name);

    internal const int RTLD_LAZY = 0x1;
    internal const int RTLD_NOLOAD = 0x4;

    /// <summary>glibc's Dl_info.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct DlInfo
    {
        public byte* dli_fname;
        public void* dli_fbase;
        public byte* dli_sname;
        public void* dli_saddr;
    }

    /// <summary>glibc's struct dl_find_object (2.35+), with room to spare for
    /// the fields other architectures add.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FindObjectResult
    {
        public ulong dlfo_flags;
        public void* dlfo_map_start;
        public void* dlfo_map_end;
        /// <summary>The object's struct link_map, which is also its dlopen handle.</summary>
        public LinkMap* dlfo_link_map;
        public void* dlfo_eh_frame;
        public fixed ulong reserved[16];
    }

    /// <summary>The public head of glibc's struct link_map (link.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct LinkMap
    {
        public nuint l_addr;
        /// <summary>The object's path; "" for the program itself.</summary>
        public byte* l_name;
    }

    /// <summary>
    /// The object containing <paramref name="address"/>, without the loader
    /// lock (glibc 2.35+); 0, or -1 when no object contains it. Never blocks.
    /// </summary>
    [LibraryImport("libc", EntryPoint = "_dl_find_object")]
    [SuppressGCTransition]
    internal static partial int FindObject(void* address, FindObjectResult* result);

    // These three take the loader lock: never called with a lock of ours held
    // that a thread inside a constructor could be waiting for.
    [LibraryImport("libc", EntryPoint = "dladdr")]
    internal static partial int Addr(void* address, DlInfo* info);

    [LibraryImport("libc", EntryPoint = "dlopen")]
    internal static partial void* Open(byte* file, int mode);

    [LibraryImport("libc", EntryPoint = "dlclose")]
    internal static partial int Close(void* handle);
}
