using CdcSync.Hub;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Hub;

/// <summary>
/// The server streams a commit as soon as its WAL record is flushed, a moment before other sessions
/// can see it; an outbound precondition that read the hub in that moment took the change for one the
/// hub had already moved on from, and the edit was never sent. The gateway waits for visibility first.
/// </summary>
public sealed class HubVisibilityTests
{
    [Fact]
    public async Task AwaitVisible_TransactionStillOpen_WaitsUntilItCommits()
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(nameof(AwaitVisible_TransactionStillOpen_WaitsUntilItCommits));
        await using var source = NpgsqlDataSource.Create(connectionString);
        var gateway = new HubGateway(source);

        // A transaction that holds an xid and has not committed: not visible to any other snapshot.
        await using var writer = await source.OpenConnectionAsync();
        await using var tx = await writer.BeginTransactionAsync();
        await using var xidCommand = new NpgsqlCommand("SELECT (pg_current_xact_id()::text::bigint & 4294967295)", writer, tx);
        var xid = (uint)(long)(await xidCommand.ExecuteScalarAsync())!;

        // A committed one (any earlier transaction) and transactions that are no xid are visible at once.
        await using var other = await source.OpenConnectionAsync();
        await using var committed = new NpgsqlCommand("SELECT (pg_current_xact_id()::text::bigint & 4294967295)", other);
        var committedXid = (uint)(long)(await committed.ExecuteScalarAsync())!;
        await gateway.AwaitVisibleAsync("test", [committedXid, 0u], CancellationToken.None);

        var before = gateway.RoundTrips;
        var waiting = gateway.AwaitVisibleAsync("test", [committedXid, xid], CancellationToken.None);
        // Still waiting after it has looked several times: the open transaction keeps it waiting.
        await CdcSync.Tests.Pipeline.TestPipeline.WaitUntilAsync(() => Task.FromResult(gateway.RoundTrips - before >= 3), TimeSpan.FromSeconds(30));
        Assert.False(waiting.IsCompleted);

        await tx.CommitAsync();
        await waiting.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
