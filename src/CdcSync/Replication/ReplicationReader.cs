using CdcSync.Hub;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace CdcSync.Replication;

public sealed record ReaderOptions(string ConnectionString, string Slot, string Publication, bool Binary = true, bool Streaming = true);

/// <summary>
/// Streams the hub's WAL from a pgoutput slot and turns it into immutable change events.
/// Protocol v2 (binary values, streaming of large in-progress transactions) on PostgreSQL 14+,
/// v1 with text values on older servers. Streamed transactions are spooled to disk until their
/// commit, so memory stays flat whatever the transaction size.
/// </summary>
public sealed class ReplicationReader : IAsyncDisposable
{
    private readonly ReaderOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<uint, RelationInfo> _relations = [];
    private readonly Dictionary<uint, StreamSpool> _spools = [];
    private readonly RowValues.Builder _builder = new();
    private LogicalReplicationConnection? _connection;

    public ReplicationReader(ReaderOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
    }

    /// <summary>Highest LSN the reader has passed fully to the sink (a commit end).</summary>
    public NpgsqlLogSequenceNumber LastCommitEnd { get; private set; }

    public bool UsesBinary { get; private set; }

    public bool UsesStreaming { get; private set; }

    public async Task RunAsync(IChangeSink sink, NpgsqlLogSequenceNumber startAt, CancellationToken cancellationToken)
    {
        _connection = new LogicalReplicationConnection(_options.ConnectionString);
        _connection.WalReceiverStatusInterval = TimeSpan.FromSeconds(1);
        await _connection.Open(cancellationToken);
        var serverVersion = _connection.PostgreSqlVersion;
        var v2 = serverVersion.Major >= 14;
        UsesBinary = v2 && _options.Binary;
        UsesStreaming = v2 && _options.Streaming;
        var replicationOptions = new PgOutputReplicationOptions(
            _options.Publication,
            v2 ? PgOutputProtocolVersion.V2 : PgOutputProtocolVersion.V1,
            binary: v2 ? UsesBinary : null,
            streamingMode: v2 ? (UsesStreaming ? PgOutputStreamingMode.On : PgOutputStreamingMode.Off) : null,
            messages: true);
        _logger.LogInformation(
            "Reading slot {Slot} (publication {Publication}) from {Lsn}: PostgreSQL {Version}, protocol {Protocol}, binary {Binary}, streaming {Streaming}",
            _options.Slot, _options.Publication, startAt, serverVersion, v2 ? 2 : 1, UsesBinary, UsesStreaming);

        TransactionInfo? current = null;
        uint currentXid = 0;
        DateTime commitTime = default;
        NpgsqlLogSequenceNumber finalLsn = default;
        string? origin = null;
        var position = 0;
        StreamSpool? activeSpool = null;

        var slot = new PgOutputReplicationSlot(_options.Slot);
        await foreach (var message in _connection.StartReplication(slot, replicationOptions, cancellationToken, startAt == default ? null : startAt))
        {
            switch (message)
            {
                case BeginMessage begin:
                    currentXid = begin.TransactionXid;
                    finalLsn = begin.TransactionFinalLsn;
                    commitTime = begin.TransactionCommitTimestamp;
                    origin = null;
                    current = null;
                    position = 0;
                    break;
                case OriginMessage o:
                    origin = o.OriginName;
                    if (activeSpool is not null)
                    {
                        activeSpool.Origin = o.OriginName;
                    }

                    current = null;
                    break;
                case RelationMessage r:
                    OnRelation(r);
                    break;
                case StreamStartMessage start:
                    var xid = start.TransactionXid;
                    if (!_spools.TryGetValue(xid, out activeSpool))
                    {
                        activeSpool = new StreamSpool(xid);
                        _spools[xid] = activeSpool;
                    }

                    break;
                case StreamStopMessage:
                    activeSpool = null;
                    break;
                case StreamAbortMessage abort:
                    if (_spools.TryGetValue(abort.TransactionXid, out var aborted))
                    {
                        if (abort.SubtransactionXid == abort.TransactionXid)
                        {
                            aborted.Dispose();
                            _spools.Remove(abort.TransactionXid);
                        }
                        else
                        {
                            aborted.AbortSubtransaction(abort.SubtransactionXid);
                        }
                    }

                    break;
                case StreamCommitMessage streamCommit:
                    if (_spools.Remove(streamCommit.TransactionXid, out var committed))
                    {
                        using (committed)
                        {
                            var info = new TransactionInfo(committed.Xid, streamCommit.CommitLsn, streamCommit.TransactionCommitTimestamp, committed.Origin);
                            var pos = 0;
                            foreach (var change in committed.Replay(info, _relations))
                            {
                                await sink.OnChangeAsync(change with { Position = pos++ }, cancellationToken);
                            }

                            await sink.OnCommitAsync(info, cancellationToken);
                        }
                    }

                    LastCommitEnd = streamCommit.TransactionEndLsn;
                    break;
                case InsertMessage or UpdateMessage or DeleteMessage or TruncateMessage:
                    var txnMessage = (TransactionalMessage)message;
                    if (activeSpool is not null)
                    {
                        foreach (var change in await CopyAsync(message, Placeholder, 0, cancellationToken))
                        {
                            activeSpool.Append(change, txnMessage.TransactionXid ?? activeSpool.Xid);
                        }

                        break;
                    }

                    current ??= new TransactionInfo(currentXid, finalLsn, commitTime, origin);
                    foreach (var change in await CopyAsync(message, current, position, cancellationToken))
                    {
                        position++;
                        await sink.OnChangeAsync(change, cancellationToken);
                    }

                    break;
                case CommitMessage commit:
                    current ??= new TransactionInfo(currentXid, commit.CommitLsn, commit.TransactionCommitTimestamp, origin);
                    await sink.OnCommitAsync(current, cancellationToken);
                    LastCommitEnd = commit.TransactionEndLsn;
                    current = null;
                    break;
                case LogicalDecodingMessage:
                    // Heartbeats: their commit moves the position even when no table changed.
                    break;
            }
        }
    }

