using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;

namespace FtWeave.AbiCheck.Interop;

// The few libclang (clang-c/Index.h) functions the ABI check needs, bound by
// hand instead of through ClangSharp (which the NuGet copy here does not
// serve). Names, struct layouts and enum values are carried over verbatim
// from Index.h (habit 8); every signature is blittable. libclang's C API has
// been stable since LLVM 3.x, so these bindings work with the NuGet
// libclang.runtime package (LLVM 22) and with Debian's libclang1-14 alike.

/// <summary><c>typedef struct { const void *data; unsigned private_flags; } CXString;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXString
{
    public void* data;
    public uint private_flags;
}

/// <summary><c>typedef struct { enum CXCursorKind kind; int xdata; const void *data[3]; } CXCursor;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXCursor
{
    public CXCursorKind kind;
    public int xdata;
    public void* data0;
    public void* data1;
    public void* data2;
}

/// <summary><c>typedef struct { enum CXTypeKind kind; void *data[2]; } CXType;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXType
{
    public CXTypeKind kind;
    public void* data0;
    public void* data1;
}

/// <summary><c>typedef struct { const void *ptr_data[2]; unsigned int_data; } CXSourceLocation;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXSourceLocation
{
    public void* ptr_data0;
    public void* ptr_data1;
    public uint int_data;
}

/// <summary><c>struct CXUnsavedFile { const char *Filename; const char *Contents; unsigned long Length; };</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXUnsavedFile
{
    public byte* Filename;
    public byte* Contents;
    public nuint Length; // unsigned long (LP64)
}

/// <summary>The <c>enum CXCursorKind</c> values used here.</summary>
internal enum CXCursorKind
{
    CXCursor_StructDecl = 2,
    CXCursor_UnionDecl = 3,
    CXCursor_EnumDecl = 5,
    CXCursor_FieldDecl = 6,
    CXCursor_EnumConstantDecl = 7,
    CXCursor_FunctionDecl = 8,
    CXCursor_VarDecl = 9,
    CXCursor_ParmDecl = 10,
    CXCursor_TypedefDecl = 20,
    CXCursor_MacroDefinition = 501,
}

/// <summary>The <c>enum CXTypeKind</c> values used here.</summary>
internal enum CXTypeKind
{
    CXType_Invalid = 0,
    CXType_Unexposed = 1,
    CXType_Void = 2,
    CXType_Bool = 3,
    CXType_Char_U = 4,
    CXType_UChar = 5,
    CXType_Char16 = 6,
    CXType_Char32 = 7,
    CXType_UShort = 8,
    CXType_UInt = 9,
    CXType_ULong = 10,
    CXType_ULongLong = 11,
    CXType_UInt128 = 12,
    CXType_Char_S = 13,
    CXType_SChar = 14,
    CXType_WChar = 15,
    CXType_Short = 16,
    CXType_Int = 17,
    CXType_Long = 18,
    CXType_LongLong = 19,
    CXType_Int128 = 20,
    CXType_Float = 21,
    CXType_Double = 22,
    CXType_LongDouble = 23,
    CXType_Pointer = 101,
    CXType_Record = 105,
    CXType_Enum = 106,
    CXType_Typedef = 107,
    CXType_FunctionNoProto = 110,
    CXType_FunctionProto = 111,
    CXType_ConstantArray = 112,
    CXType_IncompleteArray = 114,
    CXType_Elaborated = 119,
}

/// <summary><c>enum CXChildVisitResult</c>.</summary>
internal enum CXChildVisitResult
{
    CXChildVisit_Break = 0,
    CXChildVisit_Continue = 1,
    CXChildVisit_Recurse = 2,
}

/// <summary><c>enum CXDiagnosticSeverity</c>.</summary>
internal enum CXDiagnosticSeverity
{
    CXDiagnostic_Ignored = 0,
    CXDiagnostic_Note = 1,
    CXDiagnostic_Warning = 2,
    CXDiagnostic_Error = 3,
    CXDiagnostic_Fatal = 4,
}

