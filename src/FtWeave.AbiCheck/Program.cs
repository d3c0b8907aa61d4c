using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using FtWeave.AbiCheck;
using FtWeave.AbiCheck.Interop;

// ABI check: ft_weave.h (parsed with libclang) against the C# library's
// entry points, mirror structs and constants (metadata of ft_weave.dll) and
// against the symbols libft_weave.so exports (nm -D). Prints one line per
// difference and exits 1 if there is any; 0 with a summary line otherwise;
// 2 when it cannot run. CTest runs it as `abi_check` (ctests/CMakeLists.txt).
// Entry points marked [CalledFromNative] (FtWeave.Interop) are internal: the
// library's C part calls them and they must not be exported; one marked as
// the slow path of a header function stands in for that function's C# entry
// point (the C part defines the export) and is compared with its prototype.

const string Usage =
    "usage: FtWeave.AbiCheck <ft_weave.h> <ft_weave.dll or a folder holding it> <libft_weave.so>\n" +
    "         [--nm NM] [--libclang LIBCLANG.so] [--resource-dir DIR] [--known FILE]\n" +
    "  --known FILE  differences the team has accepted for now, one per line (# comments):\n" +
    "                they are printed but do not fail the check; an entry that no longer\n" +
    "                occurs does, so that the list only shrinks.";

var positional = new List<string>();
string nm = "nm";
string? libclang = null, resourceDir = null, knownFile = null;
for (int i = 0; i < args.Length; i++)
{
    string? Value() => i + 1 < args.Length ? args[++i] : null;
    switch (args[i])
    {
        case "--nm": nm = Value() ?? nm; break;
        case "--libclang": libclang = Value(); break;
        case "--resource-dir": resourceDir = Value(); break;
        case "--known": knownFile = Value(); break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        default: positional.Add(args[i]); break;
    }
}
if (positional.Count != 3)
{
    Console.Error.WriteLine(Usage);
    return 2;
}

try
{
    string headerPath = positional[0];
    string assemblyPath = FindAssembly(positional[1]);
    if (!File.Exists(headerPath))
    {
        throw new FileNotFoundException($"header not found: {headerPath}");
    }

    LibClang.UseLibrary(libclang);
    List<string> clangArgs = HeaderModel.SystemIncludeArgs(resourceDir);
    HeaderModel header = HeaderModel.Parse(headerPath, clangArgs);
    AssemblyModel assembly = AssemblyModel.Read(assemblyPath);
    LibraryExports library = LibraryExports.Read(positional[2], nm);

    Console.WriteLine($"abi: {header.Path}: {header} ({LibClang.Take(LibClang.clang_getClangVersion())} from {LibClang.LoadedFrom}, " +
                      $"{string.Join(" ", clangArgs)})");
    Console.WriteLine($"abi: {assembly.Path}: {assembly.EntryPoints.Count} entry points, {assembly.Structs.Count} value types, " +
                      $"{assembly.Constants.Count} integer constants");
    Console.WriteLine($"abi: {library.Path}: {library.Symbols.Count} exported symbols");

    Comparison comparison = new Comparison(header, assembly, library).Run();
    foreach (string note in comparison.Notes)
    {
        Console.WriteLine("note: " + note);
    }

    List<string> differences = comparison.Differences;
    if (knownFile != null)
    {
        differences = ApplyKnown(differences, knownFile);
    }
    foreach (string difference in differences)
    {
        Console.WriteLine(difference);
    }
    Console.WriteLine($"abi: {comparison.FunctionsChecked} functions, {comparison.StructsChecked} structs, " +
                      $"{comparison.ConstantsChecked} constants checked, {differences.Count} difference{(differences.Count == 1 ? "" : "s")}");
    return differences.Count == 0 ? 0 : 1;
}
catch (Exception e) when (e is IOException or InvalidOperationException or DllNotFoundException or EntryPointNotFoundException
                              or BadImageFormatException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"abi: cannot check: {e.Message}");
    if (Environment.GetEnvironmentVariable("FT_WEAVE_ABICHECK_TRACE") != null) Console.Error.WriteLine(e);
    return 2;
}

// The IL assembly: the file itself, or the newest ft_weave.dll under a folder
// (the NativeAOT publish leaves it in bin/<config>/<tfm>/<rid>/; reference
// assemblies under ref/ and refint/ lack the private entry points).
static string FindAssembly(string path)
{
    if (File.Exists(path))
    {
        return path;
    }
    if (!Directory.Exists(path))
    {
        throw new FileNotFoundException($"assembly not found: {path}");
    }
    return new DirectoryInfo(path).EnumerateFiles("ft_weave.dll", SearchOption.AllDirectories)
               .Where(f => f.Directory?.Name is not ("ref" or "refint"))
               .OrderByDescending(f => f.LastWriteTimeUtc)
               .FirstOrDefault()?.FullName
           ?? throw new FileNotFoundException($"no ft_weave.dll under {path}");
}

// A known entry matches a difference that equals it or continues with " (" or ":"
// (so that line numbers in the rest of the message may change).
static List<string> ApplyKnown(List<string> differences, string knownFile)
{
    var known = File.ReadAllLines(knownFile).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
    var remaining = new List<string>();
    var used = new HashSet<string>(StringComparer.Ordinal);
    foreach (string difference in differences)
    {
        string? entry = known.FirstOrDefault(k => difference == k || difference.StartsWith(k + " (", StringComparison.Ordinal) ||
                                                   difference.StartsWith(k + ":", StringComparison.Ordinal));
        if (entry == null)
        {
            remaining.Add(difference);
        }
        else
        {
            used.Add(entry);
            Console.WriteLine($"known: {difference}");
        }
    }
    foreach (string entry in known.Where(k => !used.Contains(k)))
    {
        remaining.Add($"known difference no longer occurs: {entry} (remove it from {Path.GetFileName(knownFile)})");
    }
    return remaining;
}
