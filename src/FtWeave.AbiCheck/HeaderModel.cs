using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using FtWeave.AbiCheck.Interop;
using static FtWeave.AbiCheck.Interop.LibClang;

namespace FtWeave.AbiCheck;

internal sealed record HeaderParameter(string Name, AbiType Type);

/// <summary>A function the header declares (or defines <c>static inline</c>).</summary>
internal sealed record HeaderFunction(string Name, int Line, bool IsStaticInline, AbiType Return,
    IReadOnlyList<HeaderParameter> Parameters, bool Variadic);

internal sealed record HeaderField(string Name, int Offset, AbiType Type);

/// <summary>A struct definition, named by its typedef (<c>weave_mutex_t</c>) or as <c>struct tag</c>.</summary>
internal sealed record HeaderStruct(string Name, int Line, int Size, IReadOnlyList<HeaderField> Fields);

/// <summary>An enum constant or an object-like macro with an integer value.</summary>
internal sealed record HeaderConstant(string Name, int Line, long Value, string Origin);

/// <summary>
/// What <c>ft_weave.h</c> declares, as libclang sees it when it compiles the
/// header as C11 for this machine: functions with their canonical parameter
/// and return types, struct sizes and field offsets, enum constants, and the
/// integer values of its WEAVE_* / FT_WEAVE_* macros. Only declarations
/// spelled in the header itself count (not those of the system headers it
/// includes).
/// </summary>
internal sealed class HeaderModel
{
    public required string Path { get; init; }
    public string FileName => System.IO.Path.GetFileName(Path);
    public List<HeaderFunction> Functions { get; } = [];
    public List<HeaderStruct> Structs { get; } = [];
    public List<HeaderConstant> EnumConstants { get; } = [];
    public List<HeaderConstant> Macros { get; } = [];
    /// <summary>Object-like WEAVE_* macros that are not integer constants (strings, storage classes).</summary>
    public List<string> NonIntegerMacros { get; } = [];
    /// <summary>Errors libclang reported while parsing: the header does not compile, nothing else is trusted.</summary>
    public List<string> Errors { get; } = [];

    private const string ProbePrefix = "ftw_abi_probe__";

    public static unsafe HeaderModel Parse(string headerPath, IReadOnlyList<string> clangArgs)
    {
        var model = new HeaderModel { Path = System.IO.Path.GetFullPath(headerPath) };
        void* index = clang_createIndex(0, 0);
        try
        {
            var args = new List<string> { "-x", "c", "-std=c11", "-I" + System.IO.Path.GetDirectoryName(model.Path) };
            args.AddRange(clangArgs);
            void* unit = ParseUnit(index, model.Path, args, null, CXTranslationUnit_Flags.CXTranslationUnit_DetailedPreprocessingRecord);
            if (unit == null)
            {
                model.Errors.Add($"libclang could not parse {model.Path} (arguments: {string.Join(" ", args)})");
                return model;
            }
            var macroNames = new List<string>();
            try
            {
                model.Errors.AddRange(Diagnostics(unit, CXDiagnosticSeverity.CXDiagnostic_Error));
                if (model.Errors.Count > 0)
                {
                    return model;
                }
                model.Collect(clang_getTranslationUnitCursor(unit), macroNames);
            }
            finally
            {
                clang_disposeTranslationUnit(unit);
            }
            model.EvaluateMacros(index, args, macroNames);
        }
        finally
        {
            clang_disposeIndex(index);
        }
        return model;
    }

