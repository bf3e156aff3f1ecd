using CdcSync.Hub;
using CdcSync.Tests.Connectors.Salesforce;

namespace CdcSync.Tests.Hub;

/// <summary>
/// Write-backs of one batch that set the same columns go to the hub as one statement; each row still
/// gets its own values (typed, NULL included) under the connector's origin, as the connector's own
/// write (its sync base set), and a batch naming a row twice keeps the later value.
/// </summary>
public sealed class HubWriteBackTests
{
    [Fact]
    public async Task ApplyAsync_WriteBacksOfSeveralRows_EachRowItsValues_DuplicateKeyLaterWins()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(ApplyAsync_WriteBacksOfSeveralRows_EachRowItsValues_DuplicateKeyLaterWins));
        var a = await hub.InsertAccountAsync("wb-a");
        var b = await hub.InsertAccountAsync("wb-b");
        var c = await hub.InsertAccountAsync("wb-c");

        var batch = new HubBatchResult();
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB000000000A", ["numberofemployees"] = 7 })));
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(b, new Dictionary<string, object?> { ["id"] = "001WB000000000B", ["numberofemployees"] = null })));
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(c, new Dictionary<string, object?> { ["id"] = "001WB000000000C", ["numberofemployees"] = 9 })));
        await hub.Gateway.ApplyAsync("salesforce", batch, CancellationToken.None);

        Assert.Equal("001WB000000000A|7", await hub.ScalarAsync<string>("SELECT id || '|' || coalesce(numberofemployees::text, 'null') FROM sf_accounts WHERE hub_id = $1", a));
        Assert.Equal("001WB000000000B|null", await hub.ScalarAsync<string>("SELECT id || '|' || coalesce(numberofemployees::text, 'null') FROM sf_accounts WHERE hub_id = $1", b));
        Assert.Equal("001WB000000000C|9", await hub.ScalarAsync<string>("SELECT id || '|' || coalesce(numberofemployees::text, 'null') FROM sf_accounts WHERE hub_id = $1", c));

        // The connector's own write: the triggers took it as Salesforce's value, so it is the base.
        Assert.Equal("\"001WB000000000B\"", await hub.ScalarAsync<string>(
            "SELECT value::text FROM cdc.sync_base WHERE object = 'sf_accounts' AND record_key = $1 AND field = 'id'", b.ToString()));

        var twice = new HubBatchResult();
        twice.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB00000000A1" })));
        twice.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(b, new Dictionary<string, object?> { ["id"] = "001WB00000000B1" })));
        twice.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB00000000A2" })));
        await hub.Gateway.ApplyAsync("salesforce", twice, CancellationToken.None);

        Assert.Equal("001WB00000000A2", await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", a));
        Assert.Equal("001WB00000000B1", await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", b));
    }

    [Fact]
    public async Task ApplyAsync_SameRowWrittenBackWithDifferentColumnSets_LastWriteBackWins()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(ApplyAsync_SameRowWrittenBackWithDifferentColumnSets_LastWriteBackWins));
        var a = await hub.InsertAccountAsync("wb-order-a");
        var b = await hub.InsertAccountAsync("wb-order-b");

        // {id} for a and b (one statement), then {id, employees} for a, then {id} for a again: the
        // last one must decide a's Id, as if each had been applied in turn.
        var batch = new HubBatchResult();
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB0000000OA1" })));
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(b, new Dictionary<string, object?> { ["id"] = "001WB0000000OB1" })));
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB0000000OA2", ["numberofemployees"] = 5 })));
        batch.WriteBacks.Add(("sf_accounts", "hub_id", new WriteBack(a, new Dictionary<string, object?> { ["id"] = "001WB0000000OA3" })));
        await hub.Gateway.ApplyAsync("salesforce", batch, CancellationToken.None);

        Assert.Equal("001WB0000000OA3|5", await hub.ScalarAsync<string>("SELECT id || '|' || coalesce(numberofemployees::text, 'null') FROM sf_accounts WHERE hub_id = $1", a));
        Assert.Equal("001WB0000000OB1", await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", b));
    }

    [Fact]
    public void WriteBackRuns_KeepsOrder_GroupsOnlyNeighboursWithTheSameColumns()
    {
        static (string, string, WriteBack) Row(string key, params string[] columns) =>
            ("t", "k", new WriteBack(key, columns.ToDictionary(c => c, c => (object?)c)));

        var runs = HubGateway.WriteBackRuns([Row("1", "x"), Row("2", "x"), Row("1", "x", "y"), Row("1", "x"), Row("3"), Row("4", "x")]).ToList();

        Assert.Equal(["1,2", "1", "1,4"], runs.Select(r => string.Join(",", r.Rows.Select(w => w.Key))));
    }
}
