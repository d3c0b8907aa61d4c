using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace FtWeave.AbiCheck;

/// <summary>
/// Compares the three views of the ABI (header, C# assembly, exported
/// symbols) and lists every difference, one line each, with the names a
/// reader needs to find it.
/// </summary>
internal sealed partial class Comparison(HeaderModel header, AssemblyModel assembly, LibraryExports library)
{
    public List<string> Differences { get; } = [];
    /// <summary>What was looked at but could not be compared (not a failure).</summary>
    public List<string> Notes { get; } = [];
    public int FunctionsChecked { get; private set; }
    public int StructsChecked { get; private set; }
    public int ConstantsChecked { get; private set; }

    public Comparison Run()
    {
        if (header.Errors.Count > 0)
        {
            Differences.AddRange(header.Errors.Select(e => $"{header.FileName} does not compile: {e}"));
            return this;
        }
        CompareFunctions();
        CompareStructs();
        CompareConstants();
        return this;
    }

    private void Difference(string message) => Differences.Add(message);

    // ---- Functions: header declarations, C# entry points, exported symbols ----

    private void CompareFunctions()
    {
        var entryPoints = new Dictionary<string, EntryPoint>(StringComparer.Ordinal);
        // Header functions the C part defines (src/native), each with the C#
        // entry points that serve as its slow paths ([CalledFromNative]).
        var slowPaths = new Dictionary<string, List<EntryPoint>>(StringComparer.Ordinal);
        foreach (EntryPoint entryPoint in assembly.EntryPoints)
        {
            if (entryPoint.Internal)
            {
                CheckInternal(entryPoint, slowPaths);
                continue;
            }
            if (!entryPoints.TryAdd(entryPoint.Name, entryPoint))
            {
                Difference($"C# entry point {entryPoint.Name} is defined twice: {entryPoints[entryPoint.Name].Method} and {entryPoint.Method}");
            }
        }
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (HeaderFunction function in header.Functions)
        {
            declared.Add(function.Name);
            if (function.IsStaticInline && function.Name.StartsWith("weave__", StringComparison.Ordinal))
            {
                // The header's private helpers (weave__*): not API, never exported.
                continue;
            }
            FunctionsChecked++;
            string where = $"declared in {header.FileName}:{function.Line}{(function.IsStaticInline ? ", static inline" : "")}";
            entryPoints.TryGetValue(function.Name, out EntryPoint? entryPoint);
            bool exported = library.Symbols.Contains(function.Name);
            if (slowPaths.Remove(function.Name, out List<EntryPoint>? slow))
            {
                // Defined in C (its prototype is checked by the C compiler,
                // which sees the header); each C# slow path takes the same
                // parameters, which the comparison below checks.
                if (entryPoint != null)
                {
                    Difference($"{function.Name} is defined both by the C part (slow path {slow[0].Method}) and by the C# entry point {entryPoint.Method}");
                }
                else if (!exported)
                {
                    Difference($"missing export: {function.Name} ({where}; defined by the C part, whose slow path is {slow[0].Method}, " +
                               $"but {library.FileName} does not export it: missing from the version script?)");
                }
                foreach (EntryPoint path in slow)
                {
                    CompareSignature(function, path);
                }
                continue;
            }
            if (!exported)
            {
                Difference(entryPoint == null
                    ? $"missing export: {function.Name} ({where}; no [UnmanagedCallersOnly] entry point in {FileName(assembly.Path)})"
                    : $"missing export: {function.Name} ({where}; the C# entry point {entryPoint.Method} exists, " +
                      $"but {library.FileName} does not export it: stale build?)");
            }
            else if (entryPoint == null)
            {
                Difference($"no C# entry point for {function.Name} ({where}), although {library.FileName} exports it");
            }
            if (entryPoint != null)
            {
                CompareSignature(function, entryPoint);
            }
        }
        foreach ((string name, List<EntryPoint> paths) in slowPaths)
        {
            Difference($"{paths[0].Method} is marked as the slow path of {name}, which {header.FileName} does not declare");
        }
        var undeclared = new SortedSet<string>(library.Symbols.Where(s => !declared.Contains(s)), StringComparer.Ordinal);
        undeclared.UnionWith(entryPoints.Keys.Where(n => !declared.Contains(n)));
        foreach (string name in undeclared)
        {
            bool exported = library.Symbols.Contains(name);
            entryPoints.TryGetValue(name, out EntryPoint? entryPoint);
            string from = (exported, entryPoint) switch
            {
                (true, not null) => $"C# entry point {entryPoint.Method}",
                (true, null) => $"exported by {library.FileName}, no C# entry point",
                (false, _) => $"C# entry point {entryPoint!.Method}, not exported by {library.FileName}: stale build?",
            };
            Difference($"extra export: {name} (not declared in {header.FileName}; {from})");
        }
    }

