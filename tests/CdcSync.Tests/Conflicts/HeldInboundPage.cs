using CdcSync.Inbound;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// Holds the first inbound page that carries a matching record between its read and its apply: the
/// page was read from the system at one moment and reaches the hub later, after whatever the test
/// does meanwhile (a write of ours landing in the system). An order of events fixed without timing.
/// </summary>
internal sealed class HeldInboundPage
{
    private readonly TaskCompletionSource _read = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Func<InboundRecord, bool>? _match;

    /// <summary>Completes once a matching page has been read (and is being held).</summary>
    public Task Read => _read.Task;

    /// <summary>The records of the held page, once read.</summary>
    public IReadOnlyList<InboundRecord> Records { get; private set; } = [];

    public void Arm(Func<InboundRecord, bool> match) => Volatile.Write(ref _match, match);

    /// <summary>Lets the held page go on to the hub.</summary>
    public void Release() => _release.TrySetResult();

    public IInboundConnector Wrap(IInboundConnector inner) => new Wrapped(inner, this);

    private async Task<InboundPage> AfterReadAsync(InboundPage page, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _match) is { } match && page.Records.Any(match) && Interlocked.Exchange(ref _match, null) is not null)
        {
            Records = page.Records;
            _read.TrySetResult();
            await _release.Task.WaitAsync(cancellationToken);
        }

        return page;
    }

    private sealed class Wrapped(IInboundConnector inner, HeldInboundPage hold) : IInboundConnector, IDisposable
    {
        public string Name => inner.Name;

        public InboundOptions Options => inner.Options;

        public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken) =>
            await hold.AfterReadAsync(await inner.ReadChangesAsync(cursor, cancellationToken), cancellationToken);

        public void Dispose() => (inner as IDisposable)?.Dispose();
    }
}
