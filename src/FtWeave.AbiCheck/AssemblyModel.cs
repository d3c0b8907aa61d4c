using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace FtWeave.AbiCheck;

/// <summary>
/// An <c>[UnmanagedCallersOnly(EntryPoint = "...")]</c> method.
/// <paramref name="Internal"/>: it also carries <c>[CalledFromNative]</c>
/// (FtWeave.Interop.CalledFromNativeAttribute): only the library's C part
/// calls it and it must not be exported; <paramref name="SlowPathOf"/> then
/// names the header function whose fast path the C part defines, if any.
/// </summary>
internal sealed record EntryPoint(string Name, string Method, AbiType Return, IReadOnlyList<HeaderParameter> Parameters,
    bool Internal = false, string? SlowPathOf = null);

internal sealed record ManagedField(string Name, int Offset, AbiType Type);

/// <summary>A value type's layout as the runtime computes it (what <c>Unsafe.SizeOf</c> and <c>Marshal.OffsetOf</c> return).</summary>
internal sealed record ManagedStruct(string Name, string FullName, int Size, int Alignment, string Layout,
    IReadOnlyList<ManagedField> Fields, string? Error);

/// <summary>A <c>const</c> field of an integer type.</summary>
internal sealed record ManagedConstant(string Type, string Name, long Value);

/// <summary>
/// What the compiled IL assembly (<c>ft_weave.dll</c>, the input of the
/// NativeAOT compiler) says about the C ABI, read with
/// System.Reflection.Metadata without loading or running it: its entry
/// points with their parameter and return types, the layouts of its value
/// types, and its integer constants.
/// </summary>
internal sealed class AssemblyModel
{
    public required string Path { get; init; }
    public List<EntryPoint> EntryPoints { get; } = [];
    /// <summary>Value types by simple name (the mirror structs carry the C names, e.g. <c>weave_mutex_t</c>).</summary>
    public Dictionary<string, ManagedStruct> Structs { get; } = new(StringComparer.Ordinal);
    public List<ManagedConstant> Constants { get; } = [];
    /// <summary><c>[UnmanagedCallersOnly]</c> methods that have no EntryPoint (callbacks, not exports).</summary>
    public int UnnamedCallbacks { get; private set; }

    /// <summary>
    /// The layout the running .NET runtime gives <paramref name="mirror"/>
    /// (<c>RuntimeHelpers.SizeOf</c>, <c>Marshal.OffsetOf</c>), to confirm the
    /// one computed from metadata; null with <paramref name="why"/> when the
    /// type cannot be loaded. Loading the IL assembly into a collectible
    /// context runs none of its code: asking for a layout runs no static
    /// constructor.
    /// </summary>
    public (int Size, Dictionary<string, int> Offsets)? RuntimeLayout(ManagedStruct mirror, out string? why)
    {
        why = null;
        try
        {
            _context ??= new System.Runtime.Loader.AssemblyLoadContext("ft_weave metadata", isCollectible: true);
            _loaded ??= _context.LoadFromAssemblyPath(Path);
            Type? type = _loaded.GetType(mirror.FullName, throwOnError: false);
            if (type == null)
            {
                why = $"{mirror.FullName} not found by reflection";
                return null;
            }
            var offsets = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (ManagedField field in mirror.Fields)
            {
                offsets[field.Name] = (int)System.Runtime.InteropServices.Marshal.OffsetOf(type, field.Name);
            }
            return (System.Runtime.CompilerServices.RuntimeHelpers.SizeOf(type.TypeHandle), offsets);
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or ArgumentException or TypeLoadException
                                      or NotSupportedException or InvalidOperationException)
        {
            why = e.Message;
            return null;
        }
    }

    private System.Runtime.Loader.AssemblyLoadContext? _context;
    private Assembly? _loaded;

