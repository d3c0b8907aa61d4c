using System;
using System.Collections.Generic;
using System.IO;

namespace FtWeave.AbiCheck;

/// <summary>The symbols a shared library exports, as <c>nm -D --defined-only</c> lists them.</summary>
internal sealed class LibraryExports
{
    public required string Path { get; init; }
    public string FileName => System.IO.Path.GetFileName(Path);
    public SortedSet<string> Symbols { get; } = new(StringComparer.Ordinal);

    public static LibraryExports Read(string path, string nm)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"library not found: {path}");
        }
        string output = Tools.Run(nm, "-D", "--defined-only", path)
                        ?? throw new InvalidOperationException($"`{nm} -D --defined-only {path}` failed (is binutils installed?)");
        var exports = new LibraryExports { Path = System.IO.Path.GetFullPath(path) };
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // "<address> <type> <name>[@@<version>]"; type A is the version node (V1.0), not a symbol.
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && parts[1] != "A")
            {
                string name = parts[2];
                int at = name.IndexOf('@');
                exports.Symbols.Add(at < 0 ? name : name[..at]);
            }
        }
        return exports;
    }
}
