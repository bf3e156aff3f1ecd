using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Connectors;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.NetSuite;
using CdcSync.Inbound;
using CdcSync.Replication;
using CdcSync.Sandboxes.NetSuite;
using Microsoft.Extensions.Logging;
using Polly.CircuitBreaker;

namespace CdcSync.Tests.Connectors.NetSuite;

public sealed class NetSuiteConnectorTests
{
    private const string Connector = "netsuite";

    [Fact]
    public async Task Sandbox_RequestWithBadTbaSignature_Rejected401InvalidLogin()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var options = OptionsFor(sandbox);
        options.TokenSecret = "not-the-token-secret";
        using var inbound = new NetSuiteInboundConnector(Connector, options, hub.DataSource);

        var e = await Assert.ThrowsAsync<NetSuiteApiException>(() => inbound.ReadChangesAsync(null, CancellationToken.None));

        Assert.Equal(401, e.StatusCode);
        Assert.Equal("INVALID_LOGIN", e.ErrorCode);
        Assert.Equal(1, sandbox.Options.AuthenticationFailures);

        using var http = new HttpClient();
        var unsigned = await http.GetAsync(new Uri(sandbox.BaseUrl, "services/rest/record/v1/customer/1"));
        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        var body = JsonNode.Parse(await unsigned.Content.ReadAsStringAsync())!;
        Assert.Equal(401, body["status"]!.GetValue<int>());
        Assert.Equal("INVALID_LOGIN", body["o:errorDetails"]![0]!["o:errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Outbound_NewRow_UpsertsByExternalIdAndWritesInternalIdBack()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var hubId = await hub.InsertAsync("SF-0001", "Acme Corp", addressBook: """[{"label":"Billing","defaultBilling":true,"addressBookAddress":{"addr1":"1 Main St","city":"Springfield","country":"US"}}]""");
        await using var connector = Outbound(sandbox, hub);

        var tx = hub.NextTransaction();
        await connector.WriteAsync([await hub.InsertEventAsync(hubId, tx)], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        Assert.Empty(await hub.DeadLettersAsync(Connector));
        var internalId = await hub.InternalIdAsync(hubId);
        Assert.NotNull(internalId);
        Assert.Equal(long.Parse(internalId), sandbox.FindByExternalId("SF-0001"));
        var record = sandbox.GetCustomer(long.Parse(internalId))!;
        Assert.Equal("Acme Corp", record["companyName"]!.GetValue<string>());
        Assert.Equal("Springfield", record["addressBook"]!["items"]![0]!["addressBookAddress"]!["city"]!.GetValue<string>());
        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));

        // The same change delivered again (a crash before the checkpoint) updates the same record.
        await connector.WriteAsync([await hub.InsertEventAsync(hubId, tx)], CancellationToken.None);
        Assert.Equal(1, sandbox.CustomerCount);
    }

    /// <summary>
    /// An opportunity whose customer NetSuite has not created yet (entity NULL, entity_hub_id set, as
    /// transforms/040 leaves it) in the same batch as that customer's create: the opportunity is sent
    /// after the customer and its internal id write-back, with the customer as its entity. One whose
    /// customer is not in NetSuite at all goes to dead letters naming the customer's hub row.
    /// </summary>
    [Fact]
    public async Task Outbound_OpportunityLookup_EntityResolvedFromACustomerCreatedInTheSameBatch_OrDeadLettered()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var customer = await hub.InsertAsync("SF-PARENT", "Parent Co");
        var orphanParent = await hub.InsertAsync("SF-NEVER-SENT", "Never Sent Co");
        var opportunity = await InsertOpportunityAsync(hub, "sf-opp-1", customer, "Deal");
        var orphan = await InsertOpportunityAsync(hub, "sf-opp-2", orphanParent, "Orphan Deal");
        var opportunities = await RelationOfAsync(hub, "ns_opportunities");
        await using var connector = Outbound(sandbox, hub);

        var tx = hub.NextTransaction();
        await connector.WriteAsync(
            [
                await hub.InsertEventAsync(customer, tx, 0),
                new ChangeEvent(opportunities, ChangeKind.Insert, await RowAsync(hub, opportunities, opportunity), null, tx, 1),
                new ChangeEvent(opportunities, ChangeKind.Insert, await RowAsync(hub, opportunities, orphan), null, tx, 2),
            ],
            CancellationToken.None);

        var customerId = await hub.InternalIdAsync(customer);
        Assert.NotNull(customerId);
        await using var cmd = hub.DataSource.CreateCommand("SELECT internalid FROM ns_opportunities WHERE hub_id = $1");
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = opportunity });
        var opportunityId = await cmd.ExecuteScalarAsync() as string;
        Assert.NotNull(opportunityId);
        var record = sandbox.GetRecord("opportunity", long.Parse(opportunityId, System.Globalization.CultureInfo.InvariantCulture))!;
        Assert.Equal(customerId, record["entity"]!["id"]!.ToString());
        Assert.Equal("Deal", record["title"]!.GetValue<string>());
        await using var entity = hub.DataSource.CreateCommand("SELECT entity FROM ns_opportunities WHERE hub_id = $1");
        entity.Parameters.Add(new Npgsql.NpgsqlParameter { Value = opportunity });
        Assert.Equal(customerId, await entity.ExecuteScalarAsync());   // written back with the internal id: the hub holds what NetSuite holds

        var dead = Assert.Single(await hub.DeadLettersAsync(Connector));
        Assert.Equal(orphan.ToString(), dead.RecordKey);
        Assert.Contains($"ns_customers row {orphanParent}", dead.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lookup_NamingAColumnTheStagingTableLacks_FailsWithOneLineNamingTheFix()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var options = OptionsFor(sandbox);
        options.Records.Single(r => r.RecordType == "opportunity").Lookups[0].HubKeyColumn = "entity_hub";
        using var inbound = new NetSuiteInboundConnector(Connector, options, hub.DataSource);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => inbound.ReadChangesAsync(null, CancellationToken.None));

        Assert.Equal("Connectors:netsuite:Records (opportunity): lookup column 'entity_hub' is not a column of ns_opportunities; fix Lookups or add the column in a migration.", e.Message);
    }

    private static async Task<Guid> InsertOpportunityAsync(NetSuiteTestHub hub, string externalId, Guid customer, string title)
    {
        await using var cmd = hub.DataSource.CreateCommand(
            "INSERT INTO ns_opportunities (externalid, entity_hub_id, title, projectedtotal, expectedclosedate) VALUES ($1, $2, $3, 1000, '2027-01-31') RETURNING hub_id");
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = externalId });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = customer });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = title });
        return (Guid)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>A staging table as pgoutput describes it: its columns with their type OIDs, in order.</summary>
    private static async Task<RelationInfo> RelationOfAsync(NetSuiteTestHub hub, string table)
    {
        await using var cmd = hub.DataSource.CreateCommand(
            "SELECT attname, atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = "public." + table });
        var columns = new List<ColumnInfo>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            columns.Add(new ColumnInfo(reader.GetString(0), (uint)reader.GetInt32(1), reader.GetInt32(2), reader.GetString(0) == "hub_id"));
        }

        return new RelationInfo(16390, "public", table, 'f', columns);
    }

    private static async Task<RowValues> RowAsync(NetSuiteTestHub hub, RelationInfo relation, Guid hubId)
    {
        var columns = string.Join(", ", relation.Columns.Select(c => $"\"{c.Name}\"::text"));
        await using var cmd = hub.DataSource.CreateCommand($"SELECT {columns} FROM \"{relation.Name}\" WHERE hub_id = $1");
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = hubId });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        var builder = new RowValues.Builder();
        for (var i = 0; i < relation.Columns.Count; i++)
        {
            builder.Add(reader.IsDBNull(i) ? ValueKind.Null : ValueKind.Text, reader.IsDBNull(i) ? default : Encoding.UTF8.GetBytes(reader.GetString(i)));
        }

        return builder.Build();
    }

    [Fact]
    public async Task Outbound_BatchWithRejectedRecords_GoodOnesLandBadOnesDeadLettered()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        sandbox.Options.RejectedExternalIds["SF-BAD"] = true;
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var good1 = await hub.InsertAsync("SF-1", "Good One");
        var bad = await hub.InsertAsync("SF-BAD", "Always Rejected");
        var tooLong = await hub.InsertAsync("SF-LONG", new string('x', 84));
        var good2 = await hub.InsertAsync("SF-2", "Good Two");
        await using var connector = Outbound(sandbox, hub);

        var tx = hub.NextTransaction();
        await connector.WriteAsync(
            [await hub.InsertEventAsync(good1, tx, 0), await hub.InsertEventAsync(bad, tx, 1), await hub.InsertEventAsync(tooLong, tx, 2), await hub.InsertEventAsync(good2, tx, 3)],
            CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        Assert.NotNull(await hub.InternalIdAsync(good1));
        Assert.NotNull(await hub.InternalIdAsync(good2));
        Assert.Null(await hub.InternalIdAsync(bad));
        Assert.Equal(2, sandbox.CustomerCount);
        var dead = await hub.DeadLettersAsync(Connector);
        Assert.Equal(2, dead.Count);
        Assert.Contains(dead, d => d.RecordKey == bad.ToString() && d.Error.Contains("USER_ERROR", StringComparison.Ordinal));
        Assert.Contains(dead, d => d.RecordKey == tooLong.ToString() && d.Error.Contains("companyName", StringComparison.Ordinal));
        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Outbound_BurstOf429WithRetryAfter_AllRecordsLand()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var ids = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add(await hub.InsertAsync($"SF-{i}", $"Company {i}"));
        }

        await using var connector = Outbound(sandbox, hub);
        sandbox.Options.ThrottleNext(4, TimeSpan.FromSeconds(1));

        var tx = hub.NextTransaction();
        var events = new List<ChangeEvent>();
        foreach (var id in ids)
        {
            events.Add(await hub.InsertEventAsync(id, tx, events.Count));
        }

        await connector.WriteAsync(events, CancellationToken.None);

        Assert.Equal(6, sandbox.CustomerCount);
        foreach (var id in ids)
        {
            Assert.NotNull(await hub.InternalIdAsync(id));
        }

        Assert.True(connector.Resilience.RateLimiter.ThrottleCount >= 4);
        Assert.Empty(await hub.DeadLettersAsync(Connector));
    }

    [Fact]
    public async Task Outbound_ManyRows_NeverMoreRequestsInFlightThanTheAccountLimit()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(
            new NetSuiteSandboxOptions { ConcurrencyLimit = 3, Latency = TimeSpan.FromMilliseconds(25) },
            CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var tx = hub.NextTransaction();
        var events = new List<ChangeEvent>();
        for (var i = 0; i < 30; i++)
        {
            events.Add(await hub.InsertEventAsync(await hub.InsertAsync($"SF-{i}", $"Company {i}"), tx, i));
        }

        await using var connector = Outbound(sandbox, hub, concurrency: 3);
        await connector.WriteAsync(events, CancellationToken.None);

        Assert.Equal(30, sandbox.CustomerCount);
        Assert.Equal(0, sandbox.Options.ConcurrencyRejections);
        Assert.True(sandbox.Options.MaxConcurrentRequests <= 3, $"saw {sandbox.Options.MaxConcurrentRequests} concurrent requests");
        Assert.True(sandbox.Options.MaxConcurrentRequests > 1, "rows were not written concurrently");
    }

    [Fact]
    public async Task Outbound_Outage_CircuitOpensThenCatchesUpWithNothingLost()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var tx = hub.NextTransaction();
        var events = new List<ChangeEvent>();
        for (var i = 0; i < 8; i++)
        {
            events.Add(await hub.InsertEventAsync(await hub.InsertAsync($"SF-{i}", $"Company {i}"), tx, i));
        }

        await using var connector = Outbound(sandbox, hub);
        var sawOpen = false;
        using var watching = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                sawOpen |= connector.Resilience.CircuitBreaker.CircuitState == CircuitState.Open;
                await Task.Delay(5, CancellationToken.None);
            }
        });

        sandbox.Options.StartOutage(TimeSpan.FromSeconds(2));

        // What the pipeline does: retry the unit from the checkpoint until the target is back.
        var attempts = 0;
        while (true)
        {
            attempts++;
            try
            {
                await connector.WriteAsync(events, CancellationToken.None);
                break;
            }
            catch (Exception e) when (e is NetSuiteApiException or BrokenCircuitException && attempts < 50)
            {
                await connector.AbortAsync(CancellationToken.None);
            }
        }

        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
        await watching.CancelAsync();
        await watcher;

        Assert.True(sawOpen, "the circuit breaker never opened during the outage");
        Assert.Equal(8, sandbox.CustomerCount);
        Assert.Equal(CircuitState.Closed, connector.Resilience.CircuitBreaker.CircuitState);
        Assert.Empty(await hub.DeadLettersAsync(Connector));
    }

    [Fact]
    public async Task Outbound_Delete_MakesCustomerInactiveByDefaultOrDeletesWhenConfigured()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var hubId = await hub.InsertAsync("SF-DEL", "Leaving Soon");
        var other = await hub.InsertAsync("SF-DEL2", "Leaving For Good");
        await using var connector = Outbound(sandbox, hub);
        var tx = hub.NextTransaction();
        await connector.WriteAsync([await hub.InsertEventAsync(hubId, tx, 0), await hub.InsertEventAsync(other, tx, 1)], CancellationToken.None);
        var internalId = long.Parse((await hub.InternalIdAsync(hubId))!);

        var deleteTx = hub.NextTransaction();
        await connector.WriteAsync([new ChangeEvent(NetSuiteTestHub.Customers, ChangeKind.Delete, null, await hub.ReadRowAsync(hubId), deleteTx, 0)], CancellationToken.None);

        Assert.True(sandbox.GetCustomer(internalId)!["isInactive"]!.GetValue<bool>());

        var options = OptionsFor(sandbox);
        options.InactivateInsteadOfDelete = false;
        await using var deleting = new NetSuiteOutboundConnector(Connector, options, hub.Gateway);
        var otherId = long.Parse((await hub.InternalIdAsync(other))!);
        await deleting.WriteAsync([new ChangeEvent(NetSuiteTestHub.Customers, ChangeKind.Delete, null, await hub.ReadRowAsync(other), hub.NextTransaction(), 0)], CancellationToken.None);
        Assert.Null(sandbox.GetCustomer(otherId));
    }

    [Fact]
    public async Task Inbound_TenThousandCustomers_ReadInPagesWithNoneMissedOrRepeated()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        for (var i = 0; i < 10_000; i++)
        {
            sandbox.SeedCustomer(new JsonObject { ["companyName"] = $"Company {i}", ["externalId"] = $"NS-{i}" });
        }

        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var options = OptionsFor(sandbox);
        options.Inbound.MaxSeenRecords = 20_000;
        using var inbound = new NetSuiteInboundConnector(Connector, options, hub.DataSource);
        var seen = new HashSet<string>();
        string? cursor = null;
        var pages = 0;
        InboundPage page;
        do
        {
            page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            pages++;
            foreach (var record in page.Records)
            {
                Assert.True(seen.Add((string)record.Values["internalid"]!), "a record came twice");
                if (pages == 3 && seen.Count == 2001)
                {
                    // A customer created mid-scan is picked up by a later page.
                    sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Late Arrival", ["externalId"] = "NS-late" });
                }
            }

            cursor = page.NextCursor;
        }
        while (page.HasMore);

        Assert.Equal(10_001, seen.Count);
        Assert.True(pages >= 10);

        // The next scan re-reads the overlap window behind the newest stamp and drops all of it: applied already.
        InboundPage again;
        do
        {
            again = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            Assert.Empty(again.Records);
            cursor = again.NextCursor;
        }
        while (again.HasMore);
    }

    [Fact]
    public async Task Inbound_EditsInTheSameSecondAsTheCursor_ALowerIdAndASecondEditOfOneRecord_BothArrive()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var low = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Low" });
        var high = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "High" });
        using var inbound = new NetSuiteInboundConnector(Connector, OptionsFor(sandbox), hub.DataSource);
        await ReadAllAsync(inbound, hub);

        for (var attempt = 0; ; attempt++)
        {
            Assert.True(attempt < 20, "NetSuite's second turned between the edits in every attempt");

            // The cursor's position: the higher id, read at second S.
            sandbox.EditRecord("customer", high, new JsonObject { ["phone"] = "555000" + attempt.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await ReadAllAsync(inbound, hub);
            var second = Stamp(sandbox, high);

            // Still in second S: an edit of a lower id, and a second edit of the record just read.
            sandbox.EditRecord("customer", low, new JsonObject { ["companyName"] = $"Low {attempt}" });
            sandbox.EditRecord("customer", high, new JsonObject { ["companyName"] = $"High {attempt}" });
            if (Stamp(sandbox, low) != second || Stamp(sandbox, high) != second)
            {
                continue; // the second turned meanwhile: that case needs no overlap; try again
            }

            var records = await ReadAllAsync(inbound, hub);
            Assert.Contains(records, r => (string?)r.Values["internalid"] == low.ToString(System.Globalization.CultureInfo.InvariantCulture) && (string?)r.Values["companyname"] == $"Low {attempt}");
            Assert.Contains(records, r => (string?)r.Values["internalid"] == high.ToString(System.Globalization.CultureInfo.InvariantCulture) && (string?)r.Values["companyname"] == $"High {attempt}");
            await using var cmd = hub.DataSource.CreateCommand("SELECT string_agg(companyname, ',' ORDER BY companyname) FROM ns_customers");
            Assert.Equal($"High {attempt},Low {attempt}", await cmd.ExecuteScalarAsync());
            break;
        }

        // Nothing is read twice: the next scan's overlap brings only versions already applied.
        Assert.Empty(await ReadAllAsync(inbound, hub));
    }

    [Fact]
    public async Task Inbound_CustomerDeletedInNetSuite_RemovesTheHubRow()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var doomed = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Short Lived" });
        var kept = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Long Lived" });
        using var inbound = new NetSuiteInboundConnector(Connector, OptionsFor(sandbox), hub.DataSource);
        await ReadAllAsync(inbound, hub);

        Assert.True(sandbox.DeleteRecord("customer", doomed));
        var records = await ReadAllAsync(inbound, hub);

        Assert.Contains(records, r => r.Deleted && (string?)r.Values["internalid"] == doomed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await using var cmd = hub.DataSource.CreateCommand("SELECT string_agg(internalid, ',') FROM ns_customers");
        Assert.Equal(kept.ToString(System.Globalization.CultureInfo.InvariantCulture), await cmd.ExecuteScalarAsync());
    }

    /// <summary>
    /// Past Inbound:MaxSeenRecords the overlap window's versions are forgotten and re-read, with the
    /// same stamp and the values NetSuite still holds. Meanwhile the hub holds newer values not yet
    /// written to NetSuite (pending outbound): the sync-base triggers (transforms/005_sync_tracking.sql)
    /// see that NetSuite did not change those fields since they last agreed and keep the hub's value,
    /// so a stale re-read never reverts a pending edit, nor counts as a conflict.
    /// </summary>
    [Fact]
    public async Task Inbound_StaleReReadsPastTheSeenCap_NeverRevertPendingHubValues()
    {
        const int customers = 150;
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        for (var i = 0; i < customers; i++)
        {
            sandbox.SeedCustomer(new JsonObject { ["companyName"] = $"Capped {i}", ["phone"] = "4155550100" });
        }

        var options = OptionsFor(sandbox);
        options.Inbound.MaxSeenRecords = 100;                       // the smallest cap: 50 versions are forgotten
        options.Inbound.OverlapWindow = TimeSpan.FromMinutes(10);   // so all of them are re-read by the next scan
        using var inbound = new NetSuiteInboundConnector(Connector, options, hub.DataSource);
        Assert.Equal(customers, (await ReadAllAsync(inbound, hub)).Count);

        // The hub's own edit of every customer, not yet sent to NetSuite.
        await using (var edit = hub.DataSource.CreateCommand("UPDATE ns_customers SET phone = '4155550199', companyname = companyname || ' (hub)'"))
        {
            Assert.Equal(customers, await edit.ExecuteNonQueryAsync());
        }

        var reread = await ReadAllAsync(inbound, hub);

        Assert.True(reread.Count >= customers - options.Inbound.MaxSeenRecords, $"expected the {customers - options.Inbound.MaxSeenRecords} forgotten versions to be re-read, got {reread.Count}");
        Assert.All(reread, r => Assert.Equal("4155550100", (string?)r.Values["phone"]));   // stale: what NetSuite still holds
        await using (var check = hub.DataSource.CreateCommand(
            "SELECT count(*) FILTER (WHERE phone = '4155550199' AND companyname LIKE '% (hub)'), count(*) FROM ns_customers"))
        await using (var reader = await check.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(customers, reader.GetInt64(1));
            Assert.Equal(customers, reader.GetInt64(0));   // every pending hub value kept
        }

        await using var conflicts = hub.DataSource.CreateCommand("SELECT count(*) FROM cdc.conflicts");
        Assert.Equal(0L, await conflicts.ExecuteScalarAsync());
    }

    private static async Task<List<InboundRecord>> ReadAllAsync(NetSuiteInboundConnector inbound, NetSuiteTestHub hub)
    {
        var all = new List<InboundRecord>();
        InboundPage page;
        do
        {
            page = await inbound.ReadChangesAsync(await hub.Staging.ReadCursorAsync(Connector, CancellationToken.None), CancellationToken.None);
            await hub.Staging.ApplyInboundAsync(Connector, page.Records, page.NextCursor, CancellationToken.None);
            all.AddRange(page.Records);
        }
        while (page.HasMore);
        return all;
    }

    private static string? Stamp(NetSuiteSandbox sandbox, long id) => sandbox.GetCustomer(id)?["lastModifiedDate"]?.ToString();

    [Fact]
    public async Task Inbound_PageAppliedToHub_UpsertsRowsAndAdvancesCursor()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var created = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Made In NetSuite", ["email"] = "ap@example.com" });
        using var inbound = new NetSuiteInboundConnector(Connector, OptionsFor(sandbox), hub.DataSource);

        var page = await inbound.ReadChangesAsync(await hub.Staging.ReadCursorAsync(Connector, CancellationToken.None), CancellationToken.None);
        await hub.Staging.ApplyInboundAsync(Connector, page.Records, page.NextCursor, CancellationToken.None);

        await using var cmd = hub.DataSource.CreateCommand("SELECT companyname, email, isinactive, lastmodifieddate IS NOT NULL FROM ns_customers WHERE internalid = $1");
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = created.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal("Made In NetSuite", reader.GetString(0));
            Assert.Equal("ap@example.com", reader.GetString(1));
            Assert.False(reader.GetBoolean(2));
            Assert.True(reader.GetBoolean(3));
        }

        var cursor = await hub.Staging.ReadCursorAsync(Connector, CancellationToken.None);
        Assert.Equal(page.NextCursor, cursor);
        Assert.Empty((await inbound.ReadChangesAsync(cursor, CancellationToken.None)).Records);
    }

    [Fact]
    public async Task FailingRuns_NeverLogOrThrowSecrets()
    {
        var sandboxOptions = new NetSuiteSandboxOptions
        {
            ConsumerKey = "ck-7f3a9c2e51d84b06",
            ConsumerSecret = "cs-SECRET-91b2c3d4e5f6",
            TokenId = "tk-4e5d6c7b8a9f0e1d",
            TokenSecret = "ts-SECRET-a1b2c3d4e5f6",
        };
        await using var sandbox = await NetSuiteSandbox.StartAsync(sandboxOptions, CancellationToken.None);
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var logs = new CapturingLoggerProvider();
        var exceptions = new List<Exception>();
        var hubId = await hub.InsertAsync("SF-S", "Secretive Inc");

        // 1: an outage that outlasts the retries.
        sandbox.Options.StartOutage(TimeSpan.FromMinutes(5));
        var options = OptionsFor(sandbox);
        options.Resilience.MaxRetryAttempts = 3;
        var change = await hub.InsertEventAsync(hubId, hub.NextTransaction());
        await using (var connector = new NetSuiteOutboundConnector(Connector, options, hub.Gateway, logs.CreateLogger<NetSuiteOutboundConnector>()))
        {
            exceptions.Add(await Assert.ThrowsAnyAsync<Exception>(() => connector.WriteAsync([change], CancellationToken.None)));
        }

        sandbox.Options.EndOutage();

        // 2: wrong secrets.
        var wrong = OptionsFor(sandbox);
        wrong.TokenSecret = "ts-SECRET-wrong-000000";
        wrong.ConsumerSecret = "cs-SECRET-wrong-000000";
        using (var inbound = new NetSuiteInboundConnector(Connector, wrong, hub.DataSource, logs.CreateLogger<NetSuiteInboundConnector>()))
        {
            exceptions.Add(await Assert.ThrowsAsync<NetSuiteApiException>(() => inbound.ReadChangesAsync(null, CancellationToken.None)));
        }

        var text = string.Join("\n", logs.Lines) + "\n" + string.Join("\n", exceptions.Select(e => e.ToString()))
            + "\n" + options + "\n" + wrong;
        Assert.NotEmpty(logs.Lines);
        foreach (var secret in new[] { sandboxOptions.ConsumerKey, sandboxOptions.ConsumerSecret, sandboxOptions.TokenId, sandboxOptions.TokenSecret, wrong.TokenSecret, wrong.ConsumerSecret })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    private static NetSuiteOutboundConnector Outbound(NetSuiteSandbox sandbox, NetSuiteTestHub hub, int concurrency = 5) =>
        new(Connector, OptionsFor(sandbox, concurrency), hub.Gateway);

    internal static NetSuiteOptions OptionsFor(NetSuiteSandbox sandbox, int concurrency = 5) => new()
    {
        AccountId = sandbox.Options.AccountId,
        BaseUrl = sandbox.BaseUrl,
        ConsumerKey = sandbox.Options.ConsumerKey,
        ConsumerSecret = sandbox.Options.ConsumerSecret,
        TokenId = sandbox.Options.TokenId,
        TokenSecret = sandbox.Options.TokenSecret,
        ConcurrencyLimit = concurrency,
        Records = EndToEnd.ExampleConfig.NetSuiteRecords(),
        Resilience = new HttpResilienceOptions
        {
            MaxRetryAttempts = 8,
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            RetryMaxDelay = TimeSpan.FromMilliseconds(200),
            AttemptTimeout = TimeSpan.FromSeconds(10),
            CircuitBreakerMinimumThroughput = 4,
            CircuitBreakerSamplingDuration = TimeSpan.FromSeconds(2),
            CircuitBreakerBreakDuration = TimeSpan.FromMilliseconds(500),
            ThrottlePause = TimeSpan.FromMilliseconds(100),
        },
    };

    private static string Name([CallerMemberName] string name = "") => "ns_" + name;
}
