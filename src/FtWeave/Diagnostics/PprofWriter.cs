using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Runtime.InteropServices;
using FtWeave.Interop;

namespace FtWeave.Diagnostics;

/// <summary>
/// Writes the contention table in pprof's format: profile.proto
/// (github.com/google/pprof, proto/profile.proto), gzipped, as Go writes its
/// mutex profile: sample types contentions/count and delay/nanoseconds, period
/// type contentions/count with the sampling rate as period. Each sample's
/// stack is the releasing call stack (Go's choice too: the end of the
/// critical section that made others wait); the lock's address and the
/// waiting call site are labels ("lock", "wait_site"), so that
/// <c>go tool pprof -tags</c> or <c>-tagfocus</c> splits by them.
///
/// Addresses are the return addresses minus one (inside the call
/// instruction, so that a line lookup lands on the call). Functions are named
/// with dladdr where the object exports a symbol; other addresses are left
/// to pprof, which symbolizes them from the mapping's file when it can read it.
/// Runs when the profile is written, never on a lock path: it allocates.
/// </summary>
internal static unsafe class PprofWriter
{
    private sealed class MapEntry
    {
        public ulong Start;
        public ulong Limit;
        public ulong Offset;
        public string File = "";
        public int Id;
        public bool AllSymbolized = true;
    }

    private sealed class Strings
    {
        private readonly Dictionary<string, int> _index = new() { [""] = 0 };
        internal readonly List<string> Table = new() { "" };

        internal int this[string s]
        {
            get
            {
                if (!_index.TryGetValue(s, out int i))
                {
                    i = Table.Count;
                    Table.Add(s);
                    _index[s] = i;
                }
                return i;
            }
        }
    }