    /// <summary>Tells the server everything up to <paramref name="lsn"/> is durable at every target.</summary>
    public async Task AcknowledgeAsync(NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        var connection = _connection;
        if (connection is null || lsn == default)
        {
            return;
        }

        connection.SetReplicationStatus(lsn);
        await connection.SendStatusUpdate(cancellationToken);
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

    private static readonly TransactionInfo Placeholder = new(0, default, default, null);

    private void OnRelation(RelationMessage r)
    {
        var columns = new List<ColumnInfo>(r.Columns.Count);
        foreach (var c in r.Columns)
        {
            columns.Add(new ColumnInfo(c.ColumnName, c.DataTypeId, c.TypeModifier, (c.Flags & RelationMessage.Column.ColumnFlags.PartOfKey) != 0));
        }

        var relation = new RelationInfo(r.RelationId, r.Namespace, r.RelationName, (char)r.ReplicaIdentity, columns);
        if (_relations.TryGetValue(r.RelationId, out var previous) && !previous.SameShape(relation))
        {
            _logger.LogInformation("Table {Table} changed shape: {Columns}", relation.QualifiedName, string.Join(", ", columns.Select(c => c.Name)));
        }

        _relations[r.RelationId] = relation;
    }

    private RelationInfo RelationOf(uint id) =>
        _relations.TryGetValue(id, out var r) ? r : throw new InvalidOperationException($"The replication stream referenced relation {id} before describing it.");

    private async Task<IReadOnlyList<ChangeEvent>> CopyAsync(PgOutputReplicationMessage message, TransactionInfo txn, int position, CancellationToken cancellationToken)
    {
        switch (message)
        {
            case InsertMessage insert:
            {
                var rel = RelationOf(insert.Relation.RelationId);
                return [new ChangeEvent(rel, ChangeKind.Insert, await CopyRowAsync(insert.NewRow, cancellationToken), null, txn, position)];
            }

            case FullUpdateMessage full:
            {
                var rel = RelationOf(full.Relation.RelationId);
                var old = await CopyRowAsync(full.OldRow, cancellationToken);
                return [new ChangeEvent(rel, ChangeKind.Update, await CopyRowAsync(full.NewRow, cancellationToken), old, txn, position)];
            }

            case IndexUpdateMessage keyed:
            {
                var rel = RelationOf(keyed.Relation.RelationId);
                var old = await CopyRowAsync(keyed.Key, cancellationToken);
                return [new ChangeEvent(rel, ChangeKind.Update, await CopyRowAsync(keyed.NewRow, cancellationToken), old, txn, position)];
            }

            case UpdateMessage update:
            {
                var rel = RelationOf(update.Relation.RelationId);
                return [new ChangeEvent(rel, ChangeKind.Update, await CopyRowAsync(update.NewRow, cancellationToken), null, txn, position)];
            }

            case FullDeleteMessage fullDelete:
            {
                var rel = RelationOf(fullDelete.Relation.RelationId);
                return [new ChangeEvent(rel, ChangeKind.Delete, null, await CopyRowAsync(fullDelete.OldRow, cancellationToken), txn, position)];
            }

            case KeyDeleteMessage keyDelete:
            {
                var rel = RelationOf(keyDelete.Relation.RelationId);
                return [new ChangeEvent(rel, ChangeKind.Delete, null, await CopyRowAsync(keyDelete.Key, cancellationToken), txn, position)];
            }

            case TruncateMessage truncate:
            {
                var list = new List<ChangeEvent>();
                foreach (var r in truncate.Relations)
                {
                    list.Add(new ChangeEvent(RelationOf(r.RelationId), ChangeKind.Truncate, null, null, txn, position + list.Count));
                }

                return list;
            }

            default:
                return [];
        }
    }

    private async Task<RowValues> CopyRowAsync(ReplicationTuple tuple, CancellationToken cancellationToken)
    {
        await foreach (var value in tuple.WithCancellation(cancellationToken))
        {
            switch (value.Kind)
            {
                case TupleDataKind.Null:
                    _builder.Add(ValueKind.Null, default);
                    break;
                case TupleDataKind.UnchangedToastedValue:
                    _builder.Add(ValueKind.Unchanged, default);
                    break;
                default:
                    var kind = value.Kind == TupleDataKind.BinaryValue ? ValueKind.Binary : ValueKind.Text;
                    var slot = _builder.AddRaw(kind, value.Length);
                    if (value.Length > 0)
                    {
                        await using var stream = value.GetStream();
                        await stream.ReadExactlyAsync(slot, cancellationToken);
                    }

                    break;
            }
        }

        return _builder.Build();
    }
}
