using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using CdcSync.Connectors;
using CdcSync.Operations;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using NpgsqlTypes;
using Prometheus;

namespace CdcSync.Pipeline;

/// <summary>
/// Feeds one connector from a bounded channel. Changes are handed over in chunks as they come, so
/// a huge transaction never sits in memory; the connector commits only at a transaction boundary,
/// when the channel has run dry or the batch is big enough, with that transaction's commit LSN as
/// its checkpoint. A full channel blocks the router, which blocks the reader: a slow connector
/// slows the stream instead of growing memory.
/// </summary>
internal sealed class ConnectorWriter
{
    private readonly Channel<object> _channel;
    private readonly ILogger _logger;
    private readonly int _chunkSize;
    private readonly int _maxBatchChanges;
    private long _delivered;
    private long _committed;
    private long _lastCommitTicks;
    private long _bytesInFlight;
    private readonly long _maxBytesInFlight;
    private readonly TimeSpan _commitLinger;
    private readonly TimeSpan _maxCommitDelay;
    private readonly SemaphoreSlim _space = new(0);
    private readonly Counter.Child _received;
    private readonly Counter.Child _applied;
    private readonly Histogram.Child _batchDuration;

    // Commit LSN and time of each transaction handed over and not yet durable, oldest first, for
    // lag in seconds ("commit time of the oldest unapplied change"). Bounded by the channel.
    private readonly ConcurrentQueue<(NpgsqlLogSequenceNumber Lsn, DateTime CommitTimeUtc)> _pending = new();

