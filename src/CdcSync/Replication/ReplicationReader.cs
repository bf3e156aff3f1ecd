using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;

namespace CdcSync.Replication;

internal sealed record ReaderOptions(string ConnectionString, string Slot, string Publication, bool Binary = true, bool Streaming = true);

/// <summary>
/// Streams the hub's WAL from a pgoutput slot and turns it into immutable change events.
/// Protocol v2 (binary values, streaming of large in-progress transactions) on PostgreSQL 14+,
/// v1 with text values on older servers. Streamed transactions are spooled to disk until their
/// commit, so memory stays flat whatever the transaction size.
/// </summary>
/// <remarks>
/// Npgsql carries the replication protocol (connection, keepalives, status updates); each XLogData
/// payload is copied into one reused buffer and decoded synchronously by <see cref="PgOutputDecoder"/>.
/// This class keeps the session: what a decoded message means for the sink, the spools and the slot.
/// </remarks>
internal sealed class ReplicationReader : IAsyncDisposable
{
    private readonly ReaderOptions _options;
    private readonly ILogger _logger;
    private readonly PgOutputDecoder _decoder = new();
    private readonly Dictionary<uint, StreamSpool> _spools = [];
    private LogicalReplicationConnection? _connection;
    private byte[] _buffer = new byte[1 << 16];

    // The spool of the streamed transaction whose Stream Start/Stop block is being read.
    private StreamSpool? _activeSpool;

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
            throw new OperatorException($"Publication name {_options.Publication} contains a single quote; choose a Hub:Publication without one.");
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
            var messages = _connection.StartLogicalReplication(slot, cancellationToken, startAt == default ? null : startAt, pluginOptions)
                .GetAsyncEnumerator(cancellationToken);
            var next = ValueTask.FromResult(false);
            var readPending = false;
            try
            {
                while (true)
                {
                    next = messages.MoveNextAsync();
                    var waitedSince = 0L;
                    var handedOver = 0L;
                    if (!next.IsCompleted)
                    {
                        // Nothing buffered: the next message needs the server. What the sink holds
                        // back for batching goes on now, so the end of a burst never waits for the next one.
                        readPending = true;
                        waitedSince = Pipeline.LatencyTrace.Enabled ? Pipeline.LatencyTrace.Now() : 0;
                        await sink.OnIdleAsync(cancellationToken);
                        handedOver = waitedSince != 0 ? Pipeline.LatencyTrace.Now() : 0;
                        readPending = false;
                    }

                    if (!await next)
                    {
                        break;
                    }

                    if (waitedSince != 0)
                    {
                        Pipeline.LatencyTrace.Waited(waitedSince, handedOver);
                    }

                    var message = messages.Current;
                    var length = await ReadPayloadAsync(message.Data, cancellationToken);
                    await DecodeAsync(sink, length, cancellationToken);
                    Interlocked.Increment(ref _decodedMessages);
                }
            }
            finally
            {
                await EndReadAsync(messages, next, readPending, cancellationToken);
            }
        }
        finally
        {
            _streamEnded = true;
        }
    }

    /// <summary>
    /// Disposes the message stream. The sink may fail (a stop cancels its hand-over) while a read
    /// from the server is pending, and Npgsql's stream cannot be disposed under a pending read (it
    /// throws NotSupportedException, which would hide the real error): when stopping, the read is
    /// cancelled by the same token and awaited first; otherwise it is left to end with the
    /// connection, which <see cref="DisposeAsync"/> closes.
    /// </summary>
    private static async ValueTask EndReadAsync(IAsyncEnumerator<XLogDataMessage> messages, ValueTask<bool> next, bool readPending, CancellationToken cancellationToken)
    {
        if (readPending)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await next;
            }
            catch (Exception)
            {
                // The read ends with the cancellation; the sink's error is the one that goes up.
            }
        }

        await messages.DisposeAsync();
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
        var message = _decoder.Decode(_buffer.AsSpan(0, length));
        switch (message.Kind)
        {
            case PgOutputMessageKind.Begin:
                _betweenTransactions = false;
                return;
            case PgOutputMessageKind.Commit:
                if (Pipeline.LatencyTrace.Enabled)
                {
                    Pipeline.LatencyTrace.Received((ulong)message.Transaction!.CommitLsn, message.Transaction.CommitTimeUtc);
                }

                await sink.OnCommitAsync(message.Transaction!, cancellationToken);
                LastCommitEnd = message.EndLsn;
                _betweenTransactions = true;
                return;
            case PgOutputMessageKind.Origin:
                if (_activeSpool is not null)
                {
                    _activeSpool.Origin = message.Origin;
                }

                return;
            case PgOutputMessageKind.StreamStart:
                if (!_spools.TryGetValue(message.Xid, out _activeSpool))
                {
                    _activeSpool = new StreamSpool(message.Xid);
                    _spools[message.Xid] = _activeSpool;
                }

                return;
            case PgOutputMessageKind.StreamStop:
                _activeSpool = null;
                return;
            case PgOutputMessageKind.StreamAbort:
                if (_spools.TryGetValue(message.Xid, out var aborted))
                {
                    if (message.SubXid == message.Xid)
                    {
                        aborted.Dispose();
                        _spools.Remove(message.Xid);
                    }
                    else
                    {
                        aborted.AbortSubtransaction(message.SubXid);
                    }
                }

                return;
            case PgOutputMessageKind.StreamCommit:
                if (_spools.Remove(message.Xid, out var committed))
                {
                    using (committed)
                    {
                        var info = new TransactionInfo(committed.Xid, message.CommitLsn, message.CommitTime, committed.Origin);
                        foreach (var change in committed.Replay(info, _decoder.Relations))
                        {
                            await sink.OnChangeAsync(change, cancellationToken);
                        }

                        await sink.OnCommitAsync(info, cancellationToken);
                    }
                }

                LastCommitEnd = message.EndLsn;
                return;
            case PgOutputMessageKind.Relation:
                if (message.ShapeChanged)
                {
                    var relation = message.Relation!;
                    _logger.LogInformation("Table {Table} changed shape: {Columns}", relation.QualifiedName, string.Join(", ", relation.Columns.Select(c => c.Name)));
                }

                return;
            case PgOutputMessageKind.Change:
                // Indexed, not foreach: an enumerator over the interface would be one more object per message.
                var changes = message.Changes!;
                if (_activeSpool is not null)
                {
                    for (var i = 0; i < changes.Count; i++)
                    {
                        _activeSpool.Append(changes[i], message.Xid);
                    }

                    return;
                }

                for (var i = 0; i < changes.Count; i++)
                {
                    await sink.OnChangeAsync(changes[i], cancellationToken);
                }

                return;
            default:
                return;
        }
    }
}
