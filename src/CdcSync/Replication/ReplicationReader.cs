using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;

namespace CdcSync.Replication;

public sealed record ReaderOptions(string ConnectionString, string Slot, string Publication, bool Binary = true, bool Streaming = true);

/// <summary>
/// Streams the hub's WAL from a pgoutput slot and turns it into immutable change events.
/// Protocol v2 (binary values, streaming of large in-progress transactions) on PostgreSQL 14+,
/// v1 with text values on older servers. Streamed transactions are spooled to disk until their
/// commit, so memory stays flat whatever the transaction size.
/// </summary>
/// <remarks>
/// Npgsql carries the replication protocol (connection, keepalives, status updates); the pgoutput
/// messages themselves are decoded here from each XLogData payload, synchronously over one buffer.
/// Measured on the pgbench backlog in docs/BENCHMARKS.md, Npgsql's own message objects cost a full
/// core; the format is small and documented ("Logical Replication Message Formats").
/// </remarks>
public sealed class ReplicationReader : IAsyncDisposable
{
    private static readonly DateTime PgEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private readonly ReaderOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<uint, RelationInfo> _relations = [];
    private readonly Dictionary<uint, StreamSpool> _spools = [];
    private readonly List<ChangeEvent> _decoded = [];
    private LogicalReplicationConnection? _connection;
    private byte[] _buffer = new byte[1 << 16];

    // State of the transaction being decoded.
    private TransactionInfo? _current;
    private uint _xid;
    private DateTime _commitTime;
    private NpgsqlLogSequenceNumber _finalLsn;
    private string? _origin;
    private int _position;
    private StreamSpool? _activeSpool;
    private bool _inStream;

    // Read by the acknowledgement loop on another thread: whether the last message decoded left
    // no transaction open, and how many messages have been decoded so far.
    private volatile bool _betweenTransactions = true;
    private volatile bool _streamEnded;
    private long _decodedMessages;

    public ReplicationReader(ReaderOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
    }

    /// <summary>Highest LSN the reader has passed fully to the sink (a commit end).</summary>
    public NpgsqlLogSequenceNumber LastCommitEnd { get; private set; }

    public bool UsesBinary { get; private set; }

    /// <summary>
    /// The replication session's application_name, unique to this reader: pg_stat_activity names
    /// the walsender by it, which is how the pipeline knows the server accepted this very reader on
    /// the slot (and not a worker that held it before).
    /// </summary>
    public string SessionName { get; } = $"cdcsync reader {Guid.NewGuid():N}"[..30];

    /// <summary>
    /// The server's WAL end as last reported (keepalives included) when the reader sits between
    /// transactions and <paramref name="downstreamCaughtUp"/> says everything handed on is durable;
    /// otherwise null. Confirming the slot up to it is what lets an idle hub's walsender finish a
    /// fast shutdown. Safe because a transaction is re-sent whenever its commit lies at or after the
    /// confirmed position, and between transactions the only message received but not yet decoded
    /// is the start of the next one (Npgsql reads one message ahead at most).
    /// </summary>
    public NpgsqlLogSequenceNumber? IdleWalEnd(Func<bool> downstreamCaughtUp)
    {
        var connection = _connection;
        if (connection is null)
        {
            return null;
        }

        var before = Interlocked.Read(ref _decodedMessages);
        var received = connection.LastReceivedLsn;
        var idle = _betweenTransactions && _spools.Count == 0 && downstreamCaughtUp();
        return idle && Interlocked.Read(ref _decodedMessages) == before && received > LastCommitEnd ? received : null;
    }

    public bool UsesStreaming { get; private set; }

    /// <summary>True once a message from the slot has been decoded: the server streams to this reader.</summary>
    public bool HasReceived => Interlocked.Read(ref _decodedMessages) > 0;

