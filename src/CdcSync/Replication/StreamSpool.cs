namespace CdcSync.Replication;

/// <summary>
/// Changes of a large transaction the server streams before it commits. They go to a temporary
/// file, not memory, and are replayed in order on StreamCommit (dropped on StreamAbort), so a
/// million-row transaction costs disk, not heap.
/// </summary>
internal sealed class StreamSpool : IDisposable
{
    private readonly string _path;
    private readonly FileStream _file;
    private readonly BinaryWriter _writer;
    private readonly List<RelationInfo> _relations = [];
    private readonly HashSet<uint> _abortedSubtransactions = [];

    public StreamSpool(uint xid)
    {
        Xid = xid;
        _path = Path.Combine(Path.GetTempPath(), $"cdcsync-stream-{Environment.ProcessId}-{xid}-{Guid.NewGuid():N}.spool");
        _file = new FileStream(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        _writer = new BinaryWriter(_file);
    }

    public uint Xid { get; }

    public string? Origin { get; set; }

    public void Append(ChangeEvent change, uint subXid)
    {
        var index = _relations.IndexOf(change.Relation);
        if (index < 0)
        {
            _relations.Add(change.Relation);
            index = _relations.Count - 1;
        }

        _writer.Write(subXid);
        _writer.Write(index);
        _writer.Write((byte)change.Kind);
        WriteRow(change.New);
        WriteRow(change.Old);
    }

    public void AbortSubtransaction(uint subXid) => _abortedSubtransactions.Add(subXid);

    public IEnumerable<ChangeEvent> Replay(TransactionInfo transaction, IReadOnlyDictionary<uint, RelationInfo> _)
    {
        _writer.Flush();
        var length = _file.Position;
        _file.Position = 0;
        using var reader = new BinaryReader(_file, System.Text.Encoding.UTF8, leaveOpen: true);
        var builder = new RowValues.Builder();
        var position = 0;
        while (_file.Position < length)
        {
            var subXid = reader.ReadUInt32();
            var relation = _relations[reader.ReadInt32()];
            var kind = (ChangeKind)reader.ReadByte();
            var newRow = ReadRow(reader, builder);
            var oldRow = ReadRow(reader, builder);
            if (_abortedSubtransactions.Contains(subXid))
            {
                continue;
            }

            yield return new ChangeEvent(relation, kind, newRow, oldRow, transaction, position++);
        }
    }

    public void Dispose()
    {
        _writer.Dispose();
        _file.Dispose();
        if (File.Exists(_path))
        {
            File.Delete(_path);
        }
    }

    private void WriteRow(RowValues? row)
    {
        if (row is null)
        {
            _writer.Write(-1);
            return;
        }

        _writer.Write(row.Count);
        for (var i = 0; i < row.Count; i++)
        {
            var raw = row.RawAt(i);
            _writer.Write((byte)row.KindAt(i));
            _writer.Write(raw.Length);
            _writer.Write(raw);
        }
    }

    private static RowValues? ReadRow(BinaryReader reader, RowValues.Builder builder)
    {
        var count = reader.ReadInt32();
        if (count < 0)
        {
            return null;
        }

        for (var i = 0; i < count; i++)
        {
            var kind = (ValueKind)reader.ReadByte();
            var length = reader.ReadInt32();
            var slot = builder.AddRaw(kind, length);
            reader.BaseStream.ReadExactly(slot.Span);
        }

        return builder.Build();
    }
}
