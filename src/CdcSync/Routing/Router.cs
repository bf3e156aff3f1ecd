using CdcSync.Replication;

namespace CdcSync.Routing;

/// <summary>
/// Sends each change to the connectors its table is routed to, except the connector whose
/// replication origin the transaction carries: that is where the change came from, and sending
/// it back is how sync loops start.
/// </summary>
internal sealed class Router : IChangeSink
{
    private readonly Dictionary<TableName, IRouteTarget[]> _routes;
    private readonly IRouteTarget[] _targets;
    private readonly Dictionary<RelationInfo, IRouteTarget[]> _byRelation = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<IRouteTarget> _touched = [];
    private TransactionInfo? _current;

    private readonly string _database;

    /// <param name="database">The hub database whose WAL this router sees: its connectors' origins carry its name.</param>
    public Router(IReadOnlyDictionary<TableName, IRouteTarget[]> routes, string database)
    {
        _database = database;
        _routes = new Dictionary<TableName, IRouteTarget[]>(routes);
        _targets = routes.Values.SelectMany(t => t).Distinct().ToArray();
    }

    public long ChangesRouted { get; private set; }

    public long ChangesSuppressedByOrigin { get; private set; }

    public async ValueTask OnChangeAsync(ChangeEvent change, CancellationToken cancellationToken)
    {
        if (!ReferenceEquals(_current, change.Transaction))
        {
            _current = change.Transaction;
            _touched.Clear();
        }

        foreach (var writer in TargetsOf(change.Relation))
        {
            if (Hub.ReplicationOrigins.IsOwn(change.Transaction.Origin, _database, writer.Name))
            {
                ChangesSuppressedByOrigin++;
                continue;
            }

            _touched.Add(writer);
            ChangesRouted++;
            await writer.EnqueueAsync(change, cancellationToken);
        }
    }

    public async ValueTask OnCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken)
    {
        if (ReferenceEquals(_current, transaction))
        {
            foreach (var writer in _touched)
            {
                await writer.EnqueueCommitAsync(transaction, cancellationToken);
            }
        }

        _touched.Clear();
        _current = null;
        foreach (var target in _targets)
        {
            await target.PassedAsync(transaction.CommitLsn, cancellationToken);
        }
    }

    public async ValueTask OnIdleAsync(CancellationToken cancellationToken)
    {
        foreach (var target in _targets)
        {
            await target.FlushAsync(cancellationToken);
        }
    }

    private IRouteTarget[] TargetsOf(RelationInfo relation)
    {
        if (!_byRelation.TryGetValue(relation, out var writers))
        {
            writers = _routes.TryGetValue(new TableName(relation.Schema, relation.Name), out var w) ? w : [];
            _byRelation[relation] = writers;
        }

        return writers;
    }
}
