using System.Collections.Concurrent;
using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

/// <summary>
/// The resync side of one <see cref="ConnectorWriter"/>: holds the chunk a resync scheduled, says
/// when it is due, hands it over exactly once, and tracks it until the connector has committed it.
/// The writer asks it, at each change, whether a chunk is due before that change's transaction, and
/// it answers from the chunk's position alone; the writer stays about batching and committing.
/// <para>
/// Ordering: a chunk goes to the connector exactly at <see cref="BackfillChunk.Position"/> in the
/// stream: after every transaction that committed before it, before any that committed at or after
/// it. The chunk was read under FOR SHARE locks, so any later change to its rows commits after the
/// position and is applied after the chunk: a backfilled row never overwrites a newer streamed change.
/// </para>
/// </summary>
internal sealed class ResyncHandOver
{
    private volatile BackfillChunk? _scheduled;

    // The router's thread and the resync's thread may both find the chunk due; one of them hands it over.
    private readonly SemaphoreSlim _gate = new(1, 1);

    // Chunks handed over and not yet committed, by their (unique) transaction object: a chunk's LSN
    // only says where in the stream it belongs, so the writer must not take it for a replayed
    // transaction at or below its checkpoint.
    private readonly ConcurrentDictionary<TransactionInfo, BackfillChunk> _handedOver = new(ReferenceEqualityComparer.Instance);
    private int _handedOverCount;

    // Chunks whose end the writer has put in the batch it is building (the writer's thread only).
    private readonly List<BackfillChunk> _inBatch = [];

    // The stream's own description of each table, so a chunk uses the same one: connectors group a
    // write by relation, and two descriptions of one table would be applied out of order.
    private readonly ConcurrentDictionary<(string Schema, string Name), RelationInfo> _relations = new();
    private RelationInfo? _lastRelation;

    /// <summary>
    /// Schedules rows read from the hub (a resync chunk) to go to the connector exactly at
    /// <see cref="BackfillChunk.Position"/> in the stream. Called while the chunk's rows are still
    /// locked, so every change to them reaches the writer after this.
    /// </summary>
    public void Schedule(BackfillChunk chunk) => _scheduled = chunk;

    /// <summary>
    /// The scheduled chunk when the stream has reached its position (a transaction committing at
    /// <paramref name="position"/> or later, or a reader past it); null when none is due. Read on
    /// every change, so it costs one volatile read when no resync runs.
    /// </summary>
    public BackfillChunk? DueAt(NpgsqlLogSequenceNumber position) =>
        _scheduled is { } chunk && position >= chunk.Position ? chunk : null;

    /// <summary>Remembers how the stream describes a table (router's thread only), for the chunks that follow.</summary>
    public void NoteStreamRelation(RelationInfo relation)
    {
        if (!ReferenceEquals(relation, _lastRelation))
        {
            // Transactions alternate between a few tables: a lock-free read first, a write only for
            // a description not yet recorded.
            _lastRelation = relation;
            var key = (relation.Schema, relation.Name);
            if (!_relations.TryGetValue(key, out var known) || !ReferenceEquals(known, relation))
            {
                _relations[key] = relation;
            }
        }
    }

    /// <summary>
    /// Hands <paramref name="chunk"/> over if it is still the scheduled one (else another thread
    /// already did): first <paramref name="flushHeld"/> (what the router holds belongs to
    /// transactions before the position), then <paramref name="send"/> with the chunk's changes in
    /// the stream's description of the table. The chunk is tracked as handed over before its first
    /// change can reach the writer's loop.
    /// </summary>
    public async Task HandOverAsync(
        BackfillChunk chunk,
        Func<CancellationToken, ValueTask>? flushHeld,
        Func<IReadOnlyList<ChangeEvent>, TransactionInfo, CancellationToken, Task> send,
        CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!ReferenceEquals(_scheduled, chunk))
            {
                return;
            }

            if (flushHeld is not null)
            {
                await flushHeld(cancellationToken);
            }

            var changes = chunk.Changes;
            if (changes.Count > 0 && _relations.TryGetValue((changes[0].Relation.Schema, changes[0].Relation.Name), out var streamed) && streamed.SameShape(changes[0].Relation))
            {
                changes = changes.Select(c => c with { Relation = streamed }).ToList();
            }

            _handedOver[chunk.Transaction] = chunk;
            Interlocked.Increment(ref _handedOverCount);
            await send(changes, chunk.Transaction, cancellationToken);
            _scheduled = null;
            chunk.HandedOver.TrySetResult();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Whether <paramref name="transaction"/> is a chunk handed over and not yet committed: such a
    /// transaction is applied even when its LSN is at or below the writer's checkpoint.
    /// </summary>
    public bool IsHandedOver(TransactionInfo transaction) => _handedOver.ContainsKey(transaction);

    /// <summary>
    /// The writer put the end of <paramref name="transaction"/> into the batch it is building (its
    /// thread only); if that is a chunk, the chunk counts as applied once the batch commits.
    /// </summary>
    public void NoteInBatch(TransactionInfo transaction)
    {
        if (Volatile.Read(ref _handedOverCount) > 0 && _handedOver.TryGetValue(transaction, out var chunk))
        {
            _inBatch.Add(chunk);
        }
    }

    /// <summary>
    /// The writer's batch is durable at the target (its thread only): the chunks in it are applied,
    /// which lets the resync store its progress and read the next chunk.
    /// </summary>
    public void BatchCommitted()
    {
        foreach (var chunk in _inBatch)
        {
            if (_handedOver.TryRemove(chunk.Transaction, out _))
            {
                Interlocked.Decrement(ref _handedOverCount);
            }

            chunk.Applied.TrySetResult();
        }

        _inBatch.Clear();
    }
}
