using System.Diagnostics;
using CdcSync.Connectors;
using CdcSync.Connectors.NetSuite;
using CdcSync.Replication;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Tests.Connectors.NetSuite;
using CdcSync.Tests.Connectors.Salesforce;
using Npgsql;

namespace CdcSync.Tests.Hub;

/// <summary>
/// Hub round trips of an outbound batch, counted by Npgsql itself (one activity per command or batch
/// sent to the hub's database) while real connectors write to the sandboxes: they do not grow with
/// the batch's size, and every one of them goes through the connector's <see cref="CdcSync.Hub.HubGateway"/>.
/// </summary>
public sealed class HubRoundTripTests
{
    [Fact]
    public async Task SalesforceBatch_CreatesAndUpdates_SameRoundTripsForFiveOrOneHundredEightyRecords()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(SalesforceBatch_CreatesAndUpdates_SameRoundTripsForFiveOrOneHundredEightyRecords));
        await using var connector = hub.Outbound(hub.Client(hub.Options()));
        using var trips = new HubTrips(hub.DataSource);

        // The first batch reads the staging table's column types once; a warm-up takes that out.
        await SalesforceBatchAsync(hub, connector, 1);

        var measured = new Dictionary<int, (long Creates, long Updates)>();
        foreach (var size in new[] { 5, 60, 180 })
        {
            var before = hub.Gateway.RoundTrips;
            var (creates, updates) = await SalesforceBatchAsync(hub, connector, size, trips);
            measured[size] = (creates, updates);

            // Every statement went through the gateway, none around it (plus the test's two checkpoint reads).
            Assert.Equal(creates + updates + 2, hub.Gateway.RoundTrips - before);
            Assert.Equal(size, hub.Sandbox.Records("Account").Count(r => r["Name"]!.ToString()!.StartsWith($"batch{size}-", StringComparison.Ordinal)));
        }

        // Creates: the Ids written back with the acknowledgements (1), the checkpoint (1).
        // Updates: the precondition (1), the acknowledgements (1), the checkpoint (1).
        Assert.All(measured.Values, m => Assert.Equal((2L, 3L), m));
    }

    [Fact]
    public async Task NetSuiteBatch_Creates_SameRoundTripsForThreeOrFortyRecords_UpdatesOneMorePerRecord()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync("ns_" + nameof(NetSuiteBatch_Creates_SameRoundTripsForThreeOrFortyRecords_UpdatesOneMorePerRecord));
        await using var connector = new NetSuiteOutboundConnector("netsuite", NetSuiteConnectorTests.OptionsFor(sandbox), hub.Gateway);
        using var trips = new HubTrips(hub.DataSource);
        await NetSuiteBatchAsync(hub, connector, 1, null);

        var measured = new Dictionary<int, (long Creates, long Updates)>();
        foreach (var size in new[] { 3, 40 })
        {
            var before = hub.Gateway.RoundTrips;
            measured[size] = await NetSuiteBatchAsync(hub, connector, size, trips);
            Assert.True(measured[size].Creates + measured[size].Updates + 2 == hub.Gateway.RoundTrips - before, string.Join("\n---\n", trips.Statements));
        }

        // Creates: write-backs with acknowledgements (1), checkpoint (1), whatever the size. NetSuite
        // takes one record per request, and each update's precondition is read and checked right
        // before its own request (a wider window would let an edit made there meanwhile be lost):
        // one hub round trip per updated record, the rest fixed.
        Assert.Equal(2, measured[3].Creates);
        Assert.Equal(2, measured[40].Creates);
        Assert.Equal(3 + 2, measured[3].Updates);
        Assert.Equal(40 + 2, measured[40].Updates);
    }

    private static async Task<(long Creates, long Updates)> SalesforceBatchAsync(SalesforceTestHub hub, IOutboundConnector connector, int size, HubTrips? trips = null)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < size; i++)
        {
            ids.Add(await hub.InsertAccountAsync($"batch{size}-{i}", city: "Springfield"));
        }

        var tx = hub.NextTransaction();
        var created = await ChangesAsync(ids, (id, position) => hub.UpsertEventAsync("sf_accounts", id, tx, position));
        var creates = await MeasureAsync(trips, connector, created, tx);

        var tx2 = hub.NextTransaction();
        var updated = new List<ChangeEvent>();
        foreach (var (id, position) in ids.Select((id, i) => (id, i)))
        {
            var old = await hub.ReadRowAsync("sf_accounts", id);
            await hub.ExecuteAsync("UPDATE sf_accounts SET billingcity = 'Shelbyville' WHERE hub_id = $1", id);
            updated.Add(new ChangeEvent(await hub.RelationAsync("sf_accounts"), ChangeKind.Update, await hub.ReadRowAsync("sf_accounts", id), old, tx2, position));
        }

        var updates = await MeasureAsync(trips, connector, updated, tx2);
        var accounts = hub.Sandbox.Records("Account");
        Assert.All(ids, id => Assert.Equal("Shelbyville", accounts.Single(r => r["CdcSync_Id__c"]?.ToString() == id.ToString())["BillingCity"]!.ToString()));
        return (creates, updates);
    }

    private static async Task<(long Creates, long Updates)> NetSuiteBatchAsync(NetSuiteTestHub hub, IOutboundConnector connector, int size, HubTrips? trips)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < size; i++)
        {
            ids.Add(await hub.InsertAsync($"EXT-{size}-{i}-{Guid.NewGuid():N}", $"Company {size}-{i}"));
        }

        var tx = hub.NextTransaction();
        var created = await ChangesAsync(ids, (id, position) => hub.InsertEventAsync(id, tx, position));
        var creates = await MeasureAsync(trips, connector, created, tx);

        var tx2 = hub.NextTransaction();
        var updated = new List<ChangeEvent>();
        foreach (var (id, position) in ids.Select((id, i) => (id, i)))
        {
            var old = await hub.ReadRowAsync(id);
            await using (var cmd = hub.DataSource.CreateCommand("UPDATE ns_customers SET companyname = companyname || ' Ltd' WHERE hub_id = $1"))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = id });
                await cmd.ExecuteNonQueryAsync();
            }

            updated.Add(new ChangeEvent(NetSuiteTestHub.Customers, ChangeKind.Update, await hub.ReadRowAsync(id), old, tx2, position));
        }

        var updates = await MeasureAsync(trips, connector, updated, tx2);
        foreach (var id in ids)
        {
            Assert.NotNull(await hub.InternalIdAsync(id));
        }

        return (creates, updates);
    }

    /// <summary>Writes and commits one batch; its hub round trips when counting.</summary>
    private static async Task<long> MeasureAsync(HubTrips? trips, IOutboundConnector connector, List<ChangeEvent> changes, TransactionInfo tx)
    {
        async Task WriteAsync()
        {
            await connector.WriteAsync(changes, CancellationToken.None);
            await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
        }

        var count = 0L;
        if (trips is null)
        {
            await WriteAsync();
        }
        else
        {
            count = await trips.CountAsync(WriteAsync);
        }

        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));
        return count;
    }

    private static async Task<List<ChangeEvent>> ChangesAsync(List<Guid> ids, Func<Guid, int, Task<ChangeEvent>> change)
    {
        var changes = new List<ChangeEvent>();
        for (var i = 0; i < ids.Count; i++)
        {
            changes.Add(await change(ids[i], i));
        }

        return changes;
    }

    /// <summary>Counts Npgsql's command activities on one database (other tests use other databases).</summary>
    private sealed class HubTrips : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly string _database;
        private long _count;

        /// <summary>What was sent, for a failing assertion's message.</summary>
        public System.Collections.Concurrent.ConcurrentQueue<string> Statements { get; } = new();
        private bool _counting;

        public HubTrips(NpgsqlDataSource hub)
        {
            _database = new NpgsqlConnectionStringBuilder(hub.ConnectionString).Database!;
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "Npgsql",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = activity =>
                {
                    if (Volatile.Read(ref _counting) && activity.GetTagItem("db.query.text") is not null && Equals(activity.GetTagItem("db.namespace"), _database))
                    {
                        Interlocked.Increment(ref _count);
                        Statements.Enqueue(activity.GetTagItem("db.query.text")!.ToString()!);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        /// <summary>Round trips to the database during <paramref name="work"/>.</summary>
        public async Task<long> CountAsync(Func<Task> work)
        {
            Interlocked.Exchange(ref _count, 0);
            Volatile.Write(ref _counting, true);
            await work();
            Volatile.Write(ref _counting, false);
            return Interlocked.Read(ref _count);
        }

        public void Dispose() => _listener.Dispose();
    }
}