    public static AssemblyModel Read(string path)
    {
        var model = new AssemblyModel { Path = System.IO.Path.GetFullPath(path) };
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        MetadataReader reader = pe.GetMetadataReader();
        var types = new TypeProvider(reader);
        foreach (TypeDefinitionHandle typeHandle in reader.TypeDefinitions)
        {
            TypeDefinition type = reader.GetTypeDefinition(typeHandle);
            string typeName = types.FullName(typeHandle);
            foreach (MethodDefinitionHandle methodHandle in type.GetMethods())
            {
                MethodDefinition method = reader.GetMethodDefinition(methodHandle);
                if (!TryGetEntryPoint(reader, method, out string? entryPoint))
                {
                    continue;
                }
                if (entryPoint == null)
                {
                    model.UnnamedCallbacks++;
                    continue;
                }
                MethodSignature<AbiType> signature = method.DecodeSignature(types, null);
                var names = new string[signature.ParameterTypes.Length];
                foreach (ParameterHandle parameterHandle in method.GetParameters())
                {
                    Parameter parameter = reader.GetParameter(parameterHandle);
                    if (parameter.SequenceNumber > 0 && parameter.SequenceNumber <= names.Length)
                    {
                        names[parameter.SequenceNumber - 1] = reader.GetString(parameter.Name);
                    }
                }
                bool isInternal = TryGetCalledFromNative(reader, method, out string? slowPathOf);
                model.EntryPoints.Add(new EntryPoint(entryPoint, typeName + "." + reader.GetString(method.Name),
                    signature.ReturnType,
                    signature.ParameterTypes.Select((t, i) => new HeaderParameter(names[i] ?? $"arg{i}", t)).ToList(),
                    isInternal, slowPathOf));
            }
            foreach (FieldDefinitionHandle fieldHandle in type.GetFields())
            {
                FieldDefinition field = reader.GetFieldDefinition(fieldHandle);
                if ((field.Attributes & FieldAttributes.Literal) != 0 && ReadInteger(reader, field.GetDefaultValue()) is long value)
                {
                    model.Constants.Add(new ManagedConstant(typeName, reader.GetString(field.Name), value));
                }
            }
            if (types.IsValueType(type) && !types.IsEnum(type))
            {
                ManagedStruct layout = types.Layout(typeHandle);
                model.Structs.TryAdd(layout.Name, layout);
            }
        }
        return model;
    }

    /// <summary>
    /// True for a method carrying <c>UnmanagedCallersOnlyAttribute</c>;
    /// <paramref name="entryPoint"/> is its <c>EntryPoint</c> named argument (null if none).
    /// </summary>
    private static bool TryGetEntryPoint(MetadataReader reader, MethodDefinition method, out string? entryPoint)
    {
        entryPoint = null;
        if (FindAttribute(reader, method, "System.Runtime.InteropServices.UnmanagedCallersOnlyAttribute") is not { } value)
        {
            return false;
        }
        foreach (CustomAttributeNamedArgument<object?> argument in value.NamedArguments)
        {
            if (argument.Name == "EntryPoint")
            {
                entryPoint = argument.Value as string;
            }
        }
        return true;
    }

    /// <summary>
    /// True for a method carrying <c>FtWeave.Interop.CalledFromNativeAttribute</c>;
    /// <paramref name="slowPathOf"/> is its constructor argument (null if none).
    /// </summary>
    private static bool TryGetCalledFromNative(MetadataReader reader, MethodDefinition method, out string? slowPathOf)
    {
        slowPathOf = null;
        if (FindAttribute(reader, method, "FtWeave.Interop.CalledFromNativeAttribute") is not { } value)
        {
            return false;
        }
        if (value.FixedArguments.Length > 0)
        {
            slowPathOf = value.FixedArguments[0].Value as string;
        }
        return true;
    }

    /// <summary>The decoded arguments of <paramref name="method"/>'s first attribute of type <paramref name="typeName"/>, or null.</summary>
    private static CustomAttributeValue<object?>? FindAttribute(MetadataReader reader, MethodDefinition method, string typeName)
    {
        foreach (CustomAttributeHandle handle in method.GetCustomAttributes())
        {
            CustomAttribute attribute = reader.GetCustomAttribute(handle);
            if (AttributeTypeName(reader, attribute) == typeName)
            {
                return attribute.DecodeValue(new AttributeArgumentProvider());
            }
        }
        return null;
    }

    internal static string AttributeTypeName(MetadataReader reader, CustomAttribute attribute)
    {
        EntityHandle type = attribute.Constructor.Kind switch
        {
            HandleKind.MemberReference => reader.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent,
            HandleKind.MethodDefinition => reader.GetMethodDefinition((MethodDefinitionHandle)attribute.Constructor).GetDeclaringType(),
            _ => default,
        };
        return type.Kind switch
        {
            HandleKind.TypeReference => Qualified(reader, reader.GetTypeReference((TypeReferenceHandle)type).Namespace,
                reader.GetTypeReference((TypeReferenceHandle)type).Name),
            HandleKind.TypeDefinition => Qualified(reader, reader.GetTypeDefinition((TypeDefinitionHandle)type).Namespace,
                reader.GetTypeDefinition((TypeDefinitionHandle)type).Name),
            _ => "",
        };
    }