    public async Task RunAsync(IChangeSink sink, NpgsqlLogSequenceNumber startAt, CancellationToken cancellationToken)
    {
        if (_options.Publication.Contains('\'', StringComparison.Ordinal))
        {
            throw new Hub.OperatorException($"Publication name {_options.Publication} contains a single quote; choose a Hub:Publication without one.");
        }

        _connection = new LogicalReplicationConnection(PinOutputSettings(_options.ConnectionString, SessionName));
        _connection.WalReceiverStatusInterval = TimeSpan.FromSeconds(1);
        await _connection.Open(cancellationToken);
        var serverVersion = _connection.PostgreSqlVersion;
        var v2 = serverVersion.Major >= 14;
        UsesBinary = v2 && _options.Binary;
        UsesStreaming = v2 && _options.Streaming;
        var pluginOptions = new List<KeyValuePair<string, string?>>
        {
            new("proto_version", v2 ? "2" : "1"),
            new("publication_names", "\"" + _options.Publication.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""),
        };
        if (v2)
        {
            pluginOptions.Add(new("binary", UsesBinary ? "true" : "false"));
            pluginOptions.Add(new("streaming", UsesStreaming ? "on" : "off"));
            pluginOptions.Add(new("messages", "true"));
        }

        // Without a start position the server resumes at the slot's confirmed position: name it, an
        // operator reading "from 0/0" would think the slot started over.
        var from = startAt == default ? await ConfirmedPositionAsync(cancellationToken) : startAt.ToString();
        _logger.LogInformation(
            "Reading slot {Slot} (publication {Publication}) from {Lsn}: PostgreSQL {Version}, protocol {Protocol}, binary {Binary}, streaming {Streaming}",
            _options.Slot, _options.Publication, from, serverVersion, v2 ? 2 : 1, UsesBinary, UsesStreaming);

        var slot = new PgOutputReplicationSlot(_options.Slot);
        try
        {
            await foreach (var message in _connection.StartLogicalReplication(slot, cancellationToken, startAt == default ? null : startAt, pluginOptions))
            {
                var length = await ReadPayloadAsync(message.Data, cancellationToken);
                await DecodeAsync(sink, length, cancellationToken);
                Interlocked.Increment(ref _decodedMessages);
            }
        }
        finally
        {
            _streamEnded = true;
        }
    }

    /// <summary>
    /// Text values come out in the session's output formats, which ALTER DATABASE/ROLE ... SET can
    /// change (DateStyle 'SQL, DMY' swaps day and month, IntervalStyle sql_standard flips signs,
    /// extra_float_digits=0 drops digits). Pinned at connection start, as PostgreSQL's own
    /// subscriber does, so a value reads back as the same value anywhere.
    /// </summary>
    public static string PinOutputSettings(string connectionString, string? applicationName = null)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (applicationName is not null)
        {
            builder.ApplicationName = applicationName;
        }