    public ConnectorWriter(IOutboundConnector connector, ILogger logger, int capacity, int chunkSize, int maxBatchChanges, long maxBytesInFlight = 64L << 20, TimeSpan? commitLinger = null, TimeSpan? maxCommitDelay = null)
    {
        _commitLinger = commitLinger ?? TimeSpan.FromMilliseconds(2);
        _maxCommitDelay = maxCommitDelay ?? TimeSpan.FromMilliseconds(50);
        _maxBytesInFlight = maxBytesInFlight;
        Connector = connector;
        _logger = logger;
        _chunkSize = chunkSize;
        _maxBatchChanges = maxBatchChanges;
        _received = PipelineMetrics.ChangesReceived.WithLabels(connector.Name);
        _applied = PipelineMetrics.ChangesApplied.WithLabels(connector.Name);
        _batchDuration = PipelineMetrics.BatchDuration.WithLabels(connector.Name);
        _channel = Channel.CreateBounded<object>(new BoundedChannelOptions(Math.Max(4, capacity / HandOverBatch))
        {
            SingleReader = true,
            // The router writes, and a resync chunk may be handed over from another thread.
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public IOutboundConnector Connector { get; }

    public string Name => Connector.Name;


    /// <summary>Commit LSN of the last transaction handed to this connector.</summary>
    public NpgsqlLogSequenceNumber Delivered => new((ulong)Interlocked.Read(ref _delivered));

    /// <summary>Commit LSN of the last transaction durable at the target (the checkpoint).</summary>
    public NpgsqlLogSequenceNumber Committed => new((ulong)Interlocked.Read(ref _committed));

    /// <summary>True when everything handed over is durable at the target.</summary>
    public bool CaughtUp => Interlocked.Read(ref _delivered) <= Interlocked.Read(ref _committed);

    public long ChangesApplied { get; private set; }

    public long TransactionsSkipped { get; private set; }

    public DateTime LastCommitUtc => new(Interlocked.Read(ref _lastCommitTicks), DateTimeKind.Utc);

    /// <summary>Commit time of the oldest transaction handed over and not yet durable; null when caught up.</summary>
    public DateTime? OldestPendingCommitTimeUtc
    {
        get
        {
            var committed = Committed;
            while (_pending.TryPeek(out var head) && head.Lsn <= committed)
            {
                _pending.TryDequeue(out _);
            }

            return _pending.TryPeek(out var oldest) ? oldest.CommitTimeUtc : null;
        }
    }

    /// <summary>Commit time of the last transaction made durable (for lag in seconds).</summary>
    public DateTime LastCommittedTransactionTimeUtc { get; private set; }

    /// <summary>
    /// Hands a change over. Changes travel in small batches (one channel item per
    /// <see cref="HandOverBatch"/> changes or per transaction end), which keeps thread hand-offs
    /// rare. A batch waits while the changes in flight hold more than the byte budget, so wide
    /// rows (big TOASTed values) cannot fill memory the way a count-bounded channel would let them.
    /// Called by the router only (one thread).
    /// </summary>
    public ValueTask EnqueueAsync(ChangeEvent change, CancellationToken cancellationToken)
    {
        if (_backfill is { } backfill && change.Transaction.CommitLsn >= backfill.Position)
        {
            return InjectThenEnqueueAsync(backfill, change, cancellationToken);
        }

        if (!ReferenceEquals(change.Relation, _lastRelation))
        {
            _lastRelation = change.Relation;
            _relations[(change.Relation.Schema, change.Relation.Name)] = change.Relation;
        }

        _outgoing.Add(change);
        _outgoingBytes += SizeOf(change);
        return _outgoing.Count >= HandOverBatch ? HandOverAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    private const int HandOverBatch = 256;

    private volatile BackfillChunk? _backfill;

    // Resync chunks handed over and not yet committed, by their (unique) transaction object.
    private readonly ConcurrentDictionary<TransactionInfo, BackfillChunk> _backfills = new(ReferenceEqualityComparer.Instance);
    private readonly List<BackfillChunk> _batchBackfills = [];
    private int _backfillsPending;

    // The stream's own description of each table, so a resync chunk uses the same one: connectors
    // group a write by relation, and two descriptions of one table would be applied out of order.
    private readonly ConcurrentDictionary<(string Schema, string Name), RelationInfo> _relations = new();
    private RelationInfo? _lastRelation;
    private readonly SemaphoreSlim _backfillGate = new(1, 1);

    /// <summary>
    /// Schedules rows read from the hub (a resync chunk) to go to the connector exactly at
    /// <see cref="BackfillChunk.Position"/> in the stream: after every transaction that committed
    /// before it, before any that committed at or after it. The chunk was read under FOR SHARE
    /// locks, so any later change to its rows commits after the position and is applied after the
    /// chunk: a backfilled row never overwrites a newer streamed change.
    /// </summary>
    public void ScheduleBackfill(BackfillChunk chunk) => _backfill = chunk;

    /// <summary>
    /// When the stream has no transaction for this connector after the chunk's position, the
    /// router never triggers it; once the reader has passed the position, hand it over from here.
    /// </summary>
    public async Task InjectBackfillIfPassedAsync(NpgsqlLogSequenceNumber readerPosition, CancellationToken cancellationToken)
    {
        if (_backfill is { } backfill && readerPosition >= backfill.Position)
        {
            await InjectAsync(backfill, fromRouter: false, cancellationToken);
        }
    }

    private async ValueTask InjectThenEnqueueAsync(BackfillChunk backfill, ChangeEvent change, CancellationToken cancellationToken)
    {
        await InjectAsync(backfill, fromRouter: true, cancellationToken);
        await EnqueueAsync(change, cancellationToken);
    }

    private async Task InjectAsync(BackfillChunk backfill, bool fromRouter, CancellationToken cancellationToken)
    {
        await _backfillGate.WaitAsync(cancellationToken);
        try
        {
            if (!ReferenceEquals(_backfill, backfill))
            {
                return;
            }

            // From the router, what it holds belongs to transactions before the position: send it first.
            // From elsewhere the router holds nothing (the reader finished every transaction before the position).
            if (fromRouter)
            {
                await HandOverAsync(cancellationToken);
            }

            var changes = backfill.Changes;
            if (changes.Count > 0 && _relations.TryGetValue((changes[0].Relation.Schema, changes[0].Relation.Name), out var streamed) && streamed.SameShape(changes[0].Relation))
            {
                changes = changes.Select(c => c with { Relation = streamed }).ToList();
            }

            var transaction = backfill.Transaction;
            if (transaction.CommitLsn > Delivered)
            {
                Interlocked.Exchange(ref _delivered, (long)(ulong)transaction.CommitLsn);
            }

            _pending.Enqueue((transaction.CommitLsn, transaction.CommitTimeUtc));
            _backfills[transaction] = backfill;
            Interlocked.Increment(ref _backfillsPending);
            foreach (var part in changes.Chunk(HandOverBatch))
            {
                Interlocked.Add(ref _bytesInFlight, part.Sum(SizeOf));
                _received.Inc(part.Length);
                await _channel.Writer.WriteAsync(part, cancellationToken);
            }

            await _channel.Writer.WriteAsync(transaction, cancellationToken);
            _backfill = null;
            backfill.HandedOver.TrySetResult();
        }
        finally
        {
            _backfillGate.Release();
        }
    }

    private readonly List<ChangeEvent> _outgoing = new(HandOverBatch);
    private long _outgoingBytes;

    private async ValueTask HandOverAsync(CancellationToken cancellationToken)
    {
        if (_outgoing.Count == 0)
        {
            return;
        }

        var size = _outgoingBytes;
        while (Interlocked.Read(ref _bytesInFlight) + size > _maxBytesInFlight && Interlocked.Read(ref _bytesInFlight) > 0)
        {
            await _space.WaitAsync(TimeSpan.FromMilliseconds(50), cancellationToken);
        }

        Interlocked.Add(ref _bytesInFlight, size);
        _received.Inc(_outgoing.Count);
        var batch = _outgoing.ToArray();
        _outgoing.Clear();
        _outgoingBytes = 0;
        await _channel.Writer.WriteAsync(batch, cancellationToken);
    }

    /// <summary>Bytes of changes handed over and not yet written to the connector.</summary>
    public long BytesInFlight => Interlocked.Read(ref _bytesInFlight);

    private static long SizeOf(ChangeEvent change) => 96 + (change.New?.ByteSize ?? 0) + (change.Old?.ByteSize ?? 0);

    private void Release(long bytes)
    {
        Interlocked.Add(ref _bytesInFlight, -bytes);
        if (_space.CurrentCount == 0)
        {
            _space.Release();
        }
    }

    public async ValueTask EnqueueCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken)
    {
        await HandOverAsync(cancellationToken);
        Interlocked.Exchange(ref _delivered, (long)(ulong)transaction.CommitLsn);
        _pending.Enqueue((transaction.CommitLsn, transaction.CommitTimeUtc));
        await _channel.Writer.WriteAsync(transaction, cancellationToken);
    }

    public void Complete() => _channel.Writer.TryComplete();

    public async Task<NpgsqlLogSequenceNumber> OpenAsync(CancellationToken cancellationToken)
    {
        var checkpoint = await Connector.ReadCheckpointAsync(cancellationToken);
        Interlocked.Exchange(ref _committed, (long)(ulong)checkpoint);
        Interlocked.Exchange(ref _delivered, (long)(ulong)checkpoint);
        return checkpoint;
    }

    /// <summary>Runs until the channel completes (shutdown) or the connector fails (the pipeline restarts).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var checkpoint = Committed;
        var chunk = new List<ChangeEvent>(_chunkSize);
        TransactionInfo? lastComplete = null;
        var inTransaction = false;
        var batchChanges = 0;
        long chunkBytes = 0;
        var reader = _channel.Reader;
        try
        {
            long batchStarted = 0;
            while (true)
            {
                if (!reader.TryRead(out var item))
                {
                    if (lastComplete is not null && !inTransaction)
                    {
                        // At a transaction boundary with nothing queued. In a backlog the next
                        // transaction is a moment away, so linger briefly and keep batching; commit
                        // when none comes or the batch has waited long enough (latency bound).
                        if (Stopwatch.GetElapsedTime(batchStarted) >= _maxCommitDelay || !await WaitForMoreAsync(reader, _commitLinger, cancellationToken))
                        {
                            checkpoint = await CommitAsync(chunk, lastComplete, batchChanges, cancellationToken);
                            Release(chunkBytes);
                            chunkBytes = 0;
                            lastComplete = null;
                            batchChanges = 0;
                        }

                        continue;
                    }

                    if (!await reader.WaitToReadAsync(cancellationToken))
                    {
                        break;
                    }

                    continue;
                }

                if (item is ChangeEvent[] batch)
                {
                    foreach (var change in batch)
                    {
                        // A resync chunk is not WAL: its LSN only says where in the stream it belongs.
                        if (change.Transaction.CommitLsn <= checkpoint && !_backfills.ContainsKey(change.Transaction))
                        {
                            Release(SizeOf(change));
                            continue;
                        }

                        if (batchChanges == 0)
                        {
                            batchStarted = Stopwatch.GetTimestamp();
                        }

                        inTransaction = true;
                        chunk.Add(change);
                        chunkBytes += SizeOf(change);
                        batchChanges++;
                        // Hand the chunk over when it is long, or heavy enough that the reader would
                        // otherwise wait on the byte budget for a chunk that never fills.
                        if (chunk.Count >= _chunkSize || chunkBytes >= _maxBytesInFlight / 4)
                        {
                            await Connector.WriteAsync(chunk, cancellationToken);
                            chunk.Clear();
                            Release(chunkBytes);
                            chunkBytes = 0;
                        }
                    }

                    continue;
                }

                var transaction = (TransactionInfo)item;
                if (transaction.CommitLsn <= checkpoint && !_backfills.ContainsKey(transaction))
                {
                    TransactionsSkipped++;
                    continue;
                }

                inTransaction = false;
                lastComplete = transaction;
                if (Volatile.Read(ref _backfillsPending) > 0 && _backfills.TryGetValue(transaction, out var backfill))
                {
                    _batchBackfills.Add(backfill);
                }

                if (batchChanges >= _maxBatchChanges || Stopwatch.GetElapsedTime(batchStarted) >= _maxCommitDelay)
                {
                    checkpoint = await CommitAsync(chunk, transaction, batchChanges, cancellationToken);
                    Release(chunkBytes);
                    chunkBytes = 0;
                    lastComplete = null;
                    batchChanges = 0;
                }
            }

            // Shutdown: keep what is complete, drop a transaction cut in the middle (it is re-sent).
            if (lastComplete is not null && !inTransaction)
            {
                await CommitAsync(chunk, lastComplete, batchChanges, CancellationToken.None);
            }
            else
            {
                await Connector.AbortAsync(CancellationToken.None);
            }
        }
        catch
        {
            await Connector.AbortAsync(CancellationToken.None);
            throw;
        }
    }

    private static async Task<bool> WaitForMoreAsync(ChannelReader<object> reader, TimeSpan linger, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(linger);
        try
        {
            return await reader.WaitToReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task<NpgsqlLogSequenceNumber> CommitAsync(List<ChangeEvent> chunk, TransactionInfo transaction, int batchChanges, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        if (chunk.Count > 0)
        {
            await Connector.WriteAsync(chunk, cancellationToken);
            chunk.Clear();
        }

        // A resync chunk's LSN may lie below what is already applied; the checkpoint never goes back.
        var checkpoint = transaction.CommitLsn > Committed ? transaction.CommitLsn : Committed;
        await Connector.CommitAsync(checkpoint, cancellationToken);
        Interlocked.Exchange(ref _committed, (long)(ulong)checkpoint);
        foreach (var backfill in _batchBackfills)
        {
            if (_backfills.TryRemove(backfill.Transaction, out _))
            {
                Interlocked.Decrement(ref _backfillsPending);
            }

            backfill.Applied.TrySetResult();
        }

        _batchBackfills.Clear();
        while (_pending.TryPeek(out var head) && head.Lsn <= checkpoint)
        {
            _pending.TryDequeue(out _);
        }

        Interlocked.Exchange(ref _lastCommitTicks, DateTime.UtcNow.Ticks);
        LastCommittedTransactionTimeUtc = transaction.CommitTimeUtc;
        ChangesApplied += batchChanges;
        _applied.Inc(batchChanges);
        _batchDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        _logger.LogDebug("Connector {Connector} committed {Count} changes up to {Lsn}", Name, batchChanges, checkpoint);
        return checkpoint;
    }
}

/// <summary>
/// Rows read from the hub for a resync, as full-row updates, to be applied at <see cref="Position"/>
/// in the stream; their transaction's commit LSN is just below it, so the connector's checkpoint
/// after the chunk says "everything before the position is applied".
/// </summary>
internal sealed class BackfillChunk(IReadOnlyList<ChangeEvent> changes, TransactionInfo transaction, NpgsqlLogSequenceNumber position)
{
    public IReadOnlyList<ChangeEvent> Changes => changes;

    public TransactionInfo Transaction => transaction;

    public NpgsqlLogSequenceNumber Position => position;

    public TaskCompletionSource HandedOver { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the connector committed the chunk (made it durable at the target).</summary>
    public TaskCompletionSource Applied { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
