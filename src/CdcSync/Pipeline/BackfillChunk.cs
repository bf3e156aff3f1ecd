using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

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
