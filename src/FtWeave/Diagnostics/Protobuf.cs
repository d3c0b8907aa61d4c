using System;
using System.Text;

namespace FtWeave.Diagnostics;

/// <summary>
/// A minimal protocol-buffers encoder: what profile.proto needs (varint and
/// length-delimited fields, packed repeated varints). Nested messages are
/// encoded into their own writer and appended with their length. Used only
/// when a profile is written, never on a lock path.
/// </summary>
internal sealed class ProtoWriter
{
    private byte[] _buffer = new byte[256];
    private int _length;

    internal int Length => _length;

    internal ReadOnlySpan<byte> Written => new ReadOnlySpan<byte>(_buffer, 0, _length);

    internal void Clear() => _length = 0;

    private void Ensure(int more)
    {
        if (_length + more > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + more));
        }
    }

    private void RawVarint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _buffer[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }
        _buffer[_length++] = (byte)value;
    }

    private void Tag(int field, int wireType) => RawVarint((ulong)(field << 3 | wireType));

    /// <summary>A varint field (wire type 0); zero is skipped (the proto3 default).</summary>
    internal void Varint(int field, ulong value)
    {
        if (value == 0)
        {
            return;
        }
        Tag(field, 0);
        RawVarint(value);
    }

    /// <summary>An int64 field: negative values are ten-byte varints, as protobuf encodes them.</summary>
    internal void Int64(int field, long value) => Varint(field, unchecked((ulong)value));

    internal void Bool(int field, bool value) => Varint(field, value ? 1UL : 0UL);

    internal void Bytes(int field, ReadOnlySpan<byte> bytes)
    {
        Tag(field, 2);
        RawVarint((ulong)bytes.Length);
        Ensure(bytes.Length);
        bytes.CopyTo(new Span<byte>(_buffer, _length, bytes.Length));
        _length += bytes.Length;
    }

    /// <summary>A string field, always written (string_table[0] is the empty string).</summary>
    internal void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    internal void Message(int field, ProtoWriter message) => Bytes(field, message.Written);

    /// <summary>A packed repeated varint field.</summary>
    internal void Packed(int field, ReadOnlySpan<ulong> values)
    {
        if (values.IsEmpty)
        {
            return;
        }
        var inner = new ProtoWriter();
        foreach (ulong v in values)
        {
            inner.RawVarint(v);
        }
        Message(field, inner);
    }
}
