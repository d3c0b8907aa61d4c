using System.Collections.Generic;
using System.Linq;

namespace FtWeave.AbiCheck;

/// <summary>What a type is at the machine level, which is all the C ABI sees.</summary>
internal enum AbiKind
{
    Void,
    /// <summary>An integer of <see cref="AbiType.Size"/> bytes, signed or not (enums and bool included).</summary>
    Integer,
    Float,
    /// <summary>A pointer to data; what it points to does not matter to the ABI.</summary>
    Pointer,
    /// <summary>A pointer to a function, compared by its own signature.</summary>
    FunctionPointer,
    /// <summary>A struct, union or array, compared by size (its layout is checked on its own).</summary>
    Aggregate,
    /// <summary>Something with no C equivalent (a managed reference, an unresolved type).</summary>
    Unknown,
}

/// <summary>
/// A parameter, return or field type on either side, reduced to what decides
/// ABI compatibility: kind, size and signedness, and for function pointers
/// their signature. <see cref="Spelling"/> is the source spelling (C:
/// <c>int64_t</c>, C#: <c>long</c>) and only serves the messages, so that
/// <c>weave_mutex_t *</c> and <c>byte*</c> match while <c>int64_t</c> and
/// <c>int</c> do not.
/// </summary>
internal sealed record AbiType(AbiKind Kind, int Size, bool Signed, string Spelling)
{
    /// <summary>Function pointers: the pointee's return type.</summary>
    public AbiType? Return { get; init; }

    /// <summary>Function pointers: the pointee's parameter types.</summary>
    public IReadOnlyList<AbiType> Parameters { get; init; } = [];

    /// <summary>Function pointers from C#: false for a managed <c>delegate*</c>, which C cannot call.</summary>
    public bool Unmanaged { get; init; } = true;

    /// <summary>C# structs: the alignment the runtime gives the type (for the layout of structs that contain it).</summary>
    public int Alignment { get; init; }

    public static AbiType Void(string spelling) => new(AbiKind.Void, 0, false, spelling);

    public static AbiType Integer(int size, bool signed, string spelling) => new(AbiKind.Integer, size, signed, spelling);

    public static AbiType Pointer(string spelling) => new(AbiKind.Pointer, PointerSize, false, spelling);

    public static AbiType Unknown(string spelling) => new(AbiKind.Unknown, 0, false, spelling);

    public static int PointerSize => System.IntPtr.Size;

    /// <summary>"int64_t (8 bytes, signed)", "byte* (pointer)", "void (*)(void *) (function pointer)".</summary>
    public string Describe() => Kind switch
    {
        AbiKind.Integer => $"{Spelling} ({Size} byte{(Size == 1 ? "" : "s")}, {(Signed ? "signed" : "unsigned")})",
        AbiKind.Float => $"{Spelling} ({Size}-byte float)",
        AbiKind.Pointer => $"{Spelling} (pointer)",
        AbiKind.FunctionPointer => $"{Spelling} (function pointer{(Unmanaged ? "" : ", managed")})",
        AbiKind.Aggregate => $"{Spelling} ({Size}-byte aggregate)",
        AbiKind.Void => Spelling,
        _ => $"{Spelling} (no C equivalent)",
    };

    /// <summary>
    /// Null when <paramref name="c"/> (the header's type) and <paramref name="cs"/>
    /// (the C# type) are the same to the ABI, else why not.
    /// </summary>
    public static string? Mismatch(AbiType c, AbiType cs)
    {
        if (c.Kind == AbiKind.Unknown || cs.Kind == AbiKind.Unknown || c.Kind != cs.Kind)
        {
            return "";
        }
        switch (c.Kind)
        {
            case AbiKind.Integer:
                return c.Size == cs.Size && c.Signed == cs.Signed ? null : "";
            case AbiKind.Float:
            case AbiKind.Aggregate:
                return c.Size == cs.Size ? null : "";
            case AbiKind.FunctionPointer:
                if (!cs.Unmanaged)
                {
                    return "the C# function pointer is managed (use delegate* unmanaged<...>)";
                }
                if (c.Parameters.Count != cs.Parameters.Count)
                {
                    return $"the function pointer takes {c.Parameters.Count} parameter(s) in C, {cs.Parameters.Count} in C#";
                }
                if (Mismatch(c.Return!, cs.Return!) is not null)
                {
                    return $"the function pointer returns {c.Return!.Describe()} in C, {cs.Return!.Describe()} in C#";
                }
                for (int i = 0; i < c.Parameters.Count; i++)
                {
                    if (Mismatch(c.Parameters[i], cs.Parameters[i]) is not null)
                    {
                        return $"the function pointer's parameter {i + 1} is {c.Parameters[i].Describe()} in C, " +
                               $"{cs.Parameters[i].Describe()} in C#";
                    }
                }
                return null;
            default:
                return null; // void, pointer
        }
    }

    public static string SignatureSpelling(AbiType ret, IEnumerable<AbiType> parameters)
        => $"{ret.Spelling} (*)({string.Join(", ", parameters.Select(p => p.Spelling))})";
}
