using System;

namespace FtWeave.Interop;

/// <summary>
/// Marks an <c>[UnmanagedCallersOnly(EntryPoint = "ftw_...")]</c> method that
/// only the library's C part (src/native/) calls. The C part declares the
/// symbol hidden, so the linked library never exports it. With
/// <see cref="SlowPathOf"/>, the method is the slow path of that export of
/// ft_weave.h, which the C part defines (its fast path) and which has no C#
/// entry point of its own; the method then takes the same parameters as the
/// export. src/FtWeave.AbiCheck reads this attribute: it checks these entry
/// points against the header function they serve and that none is exported.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
internal sealed class CalledFromNativeAttribute : Attribute
{
    /// <summary>An internal entry point that is no export's slow path.</summary>
    public CalledFromNativeAttribute()
    {
    }

    /// <param name="slowPathOf">The export of ft_weave.h whose fast path is in C.</param>
    public CalledFromNativeAttribute(string slowPathOf)
    {
        SlowPathOf = slowPathOf;
    }

    public string? SlowPathOf { get; }
}
