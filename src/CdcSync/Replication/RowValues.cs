namespace CdcSync.Replication;

public enum ValueKind : byte
{
    Null,

    /// <summary>A TOASTed column the update did not touch: the server did not send it. Never NULL.</summary>
    Unchanged,

    /// <summary>The type's binary send format (what COPY BINARY takes).</summary>
    Binary,

    /// <summary>The type's text output format.</summary>
    Text,
}

/// <summary>
/// The column values of one row, copied into one buffer. Values stay in the wire format until a
/// connector asks for them: the PostgreSQL connector passes them straight into COPY, others decode.
/// </summary>
public sealed class RowValues
{
    private readonly ValueKind[] _kinds;
    private readonly int[] _offsets;
    private readonly byte[] _data;

    public RowValues(ValueKind[] kinds, int[] offsets, byte[] data)
    {
        _kinds = kinds;
        _offsets = offsets;
        _data = data;
        HasText = Array.IndexOf(kinds, ValueKind.Text) >= 0;
    }

    /// <summary>Some value came in text format (servers before PostgreSQL 14, or Binary=false).</summary>
    public bool HasText { get; }

    public int Count => _kinds.Length;

    public ValueKind KindAt(int ordinal) => _kinds[ordinal];

    public ReadOnlySpan<byte> RawAt(int ordinal) => _data.AsSpan(_offsets[ordinal], _offsets[ordinal + 1] - _offsets[ordinal]);

    public ReadOnlyMemory<byte> RawMemoryAt(int ordinal) => _data.AsMemory(_offsets[ordinal], _offsets[ordinal + 1] - _offsets[ordinal]);

    public int ByteSize => _data.Length;

    public bool IsNull(int ordinal) => _kinds[ordinal] == ValueKind.Null;

    public bool IsUnchanged(int ordinal) => _kinds[ordinal] == ValueKind.Unchanged;

    /// <summary>Decodes a value to a CLR object (see <see cref="PgValueDecoder"/> for the types it knows).</summary>
    public object? GetValue(RelationInfo relation, int ordinal)
    {
        return _kinds[ordinal] switch
        {
            ValueKind.Null => null,
            ValueKind.Unchanged => throw new InvalidOperationException(
                $"Column '{relation.Columns[ordinal].Name}' of {relation.QualifiedName} is an unchanged TOASTed value the server did not send; read it from the hub or set REPLICA IDENTITY FULL on the table."),
            ValueKind.Text => PgValueDecoder.DecodeText(relation.Columns[ordinal], System.Text.Encoding.UTF8.GetString(RawAt(ordinal))),
            _ => PgValueDecoder.DecodeBinary(relation.Columns[ordinal], RawAt(ordinal)),
        };
    }

    public object? GetValue(RelationInfo relation, string column) => GetValue(relation, relation.Ordinal(column));

    /// <summary>Builds a row from raw parts; used by the reader while copying a message.</summary>
    public sealed class Builder
    {
        private readonly List<ValueKind> _kinds = [];
        private readonly List<int> _offsets = [0];
        private byte[] _buffer = new byte[256];
        private int _length;

        public void Add(ValueKind kind, ReadOnlySpan<byte> bytes)
        {
            _kinds.Add(kind);
            Ensure(bytes.Length);
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
            _offsets.Add(_length);
        }

        /// <summary>Reserves space for a value of known length and returns it to be filled.</summary>
        public Memory<byte> AddRaw(ValueKind kind, int length)
        {
            _kinds.Add(kind);
            Ensure(length);
            var slot = _buffer.AsMemory(_length, length);
            _length += length;
            _offsets.Add(_length);
            return slot;
        }

        public RowValues Build()
        {
            var values = new RowValues([.. _kinds], [.. _offsets], _buffer.AsSpan(0, _length).ToArray());
            _kinds.Clear();
            _offsets.Clear();
            _offsets.Add(0);
            _length = 0;
            return values;
        }

        private void Ensure(int extra)
        {
            if (_length + extra > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
            }
        }
    }
}