    private void Collect(CXCursor unitCursor, List<string> macroNames)
    {
        var seenFunctions = new Dictionary<string, int>();
        // Struct definitions by declaration (line and canonical spelling), and the typedef names that alias them.
        var structs = new List<(string Key, string Tag, int Line, CXCursor Decl, CXType Type)>();
        var typedefNames = new Dictionary<string, string>();
        foreach (CXCursor cursor in Children(unitCursor))
        {
            if (!IsFromMainFile(cursor))
            {
                continue;
            }
            switch (clang_getCursorKind(cursor))
            {
                case CXCursorKind.CXCursor_FunctionDecl:
                    HeaderFunction function = ReadFunction(cursor);
                    if (seenFunctions.TryGetValue(function.Name, out int at))
                    {
                        // A redeclaration: keep the first line, learn inline-ness from the definition.
                        Functions[at] = Functions[at] with { IsStaticInline = Functions[at].IsStaticInline || function.IsStaticInline };
                    }
                    else
                    {
                        seenFunctions[function.Name] = Functions.Count;
                        Functions.Add(function);
                    }
                    break;
                case CXCursorKind.CXCursor_StructDecl:
                case CXCursorKind.CXCursor_UnionDecl:
                    if (clang_isCursorDefinition(cursor) != 0)
                    {
                        CXType type = clang_getCanonicalType(clang_getCursorType(cursor));
                        structs.Add((RecordKey(cursor, type), Spelling(type), Line(cursor), cursor, type));
                    }
                    break;
                case CXCursorKind.CXCursor_TypedefDecl:
                    CXType underlying = clang_getCanonicalType(clang_getTypedefDeclUnderlyingType(cursor));
                    if (underlying.kind == CXTypeKind.CXType_Record)
                    {
                        typedefNames.TryAdd(RecordKey(clang_getTypeDeclaration(underlying), underlying), Spelling(cursor));
                    }
                    break;
                case CXCursorKind.CXCursor_EnumDecl:
                    string enumName = Spelling(clang_getCursorType(cursor));
                    foreach (CXCursor constant in Children(cursor))
                    {
                        if (clang_getCursorKind(constant) == CXCursorKind.CXCursor_EnumConstantDecl)
                        {
                            EnumConstants.Add(new HeaderConstant(Spelling(constant), Line(constant),
                                clang_getEnumConstantDeclValue(constant), enumName));
                        }
                    }
                    break;
                case CXCursorKind.CXCursor_MacroDefinition:
                    string macro = Spelling(cursor);
                    if (clang_Cursor_isMacroFunctionLike(cursor) == 0 &&
                        (macro.StartsWith("WEAVE_", StringComparison.Ordinal) || macro.StartsWith("FT_WEAVE_", StringComparison.Ordinal)))
                    {
                        macroNames.Add(macro);
                        Macros.Add(new HeaderConstant(macro, Line(cursor), 0, "macro")); // value filled in by EvaluateMacros
                    }
                    break;
            }
        }
        foreach (var (key, tag, line, decl, type) in structs)
        {
            string name = typedefNames.TryGetValue(key, out string? alias) ? alias : tag;
            var fields = new List<HeaderField>();
            foreach (CXCursor field in Children(decl))
            {
                if (clang_getCursorKind(field) == CXCursorKind.CXCursor_FieldDecl)
                {
                    fields.Add(new HeaderField(Spelling(field), (int)(clang_Cursor_getOffsetOfField(field) / 8),
                        Convert(clang_getCursorType(field))));
                }
            }
            Structs.Add(new HeaderStruct(name, line, (int)clang_Type_getSizeOf(type), fields));
        }
    }

    private static string RecordKey(CXCursor decl, CXType canonical) => Line(decl) + ":" + Spelling(canonical);

    private static HeaderFunction ReadFunction(CXCursor cursor)
    {
        CXType type = clang_getCursorType(cursor);
        var parameters = new List<HeaderParameter>();
        int count = Math.Max(0, clang_getNumArgTypes(type));
        for (uint i = 0; i < count; i++)
        {
            string name = Spelling(clang_Cursor_getArgument(cursor, i));
            parameters.Add(new HeaderParameter(name, Convert(clang_getArgType(type, i))));
        }
        bool isStaticInline = clang_Cursor_getStorageClass(cursor) == CX_StorageClass.CX_SC_Static &&
                              clang_Cursor_isFunctionInlined(cursor) != 0;
        return new HeaderFunction(Spelling(cursor), Line(cursor), isStaticInline, Convert(clang_getResultType(type)),
            parameters, clang_isFunctionTypeVariadic(type) != 0);
    }