    /// <summary>
    /// An entry point only the C part calls: it must not be exported (the C
    /// part declares it hidden), and a slow path is recorded for its function.
    /// </summary>
    private void CheckInternal(EntryPoint entryPoint, Dictionary<string, List<EntryPoint>> slowPaths)
    {
        if (library.Symbols.Contains(entryPoint.Name))
        {
            Difference($"internal entry point exported: {entryPoint.Name} ({entryPoint.Method} is [CalledFromNative], " +
                       $"but {library.FileName} exports it: not declared hidden in src/native/ftw_native.h?)");
        }
        if (entryPoint.SlowPathOf != null)
        {
            if (!slowPaths.TryGetValue(entryPoint.SlowPathOf, out List<EntryPoint>? list))
            {
                slowPaths[entryPoint.SlowPathOf] = list = [];
            }
            list.Add(entryPoint);
        }
    }

    private void CompareSignature(HeaderFunction function, EntryPoint entryPoint)
    {
        string name = function.Name;
        if (function.Variadic)
        {
            Difference($"{name} is variadic in {header.FileName}: an [UnmanagedCallersOnly] method cannot implement it");
        }
        string? why = AbiType.Mismatch(function.Return, entryPoint.Return);
        if (why != null)
        {
            Difference($"return type of {name}: header {function.Return.Describe()} vs C# {entryPoint.Return.Describe()}" + Because(why));
        }
        if (function.Parameters.Count != entryPoint.Parameters.Count)
        {
            Difference($"parameter count of {name}: header {function.Parameters.Count} vs C# {entryPoint.Parameters.Count} ({entryPoint.Method})");
        }
        for (int i = 0; i < Math.Min(function.Parameters.Count, entryPoint.Parameters.Count); i++)
        {
            HeaderParameter c = function.Parameters[i];
            HeaderParameter cs = entryPoint.Parameters[i];
            why = AbiType.Mismatch(c.Type, cs.Type);
            if (why != null)
            {
                string label = c.Name.Length > 0 ? $"parameter {i + 1} ({c.Name})" : $"parameter {i + 1}";
                Difference($"{label} of {name}: header {c.Type.Describe()} vs C# {cs.Type.Describe()}" + Because(why));
            }
        }
    }

    private static string Because(string why) => why.Length == 0 ? "" : ": " + why;

    // ---- Structs: header sizes and offsets, C# mirror layouts ----

    private void CompareStructs()
    {
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (HeaderStruct c in header.Structs)
        {
            declared.Add(c.Name);
            StructsChecked++;
            string name = $"struct {c.Name}";
            if (!assembly.Structs.TryGetValue(c.Name, out ManagedStruct? cs))
            {
                Difference($"{name}: no C# mirror struct named {c.Name} in {FileName(assembly.Path)} (declared in {header.FileName}:{c.Line})");
                continue;
            }
            if (cs.Error != null)
            {
                Difference($"{name}: the layout of the C# mirror {cs.FullName} cannot be computed: {cs.Error}");
                continue;
            }
            if (cs.Layout == "auto")
            {
                Difference($"{name}: the C# mirror {cs.FullName} has LayoutKind.Auto; mirrors need [StructLayout(LayoutKind.Sequential)]");
            }
            CrossCheckWithRuntime(name, cs);
            if (c.Size != cs.Size)
            {
                Difference($"{name}: size {c.Size} in C, {cs.Size} in C# ({cs.FullName})");
            }
            var csFields = cs.Fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
            foreach (HeaderField field in c.Fields)
            {
                if (!csFields.Remove(field.Name, out ManagedField? mirror))
                {
                    Difference($"{name}: field {field.Name} (offset {field.Offset} in C) is missing in C# ({cs.FullName})");
                    continue;
                }
                if (field.Offset != mirror.Offset)
                {
                    Difference($"{name}: field {field.Name} at offset {field.Offset} in C, {mirror.Offset} in C#");
                }
                string? why = AbiType.Mismatch(field.Type, mirror.Type);
                if (why != null)
                {
                    Difference($"{name}: field {field.Name} is {field.Type.Describe()} in C, {mirror.Type.Describe()} in C#" + Because(why));
                }
            }
            foreach (ManagedField extra in csFields.Values)
            {
                Difference($"{name}: C# field {extra.Name} (offset {extra.Offset}) of {cs.FullName} is not in the header");
            }
        }
        foreach (ManagedStruct cs in assembly.Structs.Values.Where(s => CTypeName().IsMatch(s.Name) && !declared.Contains(s.Name)))
        {
            Difference($"C# struct {cs.FullName} is named like a C type, but {header.FileName} declares no struct {cs.Name}");
        }
    }