    private static string Qualified(MetadataReader reader, StringHandle ns, StringHandle name)
        => ns.IsNil || reader.GetString(ns).Length == 0 ? reader.GetString(name) : reader.GetString(ns) + "." + reader.GetString(name);

    private static long? ReadInteger(MetadataReader reader, ConstantHandle handle)
    {
        if (handle.IsNil)
        {
            return null;
        }
        Constant constant = reader.GetConstant(handle);
        BlobReader blob = reader.GetBlobReader(constant.Value);
        return constant.TypeCode switch
        {
            ConstantTypeCode.Boolean => blob.ReadBoolean() ? 1 : 0,
            ConstantTypeCode.SByte => blob.ReadSByte(),
            ConstantTypeCode.Byte => blob.ReadByte(),
            ConstantTypeCode.Int16 => blob.ReadInt16(),
            ConstantTypeCode.UInt16 => blob.ReadUInt16(),
            ConstantTypeCode.Char => blob.ReadUInt16(),
            ConstantTypeCode.Int32 => blob.ReadInt32(),
            ConstantTypeCode.UInt32 => blob.ReadUInt32(),
            ConstantTypeCode.Int64 => blob.ReadInt64(),
            ConstantTypeCode.UInt64 => (long)blob.ReadUInt64(),
            _ => null, // strings, floats, null references
        };
    }

    /// <summary>Decodes the arguments of UnmanagedCallersOnly (a string and a Type[]); nothing else is needed.</summary>
    private sealed class AttributeArgumentProvider : ICustomAttributeTypeProvider<object?>
    {
        public object? GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode;
        public object? GetSystemType() => typeof(Type);
        public object? GetSZArrayType(object? elementType) => elementType;
        public object? GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => null;
        public object? GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => null;
        public object? GetTypeFromSerializedName(string name) => name;
        public PrimitiveTypeCode GetUnderlyingEnumType(object? type) => PrimitiveTypeCode.Int32;
        public bool IsSystemType(object? type) => ReferenceEquals(type, typeof(Type));
    }

    /// <summary>
    /// Turns signature blobs into <see cref="AbiType"/>s and computes value
    /// type layouts the way the runtime does for blittable structs:
    /// sequential (fields in order at their natural alignment, capped by
    /// Pack; size rounded up to the largest alignment, at least
    /// StructLayout.Size) or explicit (FieldOffset). C# spellings
    /// (<c>long</c>, <c>byte*</c>, <c>delegate* unmanaged&lt;void*, void&gt;</c>) serve the messages.
    /// </summary>
    private sealed class TypeProvider(MetadataReader reader) : ISignatureTypeProvider<AbiType, object?>
    {
        private readonly Dictionary<TypeDefinitionHandle, ManagedStruct> _layouts = [];
        private readonly HashSet<TypeDefinitionHandle> _inProgress = [];

        public string FullName(TypeDefinitionHandle handle)
        {
            TypeDefinition type = reader.GetTypeDefinition(handle);
            string name = reader.GetString(type.Name);
            TypeDefinitionHandle declaring = type.GetDeclaringType();
            return declaring.IsNil ? Qualified(reader, type.Namespace, type.Name) : FullName(declaring) + "+" + name;
        }

        public bool IsValueType(TypeDefinition type) => BaseTypeName(type) is "System.ValueType" or "System.Enum";

        public bool IsEnum(TypeDefinition type) => BaseTypeName(type) == "System.Enum";

        private string BaseTypeName(TypeDefinition type)
        {
            EntityHandle baseType = type.BaseType;
            if (baseType.IsNil)
            {
                return ""; // <Module>, interfaces
            }
            return baseType.Kind switch
            {
                HandleKind.TypeReference => Qualified(reader, reader.GetTypeReference((TypeReferenceHandle)baseType).Namespace,
                    reader.GetTypeReference((TypeReferenceHandle)baseType).Name),
                HandleKind.TypeDefinition => FullName((TypeDefinitionHandle)baseType),
                _ => "",
            };
        }