/// <summary><c>enum CX_StorageClass</c> (the values used here).</summary>
internal enum CX_StorageClass
{
    CX_SC_Invalid = 0,
    CX_SC_None = 1,
    CX_SC_Extern = 2,
    CX_SC_Static = 3,
}

/// <summary><c>enum CXTranslationUnit_Flags</c> (the values used here).</summary>
[Flags]
internal enum CXTranslationUnit_Flags : uint
{
    CXTranslationUnit_None = 0x0,
    CXTranslationUnit_DetailedPreprocessingRecord = 0x01,
}

internal static unsafe partial class LibClang
{
    private const string Library = "libclang";

    [LibraryImport(Library, EntryPoint = "clang_createIndex")]
    internal static partial void* clang_createIndex(int excludeDeclarationsFromPCH, int displayDiagnostics);

    [LibraryImport(Library, EntryPoint = "clang_disposeIndex")]
    internal static partial void clang_disposeIndex(void* index);

    /// <summary>Returns a <c>CXErrorCode</c> (0 = success) and the unit through <paramref name="out_TU"/>.</summary>
    [LibraryImport(Library, EntryPoint = "clang_parseTranslationUnit2")]
    internal static partial int clang_parseTranslationUnit2(void* index, byte* source_filename, byte** command_line_args,
        int num_command_line_args, CXUnsavedFile* unsaved_files, uint num_unsaved_files, CXTranslationUnit_Flags options,
        void** out_TU);

    [LibraryImport(Library, EntryPoint = "clang_disposeTranslationUnit")]
    internal static partial void clang_disposeTranslationUnit(void* unit);

    [LibraryImport(Library, EntryPoint = "clang_getTranslationUnitCursor")]
    internal static partial CXCursor clang_getTranslationUnitCursor(void* unit);

    /// <summary>The visitor is <c>enum CXChildVisitResult (*)(CXCursor cursor, CXCursor parent, CXClientData data)</c>.</summary>
    [LibraryImport(Library, EntryPoint = "clang_visitChildren")]
    internal static partial uint clang_visitChildren(CXCursor parent,
        delegate* unmanaged<CXCursor, CXCursor, void*, CXChildVisitResult> visitor, void* client_data);