    /// <summary>
    /// The mirror layouts are computed from metadata by the runtime's rules;
    /// the runtime itself must agree, or the computation (AssemblyModel.cs)
    /// is wrong and its verdicts cannot be trusted.
    /// </summary>
    private void CrossCheckWithRuntime(string name, ManagedStruct cs)
    {
        var runtime = assembly.RuntimeLayout(cs, out string? why);
        if (runtime == null)
        {
            Notes.Add($"{name}: layout not confirmed by the runtime ({why})");
            return;
        }
        var (size, offsets) = runtime.Value;
        string computed = string.Join(", ", cs.Fields.Select(f => $"{f.Name}@{f.Offset}"));
        string actual = string.Join(", ", cs.Fields.Select(f => $"{f.Name}@{offsets[f.Name]}"));
        if (size != cs.Size || computed != actual)
        {
            Difference($"{name}: the C# layout computed from metadata (size {cs.Size}: {computed}) differs from the runtime's " +
                       $"(size {size}: {actual}); fix src/FtWeave.AbiCheck/AssemblyModel.cs");
        }
    }

    /// <summary>A C typedef name as the mirrors use them: lower case, ending in _t.</summary>
    [GeneratedRegex("^[a-z][a-z0-9_]*_t$")]
    private static partial Regex CTypeName();

    // ---- Constants: enum constants and integer macros ----

    private void CompareConstants()
    {
        var byName = assembly.Constants.ToLookup(c => c.Name, StringComparer.Ordinal);
        var byFullName = assembly.Constants.ToDictionary(c => c.Type + "." + c.Name, StringComparer.Ordinal);
        var headerNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (HeaderConstant constant in header.EnumConstants)
        {
            headerNames.Add(constant.Name);
            ConstantsChecked++;
            var mirrors = byName[constant.Name].ToList();
            if (mirrors.Count == 0)
            {
                Difference($"constant {constant.Name} ({constant.Origin}, {header.FileName}:{constant.Line}): no C# constant named {constant.Name}");
            }
            foreach (ManagedConstant mirror in mirrors)
            {
                CompareValue(constant, mirror);
            }
        }
        var mapped = new HashSet<string>(StringComparer.Ordinal);
        foreach (HeaderConstant macro in header.Macros)
        {
            headerNames.Add(macro.Name);
            var mirrors = byName[macro.Name].ToList();
            if (ConstantMap.MacroToCSharp.TryGetValue(macro.Name, out string? target))
            {
                mapped.Add(macro.Name);
                if (byFullName.TryGetValue(target, out ManagedConstant? mapping))
                {
                    mirrors.Add(mapping);
                }
                else
                {
                    Difference($"constant {macro.Name} ({header.FileName}:{macro.Line}): the C# constant {target} it maps to " +
                               "(ConstantMap.cs) does not exist");
                }
            }
            if (mirrors.Count == 0)
            {
                Notes.Add($"macro {macro.Name} = {macro.Value} has no C# counterpart (not compared)");
                continue;
            }
            ConstantsChecked++;
            foreach (ManagedConstant mirror in mirrors)
            {
                CompareValue(macro, mirror);
            }
        }
        foreach (string name in ConstantMap.MacroToCSharp.Keys.Where(k => !mapped.Contains(k)))
        {
            Difference($"constant {name}: ConstantMap.cs maps it to {ConstantMap.MacroToCSharp[name]}, " +
                       $"but {header.FileName} defines no integer macro {name}");
        }
        foreach (ManagedConstant cs in assembly.Constants.Where(c => HeaderStyleConstant().IsMatch(c.Name) && !headerNames.Contains(c.Name)))
        {
            Difference($"C# constant {cs.Type}.{cs.Name} = {cs.Value} is named like a header constant, but {header.FileName} has no {cs.Name}");
        }
        foreach (string name in header.NonIntegerMacros)
        {
            Notes.Add($"macro {name} is not an integer constant (not compared)");
        }
    }

    private void CompareValue(HeaderConstant c, ManagedConstant cs)
    {
        if (c.Value != cs.Value)
        {
            Difference($"constant {c.Name}: {c.Value} in C, {cs.Value} in C# ({cs.Type}.{cs.Name})");
        }
    }

    [GeneratedRegex("^(FT_)?WEAVE_[A-Z0-9_]+$")]
    private static partial Regex HeaderStyleConstant();

    private static string FileName(string path) => System.IO.Path.GetFileName(path);
}