        public AbiType GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode switch
        {
            PrimitiveTypeCode.Void => AbiType.Void("void"),
            PrimitiveTypeCode.Boolean => AbiType.Integer(1, false, "bool"),
            PrimitiveTypeCode.Char => AbiType.Integer(2, false, "char"),
            PrimitiveTypeCode.SByte => AbiType.Integer(1, true, "sbyte"),
            PrimitiveTypeCode.Byte => AbiType.Integer(1, false, "byte"),
            PrimitiveTypeCode.Int16 => AbiType.Integer(2, true, "short"),
            PrimitiveTypeCode.UInt16 => AbiType.Integer(2, false, "ushort"),
            PrimitiveTypeCode.Int32 => AbiType.Integer(4, true, "int"),
            PrimitiveTypeCode.UInt32 => AbiType.Integer(4, false, "uint"),
            PrimitiveTypeCode.Int64 => AbiType.Integer(8, true, "long"),
            PrimitiveTypeCode.UInt64 => AbiType.Integer(8, false, "ulong"),
            PrimitiveTypeCode.IntPtr => AbiType.Integer(AbiType.PointerSize, true, "nint"),
            PrimitiveTypeCode.UIntPtr => AbiType.Integer(AbiType.PointerSize, false, "nuint"),
            PrimitiveTypeCode.Single => new AbiType(AbiKind.Float, 4, true, "float"),
            PrimitiveTypeCode.Double => new AbiType(AbiKind.Float, 8, true, "double"),
            _ => AbiType.Unknown(typeCode.ToString().ToLowerInvariant()),
        };

        public AbiType GetPointerType(AbiType elementType) => AbiType.Pointer(elementType.Spelling + "*");

        public AbiType GetByReferenceType(AbiType elementType) => AbiType.Pointer("ref " + elementType.Spelling);

        public AbiType GetFunctionPointerType(MethodSignature<AbiType> signature)
        {
            bool unmanaged = signature.Header.CallingConvention is SignatureCallingConvention.Unmanaged
                or SignatureCallingConvention.CDecl;
            string arguments = string.Join(", ", signature.ParameterTypes.Select(t => t.Spelling).Append(signature.ReturnType.Spelling));
            return new AbiType(AbiKind.FunctionPointer, AbiType.PointerSize, false,
                $"delegate*{(unmanaged ? " unmanaged" : "")}<{arguments}>")
            {
                Return = signature.ReturnType,
                Parameters = signature.ParameterTypes,
                Unmanaged = unmanaged,
            };
        }

        public AbiType GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            TypeDefinition type = reader.GetTypeDefinition(handle);
            string name = reader.GetString(type.Name);
            if (IsEnum(type))
            {
                // An enum is its underlying integer (the instance field value__).
                foreach (FieldDefinitionHandle fieldHandle in type.GetFields())
                {
                    FieldDefinition field = reader.GetFieldDefinition(fieldHandle);
                    if ((field.Attributes & FieldAttributes.Static) == 0)
                    {
                        return field.DecodeSignature(this, null) with { Spelling = name };
                    }
                }
            }
            if (IsValueType(type))
            {
                ManagedStruct layout = Layout(handle);
                return layout.Error != null
                    ? AbiType.Unknown(name)
                    : new AbiType(AbiKind.Aggregate, layout.Size, false, name) { Alignment = layout.Alignment };
            }
            return AbiType.Unknown(name + " (reference type)");
        }

        public AbiType GetTypeFromReference(MetadataReader r, TypeReferenceHandle handle, byte rawTypeKind)
        {
            TypeReference type = reader.GetTypeReference(handle);
            string name = Qualified(reader, type.Namespace, type.Name);
            // The primitives when spelled as type references (in attributes, or System.IntPtr in old code).
            return name switch
            {
                "System.IntPtr" => GetPrimitiveType(PrimitiveTypeCode.IntPtr),
                "System.UIntPtr" => GetPrimitiveType(PrimitiveTypeCode.UIntPtr),
                _ => AbiType.Unknown(name + " (defined in another assembly)"),
            };
        }

        public AbiType GetTypeFromSpecification(MetadataReader r, object? context, TypeSpecificationHandle handle, byte rawTypeKind)
            => reader.GetTypeSpecification(handle).DecodeSignature(this, context);

        public AbiType GetModifiedType(AbiType modifier, AbiType unmodifiedType, bool isRequired) => unmodifiedType;

        public AbiType GetPinnedType(AbiType elementType) => elementType;

        public AbiType GetSZArrayType(AbiType elementType) => AbiType.Unknown(elementType.Spelling + "[]");

