using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Routing;
using Microsoft.Extensions.Logging;
using NpgsqlTypes;
using Prometheus;

namespace CdcSync.Pipeline;

/// <summary>
/// Feeds one connector from a bounded channel. Changes are handed over in chunks as they come, so
/// a huge transaction never sits in memory; the connector commits only at a transaction boundary,
/// when the channel has run dry or the batch is big enough, with that transaction's commit LSN as
/// its checkpoint. A full channel blocks the router, which blocks the reader: a slow connector
/// slows the stream instead of growing memory. Resync chunks go through here too, handed over at
/// the position <see cref="Resync"/> says they are due.
/// </summary>
internal sealed class ConnectorWriter : IRouteTarget
{
    private readonly Channel<object> _channel;
    private readonly ILogger _logger;
    private readonly int _chunkSize;
    private readonly int _maxBatchChanges;
    private long _delivered;
    private long _committed;
    private long _lastCommitTicks;
    private readonly TimeProvider _time;
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

    public ConnectorWriter(IOutboundConnector connector, ILogger logger, int capacity, int chunkSize, int maxBatchChanges, long maxBytesInFlight = 64L << 20, TimeSpan? commitLinger = null, TimeSpan? maxCommitDelay = null, TimeProvider? timeProvider = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _commitLinger = commitLinger ?? TimeSpan.Zero;
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

    /// <summary>Where a resync schedules its chunks for this connector (see <see cref="ResyncHandOver"/>).</summary>
    public ResyncHandOver Resync { get; } = new();

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
    /// Takes a change from the router. Changes and transaction ends travel in batches: one channel
    /// item holds up to <see cref="HandOverBatch"/> of them, many small transactions at a time,
    /// which keeps thread hand-offs rare. What the router holds goes over when the batch is full,
    /// when a transaction end has waited <see cref="HandOverDelay"/>, and whenever the reader waits
    /// for the server (<see cref="FlushAsync"/>), so the last transaction of a burst is never held
    /// back. A batch waits while the changes in flight hold more than the byte budget, so wide rows
    /// (big TOASTed values) cannot fill memory the way a count-bounded channel would let them.
    /// Called by the router only (one thread).
    /// </summary>
    public ValueTask EnqueueAsync(ChangeEvent change, CancellationToken cancellationToken)
    {
        if (Resync.DueAt(change.Transaction.CommitLsn) is { } chunk)
        {
            return HandOverResyncThenEnqueueAsync(chunk, change, cancellationToken);
        }

        Resync.NoteStreamRelation(change.Relation);
        _held.Add(change);
        _heldChanges++;
        _heldBytes += SizeOf(change);
        return _held.Count >= HandOverBatch || _heldBytes >= _maxBytesInFlight / 4 ? HandOverAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary>Takes the end of a transaction some of whose changes this connector received (router's thread).</summary>
    public ValueTask EnqueueCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _delivered, (long)(ulong)transaction.CommitLsn);
        _pending.Enqueue((transaction.CommitLsn, transaction.CommitTimeUtc));
        if (_heldSince == 0)
        {
            _heldSince = _time.GetTimestamp();
        }

        _held.Add(transaction);
        return _held.Count >= HandOverBatch ? HandOverAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary>
    /// The stream has passed <paramref name="position"/> (a commit, whichever connectors it was for):
    /// a resync chunk due there goes over now, after what the router holds, and transaction ends held
    /// longer than <see cref="HandOverDelay"/> go over (router's thread).
    /// </summary>
    public ValueTask PassedAsync(NpgsqlLogSequenceNumber position, CancellationToken cancellationToken)
    {
        if (Resync.DueAt(position) is { } chunk)
        {
            return new ValueTask(Resync.HandOverAsync(chunk, HandOverAsync, SendResyncChunkAsync, cancellationToken));
        }

        return _heldSince != 0 && _time.GetElapsedTime(_heldSince) >= HandOverDelay ? HandOverAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary>The reader is waiting for the server: everything held goes over now (router's thread).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken) => HandOverAsync(cancellationToken);

    /// <summary>How often a writer holding part of a transaction checks whether the router waits on the byte budget.</summary>
    private static readonly TimeSpan StarvedCheck = TimeSpan.FromMilliseconds(50);

    /// <summary>Most changes and transaction ends in one channel item.</summary>
    private const int HandOverBatch = 256;

    /// <summary>
    /// How long a transaction end may wait in the router for more to share its channel item while
    /// the reader is busy with the stream (an idle reader hands it over at once).
    /// </summary>
    private static readonly TimeSpan HandOverDelay = TimeSpan.FromMilliseconds(1);

    private async ValueTask HandOverResyncThenEnqueueAsync(BackfillChunk chunk, ChangeEvent change, CancellationToken cancellationToken)
    {
        // What the router holds belongs to transactions before the position: it goes first.
        await Resync.HandOverAsync(chunk, HandOverAsync, SendResyncChunkAsync, cancellationToken);
        await EnqueueAsync(change, cancellationToken);
    }

    /// <summary>Puts a resync chunk into the channel as one transaction of its own.</summary>
    private async Task SendResyncChunkAsync(IReadOnlyList<ChangeEvent> changes, TransactionInfo transaction, CancellationToken cancellationToken)
    {
        if (transaction.CommitLsn > Delivered)
        {
            Interlocked.Exchange(ref _delivered, (long)(ulong)transaction.CommitLsn);
        }

        _pending.Enqueue((transaction.CommitLsn, transaction.CommitTimeUtc));
        // The chunk's changes, then its end, in channel items like the router's.
        foreach (var item in changes.Append<object>(transaction).Chunk(HandOverBatch))
        {
            var itemChanges = item.OfType<ChangeEvent>().ToList();
            Interlocked.Add(ref _bytesInFlight, itemChanges.Sum(SizeOf));
            _received.Inc(itemChanges.Count);
            await _channel.Writer.WriteAsync(item, cancellationToken);
        }
    }

    // The router's side (its thread only): changes and transaction ends not yet handed over.
    private readonly List<object> _held = new(HandOverBatch);
    private int _heldChanges;
    private long _heldBytes;

    // When the first transaction end now held was taken (0: none held).
    private long _heldSince;

    // The router has waited on the byte budget for a while (see HandOverAsync).
    private bool _starved;

    // What the router held when the stream ended, for the writer to take after the channel's last item.
    private object[]? _tail;

    private async ValueTask HandOverAsync(CancellationToken cancellationToken)
    {
        if (_held.Count == 0)
        {
            return;
        }

        var size = _heldBytes;
        while (Interlocked.Read(ref _bytesInFlight) + size > _maxBytesInFlight && Interlocked.Read(ref _bytesInFlight) > 0)
        {
            if (!await _space.WaitAsync(TimeSpan.FromMilliseconds(50), cancellationToken))
            {
                // The writer may be sitting on part of a transaction, waiting for its rest: ask it to
                // write what it holds, which frees the budget.
                Volatile.Write(ref _starved, true);
            }
        }

        Volatile.Write(ref _starved, false);

        var batch = TakeHeld();
        await _channel.Writer.WriteAsync(batch, cancellationToken);
        if (LatencyTrace.Enabled)
        {
            LatencyTrace.HandedOver(Array.FindLast(batch, e => e is TransactionInfo) is TransactionInfo last ? (ulong)last.CommitLsn : 0, batch.Length);
        }
    }

    private object[] TakeHeld()
    {
        Interlocked.Add(ref _bytesInFlight, _heldBytes);
        _received.Inc(_heldChanges);
        var batch = _held.ToArray();
        _held.Clear();
        _heldChanges = 0;
        _heldBytes = 0;
        _heldSince = 0;
        return batch;
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

    /// <summary>
    /// The stream has ended (the reader stopped; no router call follows): what the router still
    /// holds is taken by the writer after the channel's last item, and the writer then finishes.
    /// </summary>
    public void Complete()
    {
        if (_held.Count > 0)
        {
            Volatile.Write(ref _tail, TakeHeld());
        }

        _channel.Writer.TryComplete();
    }

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
        long batchStarted = 0;

        // One channel item: changes and transaction ends in stream order.
        async Task TakeAsync(object[] entries)
        {
            if (LatencyTrace.Enabled)
            {
                LatencyTrace.Taken(Array.FindLast(entries, e => e is TransactionInfo) is TransactionInfo last ? (ulong)last.CommitLsn : 0, entries.Length);
            }

            foreach (var entry in entries)
            {
                if (entry is ChangeEvent change)
                {
                    // A resync chunk is not WAL: its LSN only says where in the stream it belongs.
                    if (change.Transaction.CommitLsn <= checkpoint && !Resync.IsHandedOver(change.Transaction))
                    {
                        _logger.LogDebug("Connector {Connector} skips a change of {Table} in transaction {Lsn}: at or below its checkpoint {Checkpoint}", Name, change.Relation.Name, change.Transaction.CommitLsn, checkpoint);
                        Release(SizeOf(change));
                        continue;
                    }

                    if (batchChanges == 0)
                    {
                        batchStarted = _time.GetTimestamp();
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

                    continue;
                }

                var transaction = (TransactionInfo)entry;
                if (transaction.CommitLsn <= checkpoint && !Resync.IsHandedOver(transaction))
                {
                    TransactionsSkipped++;
                    continue;
                }

                inTransaction = false;
                lastComplete = transaction;
                Resync.NoteInBatch(transaction);

                if (batchChanges >= _maxBatchChanges || _time.GetElapsedTime(batchStarted) >= _maxCommitDelay)
                {
                    checkpoint = await CommitAsync(chunk, transaction, batchChanges, cancellationToken);
                    Release(chunkBytes);
                    chunkBytes = 0;
                    lastComplete = null;
                    batchChanges = 0;
                }
            }
        }

        try
        {
            while (true)
            {
                if (!reader.TryRead(out var item))
                {
                    if (lastComplete is not null && !inTransaction)
                    {
                        // At a transaction boundary with nothing queued. In a backlog the next
                        // transaction is a moment away, so linger briefly and keep batching; commit
                        // when none comes or the batch has waited long enough (latency bound).
                        if (_time.GetElapsedTime(batchStarted) >= _maxCommitDelay || _commitLinger <= TimeSpan.Zero || !await WaitForMoreAsync(reader, _commitLinger, cancellationToken))
                        {
                            checkpoint = await CommitAsync(chunk, lastComplete, batchChanges, cancellationToken);
                            Release(chunkBytes);
                            chunkBytes = 0;
                            lastComplete = null;
                            batchChanges = 0;
                        }

                        continue;
                    }

                    if (inTransaction && chunk.Count > 0 && !reader.Completion.IsCompleted)
                    {
                        // Part of a transaction whose rest has not come: if the router waits on the
                        // byte budget for room to send it, write what is here to free the budget.
                        if (!await WaitForMoreAsync(reader, StarvedCheck, cancellationToken) && Volatile.Read(ref _starved))
                        {
                            await Connector.WriteAsync(chunk, cancellationToken);
                            chunk.Clear();
                            Release(chunkBytes);
                            chunkBytes = 0;
                        }

                        continue;
                    }

                    if (!await reader.WaitToReadAsync(cancellationToken))
                    {
                        // The stream ended: what the router still held comes last.
                        if (Interlocked.Exchange(ref _tail, null) is { } tail)
                        {
                            await TakeAsync(tail);
                            continue;
                        }

                        break;
                    }

                    continue;
                }

                await TakeAsync((object[])item);
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

    private async Task<bool> WaitForMoreAsync(ChannelReader<object> reader, TimeSpan linger, CancellationToken cancellationToken)
    {
        // The source's own timer on the writer's clock: it stops safely when the source is disposed
        // (a timer of our own calling Cancel could fire on a source already disposed).
        using var lingerTimer = new CancellationTokenSource(linger, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lingerTimer.Token);
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
        var started = _time.GetTimestamp();
        var traceStarted = LatencyTrace.Enabled ? LatencyTrace.Now() : 0;
        if (chunk.Count > 0)
        {
            await Connector.WriteAsync(chunk, cancellationToken);
            chunk.Clear();
        }

        var traceWritten = LatencyTrace.Enabled ? LatencyTrace.Now() : 0;

        // A resync chunk's LSN may lie below what is already applied; the checkpoint never goes back.
        var checkpoint = transaction.CommitLsn > Committed ? transaction.CommitLsn : Committed;
        await Connector.CommitAsync(checkpoint, cancellationToken);
        Interlocked.Exchange(ref _committed, (long)(ulong)checkpoint);
        if (LatencyTrace.Enabled)
        {
            LatencyTrace.Committed((ulong)transaction.CommitLsn, traceStarted, traceWritten, batchChanges);
        }

        Resync.BatchCommitted();
        while (_pending.TryPeek(out var head) && head.Lsn <= checkpoint)
        {
            _pending.TryDequeue(out _);
        }

        Interlocked.Exchange(ref _lastCommitTicks, _time.GetUtcNow().UtcTicks);
        LastCommittedTransactionTimeUtc = transaction.CommitTimeUtc;
        ChangesApplied += batchChanges;
        _applied.Inc(batchChanges);
        _batchDuration.Observe(_time.GetElapsedTime(started).TotalSeconds);
        _logger.LogDebug("Connector {Connector} committed {Count} changes up to {Lsn}", Name, batchChanges, checkpoint);
        return checkpoint;
    }
}