    /// <summary>Reduces a C type to kind, size and signedness, keeping its spelling for messages.</summary>
    internal static AbiType Convert(CXType type)
    {
        string spelling = Spelling(type);
        CXType canonical = clang_getCanonicalType(type);
        int size = (int)clang_Type_getSizeOf(canonical);
        switch (canonical.kind)
        {
            case CXTypeKind.CXType_Void:
                return AbiType.Void(spelling);
            case CXTypeKind.CXType_Bool:
            case CXTypeKind.CXType_Char_U:
            case CXTypeKind.CXType_UChar:
            case CXTypeKind.CXType_Char16:
            case CXTypeKind.CXType_Char32:
            case CXTypeKind.CXType_UShort:
            case CXTypeKind.CXType_UInt:
            case CXTypeKind.CXType_ULong:
            case CXTypeKind.CXType_ULongLong:
            case CXTypeKind.CXType_UInt128:
                return AbiType.Integer(size, false, spelling);
            case CXTypeKind.CXType_Char_S:
            case CXTypeKind.CXType_SChar:
            case CXTypeKind.CXType_WChar:
            case CXTypeKind.CXType_Short:
            case CXTypeKind.CXType_Int:
            case CXTypeKind.CXType_Long:
            case CXTypeKind.CXType_LongLong:
            case CXTypeKind.CXType_Int128:
                return AbiType.Integer(size, true, spelling);
            case CXTypeKind.CXType_Enum:
                CXType integer = clang_getCanonicalType(clang_getEnumDeclIntegerType(clang_getTypeDeclaration(canonical)));
                return AbiType.Integer(size, Convert(integer).Signed, spelling);
            case CXTypeKind.CXType_Float:
            case CXTypeKind.CXType_Double:
            case CXTypeKind.CXType_LongDouble:
                return new AbiType(AbiKind.Float, size, true, spelling);
            case CXTypeKind.CXType_Pointer:
                CXType pointee = clang_getCanonicalType(clang_getPointeeType(canonical));
                if (pointee.kind is CXTypeKind.CXType_FunctionProto or CXTypeKind.CXType_FunctionNoProto)
                {
                    int count = Math.Max(0, clang_getNumArgTypes(pointee));
                    var parameters = new List<AbiType>();
                    for (uint i = 0; i < count; i++)
                    {
                        parameters.Add(Convert(clang_getArgType(pointee, i)));
                    }
                    return new AbiType(AbiKind.FunctionPointer, size, false, spelling)
                    {
                        Return = Convert(clang_getResultType(pointee)),
                        Parameters = parameters,
                    };
                }
                return AbiType.Pointer(spelling);
            case CXTypeKind.CXType_IncompleteArray:
                return AbiType.Pointer(spelling);
            case CXTypeKind.CXType_Record:
            case CXTypeKind.CXType_ConstantArray:
                return new AbiType(AbiKind.Aggregate, size, false, spelling);
            default:
                return AbiType.Unknown(spelling);
        }
    }

