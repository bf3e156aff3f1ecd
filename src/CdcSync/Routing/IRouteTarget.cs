using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Routing;

/// <summary>What the router hands changes to: a connector's writer, known here only by its name and its queue.</summary>
internal interface IRouteTarget
{
    /// <summary>The connector's name, as its replication origin carries it.</summary>
    string Name { get; }

    ValueTask EnqueueAsync(ChangeEvent change, CancellationToken cancellationToken);

    ValueTask EnqueueCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken);

    /// <summary>The stream has passed <paramref name="position"/> (a commit, for this connector or not).</summary>
    ValueTask PassedAsync(NpgsqlLogSequenceNumber position, CancellationToken cancellationToken);

    /// <summary>The reader is waiting for the server: hand over whatever is held.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);
}