        builder.Options = ((builder.Options ?? string.Empty) + " " + PinnedOptions).Trim();
        return builder.ConnectionString;
    }

    /// <summary>Session settings that make text output unambiguous (libpq's <c>options</c> syntax).</summary>
    public const string PinnedOptions = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex";

    /// <summary>Tells the server everything up to <paramref name="lsn"/> is durable at every target.</summary>
    public async Task AcknowledgeAsync(NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        var connection = _connection;
        if (connection is null || lsn == default || _streamEnded)
        {
            return;
        }

        try
        {
            connection.SetReplicationStatus(lsn);
            await connection.SendStatusUpdate(cancellationToken);
        }
        catch (Exception) when (_streamEnded)
        {
            // The stream ended while the update was sent (a clean stop closes it under the
            // acknowledger; Npgsql then throws from inside its feedback code). The final position
            // is recorded through SQL after the stop.
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var spool in _spools.Values)
        {
            spool.Dispose();
        }

        _spools.Clear();
        if (_connection is not null)
        {
            var connection = _connection;
            _connection = null;
            await connection.DisposeAsync();
        }
    }

    private async Task<string> ConfirmedPositionAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var conn = new NpgsqlConnection(_options.ConnectionString);
            await conn.OpenAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = _options.Slot });
            return await cmd.ExecuteScalarAsync(cancellationToken) is string lsn ? $"its confirmed position {lsn}" : "its confirmed position";
        }
        catch (NpgsqlException)
        {
            return "its confirmed position";
        }
    }

    private async Task<int> ReadPayloadAsync(Stream data, CancellationToken cancellationToken)
    {
        var length = 0;
        while (true)
        {
            if (length == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var read = await data.ReadAsync(_buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return length;
            }

            length += read;
        }
    }

    private async Task DecodeAsync(IChangeSink sink, int length, CancellationToken cancellationToken)
    {
        var tag = (char)_buffer[0];
        switch (tag)
        {
            case 'B':
                var begin = new Reader(_buffer, 1, length);
                _finalLsn = new NpgsqlLogSequenceNumber(begin.UInt64());
                _commitTime = Timestamp(begin.Int64());
                _xid = begin.UInt32();
                _origin = null;
                _current = null;
                _position = 0;
                _betweenTransactions = false;
                return;
            case 'C':
                var commit = new Reader(_buffer, 1, length);
                commit.Byte();
                var commitLsn = new NpgsqlLogSequenceNumber(commit.UInt64());
                var endLsn = new NpgsqlLogSequenceNumber(commit.UInt64());
                var commitTime = Timestamp(commit.Int64());
                _current ??= new TransactionInfo(_xid, commitLsn, commitTime, _origin);
                await sink.OnCommitAsync(_current, cancellationToken);
                LastCommitEnd = endLsn;
                _current = null;
                _betweenTransactions = true;
                return;
            case 'O':
                var originMessage = new Reader(_buffer, 1, length);
                originMessage.UInt64();
                var origin = originMessage.String();
                if (_activeSpool is not null)
                {
                    _activeSpool.Origin = origin;
                }
                else
                {
                    _origin = origin;
                    _current = null;
                }

                return;
            case 'S':
                var start = new Reader(_buffer, 1, length);
                var streamXid = start.UInt32();
                if (!_spools.TryGetValue(streamXid, out _activeSpool))
                {
                    _activeSpool = new StreamSpool(streamXid);
                    _spools[streamXid] = _activeSpool;
                }

                _inStream = true;
                return;
            case 'E':
                _activeSpool = null;
                _inStream = false;
                return;
            case 'A':
                var abort = new Reader(_buffer, 1, length);
                var abortXid = abort.UInt32();
                var subXid = abort.UInt32();
                if (_spools.TryGetValue(abortXid, out var aborted))
                {
                    if (subXid == abortXid)
                    {
                        aborted.Dispose();
                        _spools.Remove(abortXid);
                    }
                    else
                    {
                        aborted.AbortSubtransaction(subXid);
                    }
                }

                return;
            case 'c':
                var streamCommit = new Reader(_buffer, 1, length);
                var committedXid = streamCommit.UInt32();
                streamCommit.Byte();
                var streamCommitLsn = new NpgsqlLogSequenceNumber(streamCommit.UInt64());
                var streamEndLsn = new NpgsqlLogSequenceNumber(streamCommit.UInt64());
                var streamCommitTime = Timestamp(streamCommit.Int64());
                if (_spools.Remove(committedXid, out var committed))
                {
                    using (committed)
                    {
                        var info = new TransactionInfo(committed.Xid, streamCommitLsn, streamCommitTime, committed.Origin);
                        foreach (var change in committed.Replay(info, _relations))
                        {
                            await sink.OnChangeAsync(change, cancellationToken);
                        }

                        await sink.OnCommitAsync(info, cancellationToken);
                    }
                }

                LastCommitEnd = streamEndLsn;
                return;
            case 'R':
                OnRelation(length);
                return;
            case 'I' or 'U' or 'D' or 'T':
                _decoded.Clear();
                var subtransaction = DecodeChange(tag, length);
                if (_activeSpool is not null)
                {
                    foreach (var change in _decoded)
                    {
                        _activeSpool.Append(change, subtransaction);
                    }

                    return;
                }

                foreach (var change in _decoded)
                {
                    await sink.OnChangeAsync(change, cancellationToken);
                }

                return;
            default:
                // 'Y' (type), 'M' (logical message: heartbeats; their commit moves the position).
                return;
        }
    }

    /// <summary>Decodes an insert, update, delete or truncate into <see cref="_decoded"/>; returns its (sub)transaction id.</summary>
    private uint DecodeChange(char tag, int length)
    {
        var r = new Reader(_buffer, 1, length);
        var xid = _inStream ? r.UInt32() : _xid;
        var txn = _activeSpool is null ? (_current ??= new TransactionInfo(_xid, _finalLsn, _commitTime, _origin)) : SpoolPlaceholder;
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
        _decoded.Add(change);
        if (_activeSpool is null)
        {
            _position++;
        }
    }

    private static readonly TransactionInfo SpoolPlaceholder = new(0, default, default, null);

    private void OnRelation(int length)
    {
        var r = new Reader(_buffer, 1, length);
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
        if (_relations.TryGetValue(id, out var previous) && !previous.SameShape(relation))
        {
            _logger.LogInformation("Table {Table} changed shape: {Columns}", relation.QualifiedName, string.Join(", ", columns.Select(c => c.Name)));
        }
        else if (previous is not null)
        {
            // Same shape: keep the instance so per-relation caches downstream stay valid.
            return;
        }

        _relations[id] = relation;
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
    private ref struct Reader(byte[] buffer, int position, int length)
    {
        private readonly ReadOnlySpan<byte> _span = buffer.AsSpan(0, length);
        private int _pos = position;

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