    /// <summary>
    /// libclang sees macros only as definitions, not values; a second parse of
    /// a small file that includes the header and turns each object-like
    /// WEAVE_* macro into an enum constant lets the compiler evaluate them.
    /// Macros that are not integer constant expressions (strings, storage
    /// classes, empty) make their enumerator invalid and are listed apart.
    /// </summary>
    private unsafe void EvaluateMacros(void* index, List<string> args, List<string> macroNames)
    {
        if (macroNames.Count == 0)
        {
            return;
        }
        var probe = new StringBuilder();
        probe.Append("#include \"").Append(Path).Append("\"\n");
        foreach (string name in macroNames)
        {
            probe.Append("enum { ").Append(ProbePrefix).Append(name).Append(" = (long long)(").Append(name).Append(") };\n");
        }
        string probePath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, "ftw_abi_probe.c");
        void* unit = ParseUnit(index, probePath, args, probe.ToString(), CXTranslationUnit_Flags.CXTranslationUnit_None);
        var values = new Dictionary<string, long>();
        if (unit != null)
        {
            try
            {
                // Probe i sits on line i + 2 of the probe file; an error there (a string, an empty
                // macro) may still leave a valid-looking enumerator with value 0, so errors decide.
                var failedLines = ErrorLinesInMainFile(unit);
                foreach (CXCursor decl in Children(clang_getTranslationUnitCursor(unit)))
                {
                    if (clang_getCursorKind(decl) != CXCursorKind.CXCursor_EnumDecl || !IsFromMainFile(decl))
                    {
                        continue;
                    }
                    foreach (CXCursor constant in Children(decl))
                    {
                        string name = Spelling(constant);
                        if (clang_getCursorKind(constant) == CXCursorKind.CXCursor_EnumConstantDecl &&
                            clang_isInvalidDeclaration(constant) == 0 && !failedLines.Contains(Line(constant)) &&
                            name.StartsWith(ProbePrefix, StringComparison.Ordinal))
                        {
                            values[name[ProbePrefix.Length..]] = clang_getEnumConstantDeclValue(constant);
                        }
                    }
                }
            }
            finally
            {
                clang_disposeTranslationUnit(unit);
            }
        }
        for (int i = Macros.Count - 1; i >= 0; i--)
        {
            if (values.TryGetValue(Macros[i].Name, out long value))
            {
                Macros[i] = Macros[i] with { Value = value };
            }
            else
            {
                NonIntegerMacros.Insert(0, Macros[i].Name);
                Macros.RemoveAt(i);
            }
        }
    }

    private static unsafe void* ParseUnit(void* index, string path, List<string> args, string? contents, CXTranslationUnit_Flags flags)
    {
        var allocations = new List<nint>();
        byte* Utf8(string s)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(s);
            allocations.Add(p);
            return (byte*)p;
        }
        try
        {
            byte** argv = stackalloc byte*[args.Count];
            for (int i = 0; i < args.Count; i++)
            {
                argv[i] = Utf8(args[i]);
            }
            CXUnsavedFile unsaved = default;
            if (contents != null)
            {
                unsaved.Filename = Utf8(path);
                unsaved.Contents = Utf8(contents);
                unsaved.Length = (nuint)Encoding.UTF8.GetByteCount(contents);
            }
            void* unit = null;
            int error = clang_parseTranslationUnit2(index, Utf8(path), argv, args.Count,
                contents != null ? &unsaved : null, contents != null ? 1u : 0u, flags, &unit);
            return error == 0 ? unit : null;
        }
        finally
        {
            foreach (nint p in allocations)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    /// <summary>The lines of the main file on which libclang reported an error (at the macro's expansion).</summary>
    private static unsafe HashSet<int> ErrorLinesInMainFile(void* unit)
    {
        var lines = new HashSet<int>();
        uint count = clang_getNumDiagnostics(unit);
        for (uint i = 0; i < count; i++)
        {
            void* diagnostic = clang_getDiagnostic(unit, i);
            CXSourceLocation location = clang_getDiagnosticLocation(diagnostic);
            if (clang_getDiagnosticSeverity(diagnostic) >= CXDiagnosticSeverity.CXDiagnostic_Error &&
                clang_Location_isFromMainFile(location) != 0)
            {
                uint line;
                clang_getExpansionLocation(location, null, &line, null, null);
                lines.Add((int)line);
            }
            clang_disposeDiagnostic(diagnostic);
        }
        return lines;
    }

    private static unsafe IEnumerable<string> Diagnostics(void* unit, CXDiagnosticSeverity atLeast)
    {
        var messages = new List<string>();
        uint count = clang_getNumDiagnostics(unit);
        for (uint i = 0; i < count; i++)
        {
            void* diagnostic = clang_getDiagnostic(unit, i);
            if (clang_getDiagnosticSeverity(diagnostic) >= atLeast)
            {
                messages.Add(Take(clang_formatDiagnostic(diagnostic, clang_defaultDiagnosticDisplayOptions())));
            }
            clang_disposeDiagnostic(diagnostic);
        }
        return messages;
    }

    /// <summary>
    /// Arguments that let libclang find the compiler's own headers (stddef.h,
    /// stdint.h): the NuGet libclang ships without its resource directory, so
    /// borrow one from a clang on the machine (clang -print-resource-dir), or
    /// else GCC's (gcc -print-file-name=include). The C library's headers
    /// (/usr/include and the multiarch directory) libclang finds by itself.
    /// </summary>
    public static List<string> SystemIncludeArgs(string? resourceDir)
    {
        if (!string.IsNullOrEmpty(resourceDir))
        {
            return ["-resource-dir", resourceDir];
        }
        var compilers = new List<string> { "clang" };
        for (int major = 30; major >= 11; major--)
        {
            compilers.Add($"clang-{major}");
        }
        foreach (string clang in compilers)
        {
            string? dir = Tools.Run(clang, "-print-resource-dir");
            if (dir != null && File.Exists(System.IO.Path.Combine(dir, "include", "stddef.h")))
            {
                return ["-resource-dir", dir];
            }
        }
        foreach (string gcc in new[] { "gcc", "cc" })
        {
            string? dir = Tools.Run(gcc, "-print-file-name=include");
            if (dir != null && File.Exists(System.IO.Path.Combine(dir, "stddef.h")))
            {
                return ["-isystem", dir];
            }
        }
        return [];
    }

    public override string ToString()
        => $"{Functions.Count} functions ({Functions.Count(f => f.IsStaticInline)} static inline), {Structs.Count} structs, " +
           $"{EnumConstants.Count} enum constants, {Macros.Count} integer macros";
}
