using CdcSync.Inbound;
using CdcSync.Tests.Conflicts;
using Npgsql;

namespace CdcSync.Tests.Inbound;

public sealed class StagingWriterTests
{
    /// <summary>
    /// Two inbound sides write linked rows in different orders (a Salesforce change stream and the
    /// NetSuite poller, through the transforms), and PostgreSQL breaks the cycle by aborting one
    /// transaction. The aborted page is applied again whole, with its cursor, instead of failing the
    /// stream (which would drop its subscription). The order is fixed by locks, not by timing.
    /// </summary>
    [Fact]
    public async Task ApplyInbound_PageAbortedForADeadlock_IsAppliedAgainWholeWithItsCursor()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001000000000DLA", "9101", "Alpha Co", "5550001", "Oakland");
        await hub.SeedLinkedAsync("001000000000DLB", "9102", "Beta Co", "5550002", "Fresno");

        await using var blocker = await hub.Source.OpenConnectionAsync();
        // The page's session keeps the server's 1 s: it is the one that finds the deadlock and is aborted.
        await ExecuteAsync(blocker, "SET deadlock_timeout = '60s'");
        await using var tx = await blocker.BeginTransactionAsync();
        await ExecuteAsync(blocker, "SELECT 1 FROM sf_accounts WHERE id = '001000000000DLB' FOR UPDATE");

        var at = SyncHub.T0.AddMinutes(5);
        InboundRecord[] page =
        [
            Account("001000000000DLA", at, "Alpha Two"),
            Account("001000000000DLB", at, "Beta Two"),
        ];
        var apply = hub.Staging.ApplyInboundAsync("salesforce", page, StagingWriter.PollCursor, "cursor-after-page", CancellationToken.None);

        // The page has changed Alpha and waits for Beta; asking for Alpha closes the cycle. The lock on
        // Alpha is granted only once the page's transaction has ended, and it cannot have committed
        // while it waited for Beta: it was aborted.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await ScalarAsync<int>(hub, "SELECT count(*)::int FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", blocker.ProcessID) == 0)
        {
            Assert.False(apply.IsCompleted, $"the page ended before it waited for the blocker's row: {apply.Exception?.GetBaseException().Message}");
            Assert.True(DateTime.UtcNow < deadline, "the page never waited for the blocker's row");
            await Task.Delay(20);
        }

        await ExecuteAsync(blocker, "SELECT 1 FROM sf_accounts WHERE id = '001000000000DLA' FOR UPDATE");
        Assert.False(apply.IsCompletedSuccessfully, "the page committed while the blocker held Beta");
        await tx.CommitAsync();

        Assert.Equal(2, await apply.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("Alpha Two", await hub.SfAsync("001000000000DLA", "name"));
        Assert.Equal("Beta Two", await hub.SfAsync("001000000000DLB", "name"));
        Assert.Equal("cursor-after-page", await hub.Staging.ReadCursorAsync("salesforce", CancellationToken.None));
    }

    private static InboundRecord Account(string id, DateTimeOffset modifiedAt, string name) =>
        new("sf_accounts", "id", new Dictionary<string, object?> { ["id"] = id, ["cdc_source_modified_at"] = modifiedAt, ["name"] = name }, Deleted: false);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(SyncHub hub, string sql, int pid) => await hub.ScalarAsync<T>(sql, pid);
}
