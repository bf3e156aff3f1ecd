using CdcSync.Connectors;
using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Tests.Pipeline;

/// <summary>
/// An outbound connector that keeps, in order, every call the writer makes to it, so a test can
/// check batching and checkpoints without a target system. Not a stand-in for PostgreSQL: the
/// PostgreSQL connector has its own tests against a real server.
/// </summary>
internal sealed class RecordingConnector(string name, NpgsqlLogSequenceNumber checkpoint = default) : IOutboundConnector
{
    private readonly Lock _gate = new();
    private readonly List<string> _calls = [];
    private readonly List<ChangeEvent> _written = [];
    private int _writes;
    private int _commits;

    public string Name { get; } = name;

    /// <summary>The write call (1-based) that throws, standing in for a target that fails mid-batch.</summary>
    public int? FailOnWrite { get; init; }

    /// <summary>The commit call (1-based) that throws.</summary>
    public int? FailOnCommit { get; init; }

    /// <summary>
    /// Every call as text: <c>write 0/100/0 0/100/1</c> (the changes' idempotency keys, commit LSN /
    /// position), <c>commit 0/100</c>, <c>abort</c>.
    /// </summary>
    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>Writes and commits only: a clean stop ends in an abort that drops nothing, which tests of batching leave out.</summary>
    public IReadOnlyList<string> WritesAndCommits => Calls.Where(c => c != "abort").ToList();

    /// <summary>Every change handed to <see cref="WriteAsync"/>, in order.</summary>
    public IReadOnlyList<ChangeEvent> Written
    {
        get
        {
            lock (_gate)
            {
                return [.. _written];
            }
        }
    }

    public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) => Task.FromResult(checkpoint);

    public Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (++_writes == FailOnWrite)
            {
                throw new InvalidOperationException($"write {_writes} failed on purpose");
            }

            // The writer reuses its list after the call: keep a copy.
            _written.AddRange(changes);
            _calls.Add("write " + string.Join(" ", changes.Select(c => c.IdempotencyKey)));
        }

        return Task.CompletedTask;
    }

    public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (++_commits == FailOnCommit)
            {
                throw new InvalidOperationException($"commit {_commits} failed on purpose");
            }

            _calls.Add($"commit {checkpoint}");
        }

        return Task.CompletedTask;
    }

    public Task AbortAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _calls.Add("abort");
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
