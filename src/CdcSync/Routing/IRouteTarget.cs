using CdcSync.Replication;

namespace CdcSync.Routing;

/// <summary>What the router hands changes to: a connector's writer, known here only by its name and its queue.</summary>
internal interface IRouteTarget
{
    /// <summary>The connector's name, as its replication origin carries it.</summary>
    string Name { get; }

    ValueTask EnqueueAsync(ChangeEvent change, CancellationToken cancellationToken);

    ValueTask EnqueueCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken);
}