    /// <summary>The profile as gzipped bytes.</summary>
    internal static byte[] Build()
    {
        var strings = new Strings();
        var profile = new ProtoWriter();
        var part = new ProtoWriter();

        void ValueType(int field, string type, string unit)
        {
            part.Clear();
            part.Varint(1, (ulong)strings[type]);
            part.Varint(2, (ulong)strings[unit]);
            profile.Message(field, part);
        }
        ValueType(1, "contentions", "count");
        ValueType(1, "delay", "nanoseconds");

        List<MapEntry> maps = ReadMaps();
        var locations = new Dictionary<ulong, ulong>();
        var locationOrder = new List<ulong>();
        ContentionProfile.Entry* table = ContentionProfile.Table;
        var sample = new ProtoWriter();
        var label = new ProtoWriter();
        var ids = new List<ulong>();
        Span<ulong> values = stackalloc ulong[2];
        if (table != null)
        {
            for (int i = 0; i < ContentionProfile.TableCapacity; i++)
            {
                ContentionProfile.Entry* e = table + i;
                if (System.Threading.Volatile.Read(ref e->State) != 2 || e->Count == 0)
                {
                    continue;
                }
                ids.Clear();
                for (int f = 0; f < e->ReleaseDepth; f++)
                {
                    ids.Add(LocationId(locations, locationOrder, e->Release[f]));
                }
                sample.Clear();
                sample.Packed(1, CollectionsMarshal.AsSpan(ids));
                values[0] = (ulong)e->Count;
                values[1] = (ulong)e->TotalNs;
                sample.Packed(2, values);
                label.Clear();
                label.Varint(1, (ulong)strings["lock"]);
                label.Varint(2, (ulong)strings["0x" + ((ulong)e->Lock).ToString("x", CultureInfo.InvariantCulture)]);
                sample.Message(3, label);
                label.Clear();
                label.Varint(1, (ulong)strings["wait_site"]);
                label.Varint(2, (ulong)strings[e->WaitDepth > 0 ? Describe(e->Wait[0]) : "(unknown)"]);
                sample.Message(3, label);
                label.Clear();
                label.Varint(1, (ulong)strings["max_delay"]);
                label.Int64(3, e->MaxNs);
                label.Varint(4, (ulong)strings["nanoseconds"]);
                sample.Message(3, label);
                profile.Message(2, sample);
            }
        }

        // Locations and functions.
        var functions = new Dictionary<string, ulong>();
        var functionOrder = new List<string>();
        var locationMessages = new List<ProtoWriter>();
        var usedMaps = new List<MapEntry>();
        var locationMaps = new List<MapEntry?>();
        foreach (ulong pc in locationOrder)
        {
            ulong address = pc - 1;
            MapEntry? map = FindMap(maps, address);
            string? name = SymbolName(address);
            var loc = new ProtoWriter();
            loc.Varint(1, locations[pc]);
            if (map != null)
            {
                if (map.Id == 0)
                {
                    usedMaps.Add(map);
                    map.Id = -1;
                }
                if (name == null)
                {
                    map.AllSymbolized = false;
                }
            }
            loc.Varint(3, address);
            if (name != null)
            {
                if (!functions.TryGetValue(name, out ulong fid))
                {
                    fid = (ulong)functions.Count + 1;
                    functions[name] = fid;
                    functionOrder.Add(name);
                }
                var line = new ProtoWriter();
                line.Varint(1, fid);
                loc.Message(4, line);
            }
            locationMessages.Add(loc);
            locationMaps.Add(map);
        }

        // The main program's mapping first: pprof shows mapping[0] as the profile's binary.
        string exe = ExecutablePath();
        usedMaps.Sort((a, b) => (a.File == exe ? 0 : 1).CompareTo(b.File == exe ? 0 : 1));
        for (int i = 0; i < usedMaps.Count; i++)
        {
            usedMaps[i].Id = i + 1;
            part.Clear();
            part.Varint(1, (ulong)usedMaps[i].Id);
            part.Varint(2, usedMaps[i].Start);
            part.Varint(3, usedMaps[i].Limit);
            part.Varint(4, usedMaps[i].Offset);
            part.Varint(5, (ulong)strings[usedMaps[i].File]);
            part.Bool(7, usedMaps[i].AllSymbolized);
            profile.Message(3, part);
        }
        for (int i = 0; i < locationMessages.Count; i++)
        {
            ProtoWriter loc = locationMessages[i];
            MapEntry? map = locationMaps[i];
            if (map != null)
            {
                loc.Varint(2, (ulong)map.Id);
            }
            profile.Message(4, loc);
        }
        foreach (string name in functionOrder)
        {
            part.Clear();
            part.Varint(1, functions[name]);
            part.Varint(2, (ulong)strings[name]);
            part.Varint(3, (ulong)strings[name]);
            profile.Message(5, part);
        }

        int comment = strings["ft_weave contention profile: stacks are the releasing call sites; labels: lock, wait_site, max_delay"];
        int defaultType = strings["delay"];
        int periodType = strings["contentions"];
        int periodUnit = strings["count"];
        long now = (long)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        long duration = Futex.MonotonicNow() - ContentionProfile.StartNs;
        foreach (string s in strings.Table)
        {
            profile.String(6, s);
        }
        profile.Int64(9, now - duration);
        profile.Int64(10, duration);
        part.Clear();
        part.Varint(1, (ulong)periodType);
        part.Varint(2, (ulong)periodUnit);
        profile.Message(11, part);
        profile.Int64(12, ContentionProfile.Rate);
        profile.Packed(13, stackalloc ulong[] { (ulong)comment });
        profile.Varint(14, (ulong)defaultType);

        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(profile.Written);
        }
        return output.ToArray();
    }

    private static ulong LocationId(Dictionary<ulong, ulong> locations, List<ulong> order, ulong pc)
    {
        if (!locations.TryGetValue(pc, out ulong id))
        {
            id = (ulong)order.Count + 1;
            locations[pc] = id;
            order.Add(pc);
        }
        return id;
    }

    private static MapEntry? FindMap(List<MapEntry> maps, ulong address)
    {
        foreach (MapEntry m in maps)
        {
            if (address >= m.Start && address < m.Limit)
            {
                return m;
            }
        }
        return null;
    }

    /// <summary>The executable mappings of /proc/self/maps.</summary>
    private static List<MapEntry> ReadMaps()
    {
        var maps = new List<MapEntry>();
        string text;
        try
        {
            text = File.ReadAllText("/proc/self/maps");
        }
        catch (IOException)
        {
            return maps;
        }
        catch (UnauthorizedAccessException)
        {
            return maps;
        }
        foreach (string line in text.Split('\n'))
        {
            // start-end perms offset dev inode [path]
            string[] f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 5 || f[1].Length < 3 || f[1][2] != 'x')
            {
                continue;
            }
            int dash = f[0].IndexOf('-');
            if (dash < 0)
            {
                continue;
            }
            var m = new MapEntry();
            if (!ulong.TryParse(f[0].AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out m.Start) ||
                !ulong.TryParse(f[0].AsSpan(dash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out m.Limit) ||
                !ulong.TryParse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out m.Offset))
            {
                continue;
            }
            m.File = f.Length >= 6 ? f[5].Trim() : "";
            maps.Add(m);
        }
        return maps;
    }

    private static string ExecutablePath()
    {
        try
        {
            return new FileInfo("/proc/self/exe").LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>The exported symbol containing <paramref name="address"/>, or null.</summary>
    internal static string? SymbolName(ulong address)
    {
        Dl.DlInfo info;
        if (Dl.Addr((void*)address, &info) == 0 || info.dli_sname == null)
        {
            return null;
        }
        return Marshal.PtrToStringUTF8((nint)info.dli_sname);
    }

    /// <summary>"symbol+0xoff" or "file+0xoff" for a return address (of the call before it).</summary>
    internal static string Describe(ulong pc)
    {
        ulong address = pc - 1;
        Dl.DlInfo info;
        if (Dl.Addr((void*)address, &info) == 0)
        {
            return "0x" + address.ToString("x", CultureInfo.InvariantCulture);
        }
        if (info.dli_sname != null)
        {
            ulong offset = address - (ulong)info.dli_saddr;
            return Marshal.PtrToStringUTF8((nint)info.dli_sname) + "+0x" + offset.ToString("x", CultureInfo.InvariantCulture);
        }
        string file = info.dli_fname != null ? Path.GetFileName(Marshal.PtrToStringUTF8((nint)info.dli_fname) ?? "") : "";
        return file + "+0x" + (address - (ulong)info.dli_fbase).ToString("x", CultureInfo.InvariantCulture);
    }
}