    [LibraryImport(Library, EntryPoint = "clang_getCursorKind")]
    internal static partial CXCursorKind clang_getCursorKind(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_getCursorSpelling")]
    internal static partial CXString clang_getCursorSpelling(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_getCString")]
    internal static partial byte* clang_getCString(CXString text);

    [LibraryImport(Library, EntryPoint = "clang_disposeString")]
    internal static partial void clang_disposeString(CXString text);

    [LibraryImport(Library, EntryPoint = "clang_getClangVersion")]
    internal static partial CXString clang_getClangVersion();

    [LibraryImport(Library, EntryPoint = "clang_getCursorType")]
    internal static partial CXType clang_getCursorType(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_getTypedefDeclUnderlyingType")]
    internal static partial CXType clang_getTypedefDeclUnderlyingType(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_getTypeDeclaration")]
    internal static partial CXCursor clang_getTypeDeclaration(CXType type);

    [LibraryImport(Library, EntryPoint = "clang_getCanonicalType")]
    internal static partial CXType clang_getCanonicalType(CXType type);

    [LibraryImport(Library, EntryPoint = "clang_getPointeeType")]
    internal static partial CXType clang_getPointeeType(CXType type);

    [LibraryImport(Library, EntryPoint = "clang_getResultType")]
    internal static partial CXType clang_getResultType(CXType functionType);

    [LibraryImport(Library, EntryPoint = "clang_getNumArgTypes")]
    internal static partial int clang_getNumArgTypes(CXType functionType);

    [LibraryImport(Library, EntryPoint = "clang_getArgType")]
    internal static partial CXType clang_getArgType(CXType functionType, uint i);

    [LibraryImport(Library, EntryPoint = "clang_isFunctionTypeVariadic")]
    internal static partial uint clang_isFunctionTypeVariadic(CXType functionType);

    [LibraryImport(Library, EntryPoint = "clang_Cursor_getArgument")]
    internal static partial CXCursor clang_Cursor_getArgument(CXCursor function, uint i);

    [LibraryImport(Library, EntryPoint = "clang_getTypeSpelling")]
    internal static partial CXString clang_getTypeSpelling(CXType type);

    [LibraryImport(Library, EntryPoint = "clang_getEnumDeclIntegerType")]
    internal static partial CXType clang_getEnumDeclIntegerType(CXCursor enumDecl);

    /// <summary>Bytes, or a negative <c>CXTypeLayoutError</c>.</summary>
    [LibraryImport(Library, EntryPoint = "clang_Type_getSizeOf")]
    internal static partial long clang_Type_getSizeOf(CXType type);

    /// <summary>Bits, or a negative <c>CXTypeLayoutError</c>.</summary>
    [LibraryImport(Library, EntryPoint = "clang_Cursor_getOffsetOfField")]
    internal static partial long clang_Cursor_getOffsetOfField(CXCursor field);

    [LibraryImport(Library, EntryPoint = "clang_getEnumConstantDeclValue")]
    internal static partial long clang_getEnumConstantDeclValue(CXCursor constant);

    [LibraryImport(Library, EntryPoint = "clang_Cursor_getStorageClass")]
    internal static partial CX_StorageClass clang_Cursor_getStorageClass(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_Cursor_isFunctionInlined")]
    internal static partial uint clang_Cursor_isFunctionInlined(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_isCursorDefinition")]
    internal static partial uint clang_isCursorDefinition(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_isInvalidDeclaration")]
    internal static partial uint clang_isInvalidDeclaration(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_Cursor_isMacroFunctionLike")]
    internal static partial uint clang_Cursor_isMacroFunctionLike(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_getCursorLocation")]
    internal static partial CXSourceLocation clang_getCursorLocation(CXCursor cursor);

    [LibraryImport(Library, EntryPoint = "clang_Location_isFromMainFile")]
    internal static partial int clang_Location_isFromMainFile(CXSourceLocation location);

    [LibraryImport(Library, EntryPoint = "clang_getSpellingLocation")]
    internal static partial void clang_getSpellingLocation(CXSourceLocation location, void** file, uint* line,
        uint* column, uint* offset);

    [LibraryImport(Library, EntryPoint = "clang_getExpansionLocation")]
    internal static partial void clang_getExpansionLocation(CXSourceLocation location, void** file, uint* line,
        uint* column, uint* offset);

    [LibraryImport(Library, EntryPoint = "clang_getNumDiagnostics")]
    internal static partial uint clang_getNumDiagnostics(void* unit);

    [LibraryImport(Library, EntryPoint = "clang_getDiagnostic")]
    internal static partial void* clang_getDiagnostic(void* unit, uint index);

    [LibraryImport(Library, EntryPoint = "clang_getDiagnosticLocation")]
    internal static partial CXSourceLocation clang_getDiagnosticLocation(void* diagnostic);

    [LibraryImport(Library, EntryPoint = "clang_getDiagnosticSeverity")]
    internal static partial CXDiagnosticSeverity clang_getDiagnosticSeverity(void* diagnostic);

    [LibraryImport(Library, EntryPoint = "clang_formatDiagnostic")]
    internal static partial CXString clang_formatDiagnostic(void* diagnostic, uint options);

    [LibraryImport(Library, EntryPoint = "clang_defaultDiagnosticDisplayOptions")]
    internal static partial uint clang_defaultDiagnosticDisplayOptions();

    [LibraryImport(Library, EntryPoint = "clang_disposeDiagnostic")]
    internal static partial void clang_disposeDiagnostic(void* diagnostic);

    // ---- Helpers over the raw calls ------------------------------------

    /// <summary>Copies and disposes a <c>CXString</c>.</summary>
    internal static string Take(CXString text)
    {
        try
        {
            byte* p = clang_getCString(text);
            return p == null ? "" : Marshal.PtrToStringUTF8((nint)p) ?? "";
        }
        finally
        {
            clang_disposeString(text);
        }
    }

    internal static string Spelling(CXCursor cursor) => Take(clang_getCursorSpelling(cursor));

    internal static string Spelling(CXType type) => Take(clang_getTypeSpelling(type));

    /// <summary>The direct children of <paramref name="parent"/>, in source order.</summary>
    internal static List<CXCursor> Children(CXCursor parent)
    {
        var children = new List<CXCursor>();
        GCHandle handle = GCHandle.Alloc(children);
        try
        {
            clang_visitChildren(parent, &CollectChild, (void*)GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly]
    private static CXChildVisitResult CollectChild(CXCursor cursor, CXCursor parent, void* clientData)
    {
        // No exception may escape into libclang: List.Add only fails on out of memory.
        ((List<CXCursor>)GCHandle.FromIntPtr((nint)clientData).Target!).Add(cursor);
        return CXChildVisitResult.CXChildVisit_Continue;
    }

    /// <summary>The line the cursor is spelled on (0 if unknown).</summary>
    internal static int Line(CXCursor cursor)
    {
        uint line;
        clang_getSpellingLocation(clang_getCursorLocation(cursor), null, &line, null, null);
        return (int)line;
    }

    internal static bool IsFromMainFile(CXCursor cursor)
        => clang_Location_isFromMainFile(clang_getCursorLocation(cursor)) != 0;

    // ---- Finding the native library ------------------------------------

    /// <summary>Where libclang was loaded from (for the log).</summary>
    internal static string LoadedFrom { get; private set; } = "(not loaded)";

    /// <summary>
    /// Resolves "libclang": an explicit path (--libclang or FT_WEAVE_LIBCLANG)
    /// first, then the NuGet runtime package's copy next to the tool (the
    /// runtime's normal probing through the .deps.json), then the system's
    /// libclang (Debian installs libclang1-NN as libclang-NN.so.1 and
    /// /usr/lib/llvm-NN/lib/libclang.so.1).
    /// </summary>
    internal static void UseLibrary(string? explicitPath)
    {
        NativeLibrary.SetDllImportResolver(typeof(LibClang).Assembly, (name, assembly, searchPath) =>
        {
            if (name != Library)
            {
                return 0;
            }
            foreach (string candidate in Candidates(explicitPath))
            {
                nint handle;
                bool loaded = Path.IsPathRooted(candidate)
                    ? NativeLibrary.TryLoad(candidate, out handle)
                    : NativeLibrary.TryLoad(candidate, assembly, searchPath, out handle);
                if (loaded)
                {
                    LoadedFrom = candidate == Library ? DescribeDefault(assembly) : candidate;
                    return handle;
                }
            }
            throw new DllNotFoundException(
                "libclang not found: tried " + string.Join(", ", Candidates(explicitPath)) +
                " (restore the libclang.runtime NuGet package, install Debian's libclang1-NN, or pass --libclang PATH)");
        });
    }

    private static IEnumerable<string> Candidates(string? explicitPath)
    {
        explicitPath ??= Environment.GetEnvironmentVariable("FT_WEAVE_LIBCLANG");
        if (!string.IsNullOrEmpty(explicitPath))
        {
            yield return explicitPath;
            yield break;
        }
        yield return Library;
        yield return "libclang.so.1";
        for (int major = 30; major >= 11; major--)
        {
            yield return $"libclang-{major}.so.1";
        }
        foreach (string dir in SystemLlvmLibDirs())
        {
            yield return Path.Combine(dir, "libclang.so.1");
        }
    }

    private static IEnumerable<string> SystemLlvmLibDirs()
    {
        if (!Directory.Exists("/usr/lib"))
        {
            yield break;
        }
        var dirs = new List<string>(Directory.GetDirectories("/usr/lib", "llvm-*"));
        dirs.Sort(StringComparer.Ordinal);
        dirs.Reverse();
        foreach (string dir in dirs)
        {
            yield return Path.Combine(dir, "lib");
        }
    }

    private static string DescribeDefault(Assembly assembly)
    {
        string local = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier,
            "native", "libclang.so");
        return File.Exists(local) ? local : "libclang (default probing of " + assembly.GetName().Name + ")";
    }
}