        public AbiType GetArrayType(AbiType elementType, ArrayShape shape) => AbiType.Unknown(elementType.Spelling + "[,]");

        public AbiType GetGenericInstantiation(AbiType genericType, ImmutableArray<AbiType> typeArguments)
            => AbiType.Unknown($"{genericType.Spelling}<{string.Join(", ", typeArguments.Select(t => t.Spelling))}>");

        public AbiType GetGenericMethodParameter(object? context, int index) => AbiType.Unknown("!!" + index);

        public AbiType GetGenericTypeParameter(object? context, int index) => AbiType.Unknown("!" + index);

        /// <summary>The layout of a value type defined in this assembly (memoized; nested structs first).</summary>
        public ManagedStruct Layout(TypeDefinitionHandle handle)
        {
            if (_layouts.TryGetValue(handle, out ManagedStruct? known))
            {
                return known;
            }
            TypeDefinition type = reader.GetTypeDefinition(handle);
            string name = reader.GetString(type.Name);
            string fullName = FullName(handle);
            if (!_inProgress.Add(handle))
            {
                return new ManagedStruct(name, fullName, 0, 1, "?", [], "contains itself");
            }
            ManagedStruct layout = ComputeLayout(type, name, fullName);
            _inProgress.Remove(handle);
            _layouts[handle] = layout;
            return layout;
        }

        private ManagedStruct ComputeLayout(TypeDefinition type, string name, string fullName)
        {
            TypeAttributes kind = type.Attributes & TypeAttributes.LayoutMask;
            TypeLayout declared = type.GetLayout();
            int pack = declared.PackingSize == 0 ? 8 : declared.PackingSize; // 0: the default, 8 on 64-bit targets
            int inlineArrayLength = InlineArrayLength(type);
            var fields = new List<ManagedField>();
            int offset = 0, size = 0, alignment = 1;
            string? error = null;
            string layoutName = kind switch
            {
                TypeAttributes.ExplicitLayout => "explicit",
                TypeAttributes.SequentialLayout => "sequential",
                _ => "auto",
            };
            foreach (FieldDefinitionHandle fieldHandle in type.GetFields())
            {
                FieldDefinition field = reader.GetFieldDefinition(fieldHandle);
                if ((field.Attributes & FieldAttributes.Static) != 0)
                {
                    continue;
                }
                string fieldName = reader.GetString(field.Name);
                AbiType fieldType = field.DecodeSignature(this, null);
                (int fieldSize, int fieldAlignment) = fieldType.Kind switch
                {
                    AbiKind.Integer or AbiKind.Float or AbiKind.Pointer or AbiKind.FunctionPointer => (fieldType.Size, fieldType.Size),
                    AbiKind.Aggregate => (fieldType.Size, fieldType.Alignment),
                    _ => (-1, 1),
                };
                if (fieldSize < 0)
                {
                    error ??= $"field {fieldName} has type {fieldType.Spelling}, which has no C layout";
                    continue;
                }
                fieldAlignment = Math.Min(fieldAlignment, pack);
                int fieldOffset = kind == TypeAttributes.ExplicitLayout ? field.GetOffset() : Align(offset, fieldAlignment);
                fields.Add(new ManagedField(fieldName, fieldOffset, fieldType));
                if (inlineArrayLength > 0)
                {
                    fieldSize *= inlineArrayLength; // [InlineArray(N)]: the one field, N times
                }
                offset = fieldOffset + fieldSize;
                size = Math.Max(size, offset);
                alignment = Math.Max(alignment, fieldAlignment);
            }
            size = Math.Max(Align(size, alignment), declared.Size);
            if (size == 0)
            {
                size = 1; // an empty struct still takes a byte
            }
            return new ManagedStruct(name, fullName, size, alignment, layoutName, fields, error);
        }

        private int InlineArrayLength(TypeDefinition type)
        {
            foreach (CustomAttributeHandle handle in type.GetCustomAttributes())
            {
                CustomAttribute attribute = reader.GetCustomAttribute(handle);
                if (AttributeTypeName(reader, attribute) == "System.Runtime.CompilerServices.InlineArrayAttribute")
                {
                    var value = attribute.DecodeValue(new AttributeArgumentProvider());
                    return value.FixedArguments.Length == 1 && value.FixedArguments[0].Value is int length ? length : 0;
                }
            }
            return 0;
        }

        private static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
    }
}
