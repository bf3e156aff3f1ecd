using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Connectors;

/// <summary>
/// Writes the hub's routed changes to one system. The pipeline calls, for each connector, in order:
/// <see cref="ReadCheckpointAsync"/> once, then any number of <see cref="WriteAsync"/> chunks and a
/// <see cref="CommitAsync"/> at a transaction boundary, repeatedly. Chunks may end in the middle of
/// a large transaction; <see cref="CommitAsync"/> is only called after its last change.
/// Implementations let transient exceptions propagate (the pipeline retries the whole unit from the
/// last checkpoint); records the system permanently rejects go to dead letters instead.
/// </summary>
public interface IOutboundConnector : IAsyncDisposable
{
    string Name { get; }

    /// <summary>The commit LSN of the last transaction fully applied (durable), or 0/0 when none.</summary>
    Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken);

    /// <summary>Applies (or stages) changes, in commit order, all with commit LSN above the checkpoint.</summary>
    Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken);

    /// <summary>Makes everything written so far durable together with the checkpoint.</summary>
    Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken);

    /// <summary>Drops whatever was written since the last commit (after a failure, before a retry).</summary>
    Task AbortAsync(CancellationToken cancellationToken);
}
