using System.Buffers.Binary;
using System.Text;
using NpgsqlTypes;

namespace CdcSync.Replication;

/// <summary>
/// Decodes pgoutput messages ("Logical Replication Message Formats", protocol 1 and 2) into change
/// events, one XLogData payload at a time. Pure: bytes in, records out, no connection, disk or clock,
/// so the format is tested byte by byte without a server.
/// </summary>
/// <remarks>
/// Stateful the way the protocol is: a change names its table by the id of an earlier Relation
/// message, belongs to the transaction of the last Begin, and inside a Stream Start/Stop block
/// carries its xid in front. Hand-written over one span rather than Npgsql's message objects:
/// measured on the pgbench backlog (bench/results/HISTORY.md), those cost a full core.
/// </remarks>
internal sealed class PgOutputDecoder
{
    private static readonly DateTime PgEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>
    /// The transaction streamed changes carry until their StreamCommit, when the spool replays them
    /// under the real one (commit LSN and time are not known before).
    /// </summary>
    private static readonly TransactionInfo SpoolPlaceholder = new(0, default, default, null);

    private readonly Dictionary<uint, RelationInfo> _relations = [];
    private readonly List<ChangeEvent> _changes = [];

    // The (non-streamed) transaction being decoded. Its TransactionInfo is made on its first change,
    // or at its commit when it had none, and then shared by all of its changes.
    private TransactionInfo? _current;
    private uint _xid;
    private DateTime _commitTime;
    private NpgsqlLogSequenceNumber _finalLsn;
    private string? _origin;
    private int _position;
    private bool _inStream;

    /// <summary>Every table described so far, by relation id.</summary>
    public IReadOnlyDictionary<uint, RelationInfo> Relations => _relations;

    /// <summary>Decodes one pgoutput message: <paramref name="message"/> starts with its tag byte.</summary>
    public PgOutputMessage Decode(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty)
        {
            return new PgOutputMessage(PgOutputMessageKind.Ignored);
        }

