using CdcSync.Connectors;
using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Tests.Conflicts;

/// <summary>Runs an action once, inside an outbound connector's write, before the first batch holding an update (or another <paramref name="kind"/>) of a table is sent: an order of events fixed without timing.</summary>
internal sealed class EditBeforeWrite(string table, ChangeKind kind = ChangeKind.Update)
{
    private Func<Task>? _action;

    public bool Fired { get; private set; }

    public void Arm(Func<Task> action) => _action = action;

    public IOutboundConnector Wrap(IOutboundConnector inner) => new Wrapped(inner, this);

    private async Task BeforeAsync(IReadOnlyList<ChangeEvent> changes)
    {
        if (_action is { } action && changes.Any(c => c.Relation.Name == table && c.Kind == kind))
        {
            _action = null;
            await action();
            Fired = true;
        }
    }

    private sealed class Wrapped(IOutboundConnector inner, EditBeforeWrite gate) : IOutboundConnector
    {
        public string Name => inner.Name;

        public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) => inner.ReadCheckpointAsync(cancellationToken);

        public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
        {
            await gate.BeforeAsync(changes);
            await inner.WriteAsync(changes, cancellationToken);
        }

        public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) => inner.CommitAsync(checkpoint, cancellationToken);

        public Task AbortAsync(CancellationToken cancellationToken) => inner.AbortAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