        var r = new Reader(message);
        var tag = (char)r.Byte();
        switch (tag)
        {
            case 'B':
                _finalLsn = new NpgsqlLogSequenceNumber(r.UInt64());
                _commitTime = Timestamp(r.Int64());
                _xid = r.UInt32();
                _origin = null;
                _current = null;
                _position = 0;
                return new PgOutputMessage(PgOutputMessageKind.Begin) { Xid = _xid, CommitLsn = _finalLsn, CommitTime = _commitTime };
            case 'C':
            {
                r.Byte(); // flags, unused
                var commitLsn = new NpgsqlLogSequenceNumber(r.UInt64());
                var endLsn = new NpgsqlLogSequenceNumber(r.UInt64());
                var commitTime = Timestamp(r.Int64());
                var transaction = _current ?? new TransactionInfo(_xid, commitLsn, commitTime, _origin);
                _current = null;
                return new PgOutputMessage(PgOutputMessageKind.Commit) { CommitLsn = commitLsn, EndLsn = endLsn, CommitTime = commitTime, Transaction = transaction };
            }

            case 'O':
            {
                r.UInt64(); // the commit LSN on the origin server
                var origin = r.String();
                if (!_inStream)
                {
                    // A streamed transaction's origin belongs to its spool, not to the transaction
                    // that began with the last Begin.
                    _origin = origin;
                    _current = null;
                }

                return new PgOutputMessage(PgOutputMessageKind.Origin) { Origin = origin };
            }

            case 'S':
            {
                var xid = r.UInt32();
                _inStream = true;
                return new PgOutputMessage(PgOutputMessageKind.StreamStart) { Xid = xid };
            }

            case 'E':
                _inStream = false;
                return new PgOutputMessage(PgOutputMessageKind.StreamStop);
            case 'A':
            {
                var xid = r.UInt32();
                var subXid = r.UInt32();
                return new PgOutputMessage(PgOutputMessageKind.StreamAbort) { Xid = xid, SubXid = subXid };
            }

            case 'c':
            {
                var xid = r.UInt32();
                r.Byte(); // flags, unused
                var commitLsn = new NpgsqlLogSequenceNumber(r.UInt64());
                var endLsn = new NpgsqlLogSequenceNumber(r.UInt64());
                var commitTime = Timestamp(r.Int64());
                return new PgOutputMessage(PgOutputMessageKind.StreamCommit) { Xid = xid, CommitLsn = commitLsn, EndLsn = endLsn, CommitTime = commitTime };
            }

            case 'R':
                return DecodeRelation(ref r);
            case 'I' or 'U' or 'D' or 'T':
                _changes.Clear();
                var subtransaction = DecodeChange(tag, ref r);
                return new PgOutputMessage(PgOutputMessageKind.Change) { Xid = subtransaction, Changes = _changes };
            default:
                // 'Y' (type), 'M' (logical message: heartbeats; their commit moves the position).
                return new PgOutputMessage(PgOutputMessageKind.Ignored);
        }
    }

    /// <summary>Decodes an insert, update, delete or truncate into <see cref="_changes"/>; returns its (sub)transaction id.</summary>
    private uint DecodeChange(char tag, ref Reader r)
    {
        var xid = _inStream ? r.UInt32() : _xid;
        var txn = _inStream ? SpoolPlaceholder : (_current ??= new TransactionInfo(_xid, _finalLsn, _commitTime, _origin));
        switch (tag)
        {
            case 'I':
            {
                var relation = RelationOf(r.UInt32());
                r.Byte(); // 'N'
                Emit(new ChangeEvent(relation, ChangeKind.Insert, Tuple(ref r), null, txn, _position));
                break;
            }

            case 'U':
            {
                var relation = RelationOf(r.UInt32());
                RowValues? old = null;
                var marker = (char)r.Byte();
                if (marker is 'K' or 'O')
                {
                    old = Tuple(ref r);
                    r.Byte(); // 'N'
                }

                Emit(new ChangeEvent(relation, ChangeKind.Update, Tuple(ref r), old, txn, _position));
                break;
            }

            case 'D':
            {
                var relation = RelationOf(r.UInt32());
                r.Byte(); // 'K' or 'O'
                Emit(new ChangeEvent(relation, ChangeKind.Delete, null, Tuple(ref r), txn, _position));
                break;
            }

            case 'T':
            {
                var count = r.Int32();
                r.Byte(); // options: CASCADE / RESTART IDENTITY
                for (var i = 0; i < count; i++)
                {
                    Emit(new ChangeEvent(RelationOf(r.UInt32()), ChangeKind.Truncate, null, null, txn, _position));
                }

                break;
            }
        }

        return xid;
    }

    private void Emit(ChangeEvent change)
    {
        _changes.Add(change);

        // A streamed change gets its position when its spool replays it after the commit.
        if (!_inStream)
        {
            _position++;
        }
    }

    private PgOutputMessage DecodeRelation(ref Reader r)
    {
        if (_inStream)
        {
            r.UInt32();
        }

        var id = r.UInt32();
        var schema = r.String();
        var name = r.String();
        var replicaIdentity = (char)r.Byte();
        var count = r.Int16();
        var columns = new List<ColumnInfo>(count);
        for (var i = 0; i < count; i++)
        {
            var flags = r.Byte();
            var column = r.String();
            var type = r.UInt32();
            var modifier = r.Int32();
            columns.Add(new ColumnInfo(column, type, modifier, (flags & 1) != 0));
        }

        var relation = new RelationInfo(id, schema, name, replicaIdentity, columns);
        var shapeChanged = false;
        if (_relations.TryGetValue(id, out var previous) && !previous.SameShape(relation))
        {
            shapeChanged = true;
        }
        else if (previous is not null)
        {
            // Same shape: keep the instance so per-relation caches downstream stay valid.
            return new PgOutputMessage(PgOutputMessageKind.Relation) { Relation = previous };
        }

        _relations[id] = relation;
        return new PgOutputMessage(PgOutputMessageKind.Relation) { Relation = relation, ShapeChanged = shapeChanged };
    }

    private RelationInfo RelationOf(uint id) =>
        _relations.TryGetValue(id, out var r) ? r : throw new InvalidOperationException($"The replication stream referenced relation {id} before describing it.");

    /// <summary>TupleData: Int16 count, then per column 'n' | 'u' | 't' Int32 len bytes | 'b' Int32 len bytes.</summary>
    private static RowValues Tuple(ref Reader r)
    {
        var count = r.Int16();
        var kinds = new ValueKind[count];
        var offsets = new int[count + 1];
        // First pass: sizes, so the row's values land in one exact-size array.
        var scan = r;
        var total = 0;
        for (var i = 0; i < count; i++)
        {
            var kind = (char)scan.Byte();
            if (kind is 't' or 'b')
            {
                var len = scan.Int32();
                total += len;
                scan.Skip(len);
            }
        }

        var data = new byte[total];
        var at = 0;
        for (var i = 0; i < count; i++)
        {
            var kind = (char)r.Byte();
            offsets[i] = at;
            switch (kind)
            {
                case 'n':
                    kinds[i] = ValueKind.Null;
                    break;
                case 'u':
                    kinds[i] = ValueKind.Unchanged;
                    break;
                default:
                    kinds[i] = kind == 'b' ? ValueKind.Binary : ValueKind.Text;
                    var len = r.Int32();
                    r.Bytes(len).CopyTo(data.AsSpan(at));
                    at += len;
                    break;
            }
        }

        offsets[count] = at;
        return new RowValues(kinds, offsets, data);
    }

    private static DateTime Timestamp(long microseconds) => PgEpoch.AddTicks(microseconds * 10);

    /// <summary>Big-endian reads over one message payload.</summary>
    private ref struct Reader(ReadOnlySpan<byte> message)
    {
        private readonly ReadOnlySpan<byte> _span = message;
        private int _pos;

        public byte Byte() => _span[_pos++];

        public short Int16()
        {
            var v = BinaryPrimitives.ReadInt16BigEndian(_span[_pos..]);
            _pos += 2;
            return v;
        }

        public int Int32()
        {
            var v = BinaryPrimitives.ReadInt32BigEndian(_span[_pos..]);
            _pos += 4;
            return v;
        }

        public uint UInt32()
        {
            var v = BinaryPrimitives.ReadUInt32BigEndian(_span[_pos..]);
            _pos += 4;
            return v;
        }

        public long Int64()
        {
            var v = BinaryPrimitives.ReadInt64BigEndian(_span[_pos..]);
            _pos += 8;
            return v;
        }

        public ulong UInt64()
        {
            var v = BinaryPrimitives.ReadUInt64BigEndian(_span[_pos..]);
            _pos += 8;
            return v;
        }

        public ReadOnlySpan<byte> Bytes(int count)
        {
            var s = _span.Slice(_pos, count);
            _pos += count;
            return s;
        }

        public void Skip(int count) => _pos += count;

        public string String()
        {
            var end = _span[_pos..].IndexOf((byte)0);
            var s = Encoding.UTF8.GetString(_span.Slice(_pos, end));
            _pos += end + 1;
            return s;
        }
    }
}
