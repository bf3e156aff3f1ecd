using System.Text.Json.Nodes;
using CdcSync.Connectors;
using CdcSync.Connectors.Salesforce;
using CdcSync.Inbound;
using CdcSync.Replication;
using CdcSync.Sandboxes.Salesforce;
using Polly.CircuitBreaker;

namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>The real Salesforce connector against the Salesforce sandbox over loopback HTTP, with a real hub.</summary>
public sealed class SalesforceConnectorTests
{
    private const string Table = "sf_accounts";

    [Fact]
    public async Task Upsert_RecordRejected_GoesToDeadLettersAndRestLands()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Upsert_RecordRejected_GoesToDeadLettersAndRestLands));
        hub.Sandbox.Options.RejectedName = "Reject Me";
        var client = hub.Client(hub.Options());
        await using var connector = hub.Outbound(client);

        var names = new[] { "Acme", "Globex", "Reject Me", "Initech", "Umbrella" };
        var hubIds = new List<Guid>();
        foreach (var name in names)
        {
            hubIds.Add(await hub.InsertAccountAsync(name, city: "Springfield"));
        }

        var tx = hub.NextTransaction();
        var changes = new List<ChangeEvent>();
        for (var i = 0; i < hubIds.Count; i++)
        {
            changes.Add(await hub.UpsertEventAsync(Table, hubIds[i], tx, i));
        }

        await connector.WriteAsync(changes, CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        var landed = hub.Sandbox.Records("Account");
        Assert.Equal(["Acme", "Globex", "Initech", "Umbrella"], landed.Select(r => r["Name"]!.ToString()).Order().ToArray());
        Assert.All(landed, r => Assert.Equal("Springfield", r["BillingCity"]!.ToString()));
        for (var i = 0; i < names.Length; i++)
        {
            var id = await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", hubIds[i]);
            if (names[i] == "Reject Me")
            {
                Assert.Null(id);
            }
            else
            {
                // The Id written back is the record the external id points at.
                var record = hub.Sandbox.Get(id!);
                Assert.NotNull(record);
                Assert.Equal(hubIds[i].ToString(), record["CdcSync_Id__c"]!.ToString());
            }
        }

        var dead = Assert.Single(await hub.DeadLettersAsync(connector.Name));
        Assert.Equal(hubIds[2].ToString(), dead.RecordKey);
        Assert.Contains("FIELD_CUSTOM_VALIDATION_EXCEPTION", dead.Error, StringComparison.Ordinal);
        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));

        // A row that now has its Id is updated by Id, not created again.
        await hub.ExecuteAsync("UPDATE sf_accounts SET name = 'Acme Corp' WHERE hub_id = $1", hubIds[0]);
        var tx2 = hub.NextTransaction();
        await connector.WriteAsync([await hub.UpsertEventAsync(Table, hubIds[0], tx2)], CancellationToken.None);
        await connector.CommitAsync(tx2.CommitLsn, CancellationToken.None);
        Assert.Equal(4, hub.Sandbox.Records("Account").Count);
        Assert.Contains(hub.Sandbox.Records("Account"), r => r["Name"]!.ToString() == "Acme Corp");
    }

    [Fact]
    public async Task ExpiredSession_RefreshesOnceAndRetries()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(ExpiredSession_RefreshesOnceAndRetries));
        await using var connector = hub.Outbound(hub.Client(hub.Options()));
        await WriteAccountsAsync(hub, connector, "First");
        Assert.Equal(1, hub.Sandbox.Options.TokenRequestCount);

        hub.Sandbox.Options.ExpireAccessTokens();
        await WriteAccountsAsync(hub, connector, "Second");

        Assert.Equal(2, hub.Sandbox.Options.TokenRequestCount);
        Assert.Equal(2, hub.Sandbox.Records("Account").Count);
    }

    [Fact]
    public async Task RefreshTokenFlow_AuthenticatesAndWrites()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(RefreshTokenFlow_AuthenticatesAndWrites));
        var options = hub.Options();
        options.RefreshToken = SalesforceSandboxOptions.DefaultRefreshToken;
        await using var connector = hub.Outbound(hub.Client(options));
        await WriteAccountsAsync(hub, connector, "Refreshed");
        Assert.Single(hub.Sandbox.Records("Account"));
    }

    [Theory]
    [InlineData(SalesforceFaultKind.RequestLimitExceeded)]
    [InlineData(SalesforceFaultKind.ServiceUnavailable)]
    [InlineData(SalesforceFaultKind.TooManyRequests)]
    public async Task Burst_WithRetryAfter_SurvivedWithNothingLost(SalesforceFaultKind kind)
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Burst_WithRetryAfter_SurvivedWithNothingLost), kind.ToString());
        var client = hub.Client(hub.Options());
        await using var connector = hub.Outbound(client);
        await WriteAccountsAsync(hub, connector, "Warmup");

        hub.Sandbox.Options.FailNext(3, kind, TimeSpan.FromSeconds(1));
        var names = Enumerable.Range(1, 250).Select(i => $"Burst {i}").ToArray();
        await WriteAccountsAsync(hub, connector, names);

        Assert.Equal(3, hub.Sandbox.Options.FaultedRequestCount);
        Assert.Equal(251, hub.Sandbox.Records("Account").Count);
        Assert.Equal(0L, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE id IS NULL"));
        Assert.Empty(await hub.DeadLettersAsync(connector.Name));
        if (kind != SalesforceFaultKind.ServiceUnavailable)
        {
            Assert.True(client.Resilience.RateLimiter.ThrottleCount >= 1);
        }
    }

    [Fact]
    public async Task Outage_CircuitBreakerOpensThenCatchesUp()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Outage_CircuitBreakerOpensThenCatchesUp));
        var client = hub.Client(hub.Options(resilience: r =>
        {
            r.MaxRetryAttempts = 3;
            r.CircuitBreakerMinimumThroughput = 3;
            r.CircuitBreakerSamplingDuration = TimeSpan.FromSeconds(5);
            r.CircuitBreakerBreakDuration = TimeSpan.FromMilliseconds(500);
        }));
        await using var connector = hub.Outbound(client);
        await WriteAccountsAsync(hub, connector, "Before");

        hub.Sandbox.Options.StartOutage(TimeSpan.FromSeconds(3));
        var names = Enumerable.Range(1, 30).Select(i => $"During {i}").ToArray();
        var hubIds = new List<Guid>();
        foreach (var name in names)
        {
            hubIds.Add(await hub.InsertAccountAsync(name));
        }

        // What the pipeline does with a unit that failed: abort, wait, re-send from the checkpoint.
        var sawOpen = false;
        var failures = 0;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        while (true)
        {
            var tx = hub.NextTransaction();
            try
            {
                var changes = new List<ChangeEvent>();
                for (var i = 0; i < hubIds.Count; i++)
                {
                    changes.Add(await hub.UpsertEventAsync(Table, hubIds[i], tx, i));
                }

                await connector.WriteAsync(changes, deadline.Token);
                await connector.CommitAsync(tx.CommitLsn, deadline.Token);
                break;
            }
            catch (Exception e) when (e is BrokenCircuitException or SalesforceApiException or HttpRequestException)
            {
                failures++;
                sawOpen |= client.CircuitState is CircuitState.Open or CircuitState.HalfOpen || e is BrokenCircuitException;
                await connector.AbortAsync(deadline.Token);
                await Task.Delay(TimeSpan.FromMilliseconds(200), deadline.Token);
            }
        }

        Assert.True(failures > 0, "the outage should have failed at least one unit");
        Assert.True(sawOpen, "the circuit breaker should have opened during the outage");
        Assert.Equal(CircuitState.Closed, client.CircuitState);
        Assert.Equal(31, hub.Sandbox.Records("Account").Count);
        Assert.Equal(0L, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE id IS NULL"));
        // The breaker kept the connector from hammering: a handful of probes, not a request storm.
        Assert.True(hub.Sandbox.Options.FaultedRequestCount < 100, $"{hub.Sandbox.Options.FaultedRequestCount} requests hit the sandbox during the outage");
    }

    [Fact]
    public async Task Inbound_QueryAllOver10000Records_PagesThroughAllIncludingDeleted()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Inbound_QueryAllOver10000Records_PagesThroughAllIncludingDeleted));
        var ids = new List<string>();
        for (var i = 0; i < 10_000; i++)
        {
            ids.Add(hub.Sandbox.Insert("Account", new JsonObject { ["Name"] = $"Account {i:D5}", ["NumberOfEmployees"] = i }));
        }

        foreach (var id in ids.Take(100))
        {
            hub.Sandbox.Delete(id);
        }

        var inbound = hub.Inbound(hub.Client(hub.Options()));
        var seen = new Dictionary<string, InboundRecord>();
        string? cursor = null;
        var pages = 0;
        InboundPage page;
        do
        {
            page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            pages++;
            foreach (var record in page.Records.Where(r => r.Table == Table))
            {
                Assert.True(seen.TryAdd((string)record.Values["id"]!, record), "a record was read twice");
            }

            cursor = page.NextCursor;
        }
        while (page.HasMore);

        Assert.Equal(10_000, seen.Count);
        Assert.True(pages >= 5, $"expected several pages of at most 2000, got {pages}");
        Assert.Equal(100, seen.Values.Count(r => r.Values["isdeleted"] is true));
        Assert.All(seen.Values, r => Assert.False(r.Deleted));
        Assert.Equal(9_999m, seen[ids[^1]].Values["numberofemployees"]);

        // The cursor resumes after the last record: only later changes come next.
        hub.Sandbox.Update(ids[500], new JsonObject { ["Name"] = "Renamed" });
        hub.Sandbox.Delete(ids[501]);
        // Records of the cursor's second come again from Salesforce (its filters ignore milliseconds)
        // and are skipped, so this may take a few calls with HasMore set.
        var changed = new List<string>();
        do
        {
            page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            changed.AddRange(page.Records.Select(r => (string)r.Values["id"]!));
            cursor = page.NextCursor;
        }
        while (page.HasMore);

        Assert.Equal([ids[500], ids[501]], changed.Order(StringComparer.Ordinal).ToArray());
        var empty = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
        Assert.Empty(empty.Records);
    }

    [Fact]
    public async Task Delete_HubRowDeletedOrMarkedDeleted_DeletesInSalesforce()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Delete_HubRowDeletedOrMarkedDeleted_DeletesInSalesforce));
        await using var connector = hub.Outbound(hub.Client(hub.Options()));
        var hubIds = await WriteAccountsAsync(hub, connector, "Gone", "Tombstoned", "Kept");
        var sfIds = new List<string>();
        foreach (var hubId in hubIds)
        {
            sfIds.Add((await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", hubId))!);
        }

        var tx = hub.NextTransaction();
        var delete = await hub.DeleteEventAsync(Table, hubIds[0], tx, 0);
        await hub.ExecuteAsync("DELETE FROM sf_accounts WHERE hub_id = $1", hubIds[0]);
        await hub.ExecuteAsync("UPDATE sf_accounts SET isdeleted = true WHERE hub_id = $1", hubIds[1]);
        var tombstone = await hub.UpsertEventAsync(Table, hubIds[1], tx, 1);
        await connector.WriteAsync([delete, tombstone], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        Assert.True(hub.Sandbox.Get(sfIds[0])!["IsDeleted"]!.GetValue<bool>());
        Assert.True(hub.Sandbox.Get(sfIds[1])!["IsDeleted"]!.GetValue<bool>());
        Assert.Equal(["Kept"], hub.Sandbox.Records("Account").Select(r => r["Name"]!.ToString()).ToArray());

        // Re-sending the same deletes (a retry after a crash) is harmless.
        await connector.WriteAsync([delete, tombstone], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
        Assert.Empty(await hub.DeadLettersAsync(connector.Name));
    }

    [Fact]
    public async Task Inbound_RecordTheHubCreated_ReadBeforeItsIdWriteBack_MeetsItsRowAndStaleReReadsNeverUndoNewerHubValues()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Inbound_RecordTheHubCreated_ReadBeforeItsIdWriteBack_MeetsItsRowAndStaleReReadsNeverUndoNewerHubValues));
        var client = hub.Client(hub.Options());
        var inbound = hub.Inbound(client);

        // The hub made the account (a NetSuite customer mapped over) and the outbound writer created
        // it in Salesforce by external id; the Id write-back has not landed when inbound reads it.
        var hubId = await hub.ScalarAsync<Guid>("INSERT INTO sf_accounts (name) VALUES ('Made In The Hub') RETURNING hub_id");
        var accountId = hub.Sandbox.Insert("Account", new JsonObject { ["Name"] = "Made In The Hub", ["CdcSync_Id__c"] = hubId.ToString() });
        await ReadAndApplyAsync(hub, inbound);
        Assert.Equal(1L, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE name = 'Made In The Hub'"));
        Assert.Equal(accountId, await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", hubId));

        // Meanwhile the hub learned the NetSuite link (not yet written to Salesforce). A re-read of
        // the version it already holds (a reset cursor here; an overlap or a retried page in a
        // run) must not put Salesforce's older, empty link back.
        await hub.ScalarAsync<int>("UPDATE sf_accounts SET netsuite_id__c = '9001' WHERE hub_id = $1 RETURNING 1", hubId);
        await hub.ScalarAsync<int>("DELETE FROM cdc.inbound_cursors RETURNING 1");
        await ReadAndApplyAsync(hub, inbound);
        Assert.Equal("9001", await hub.ScalarAsync<string>("SELECT netsuite_id__c FROM sf_accounts WHERE hub_id = $1", hubId));

        // A newer version in Salesforce does apply.
        hub.Sandbox.Update(accountId, new JsonObject { ["Phone"] = "(212) 555-0000" });
        await ReadAndApplyAsync(hub, inbound);
        Assert.Equal("(212) 555-0000", await hub.ScalarAsync<string>("SELECT phone FROM sf_accounts WHERE hub_id = $1", hubId));
        Assert.DoesNotContain(hub.Logs.Lines, l => l.Contains("duplicate key", StringComparison.OrdinalIgnoreCase));
    }

    private static async Task ReadAndApplyAsync(SalesforceTestHub hub, SalesforceInboundConnector inbound)
    {
        InboundPage page;
        do
        {
            var cursor = await hub.Staging.ReadCursorAsync(inbound.Name, CancellationToken.None);
            page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
        }
        while (page.HasMore);
    }

    [Fact]
    public async Task Delete_InSalesforce_MarksHubRowDeleted()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Delete_InSalesforce_MarksHubRowDeleted));
        var client = hub.Client(hub.Options());
        var inbound = hub.Inbound(client);
        var accountId = hub.Sandbox.Insert("Account", new JsonObject { ["Name"] = "Parent", ["BillingCity"] = "Paris" });
        var contactId = hub.Sandbox.Insert("Contact", new JsonObject { ["LastName"] = "Child", ["AccountId"] = accountId });

        var cursor = await hub.Staging.ReadCursorAsync(inbound.Name, CancellationToken.None);
        var page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
        await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
        Assert.Equal("Paris", await hub.ScalarAsync<string>("SELECT billingcity FROM sf_accounts WHERE id = $1", accountId));
        Assert.NotEqual(Guid.Empty, await hub.ScalarAsync<Guid>("SELECT account_hub_id FROM sf_contacts WHERE id = $1", contactId));

        // Deleting the account in Salesforce deletes its contact too; both come back as tombstones.
        hub.Sandbox.Delete(accountId);
        cursor = await hub.Staging.ReadCursorAsync(inbound.Name, CancellationToken.None);
        page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
        await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);

        Assert.True(await hub.ScalarAsync<bool>("SELECT isdeleted FROM sf_accounts WHERE id = $1", accountId));
        Assert.True(await hub.ScalarAsync<bool>("SELECT isdeleted FROM sf_contacts WHERE id = $1", contactId));

        // Reading again changes nothing.
        cursor = await hub.Staging.ReadCursorAsync(inbound.Name, CancellationToken.None);
        page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
        Assert.Equal(0, await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None));
    }

    [Fact]
    public async Task Contact_ParentCreatedInSameBatch_GetsAccountIdFromHub()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(Contact_ParentCreatedInSameBatch_GetsAccountIdFromHub));
        await using var connector = hub.Outbound(hub.Client(hub.Options()));
        var accountHubId = await hub.InsertAccountAsync("Parent Co");
        var contactHubId = await hub.InsertContactAsync(accountHubId, "Smith");
        var tx = hub.NextTransaction();
        await connector.WriteAsync(
            [await hub.UpsertEventAsync(Table, accountHubId, tx, 0), await hub.UpsertEventAsync("sf_contacts", contactHubId, tx, 1)],
            CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        var accountId = await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", accountHubId);
        var contact = Assert.Single(hub.Sandbox.Records("Contact"));
        Assert.Equal(accountId, contact["AccountId"]!.ToString());
        Assert.Equal(contact["Id"]!.ToString(), await hub.ScalarAsync<string>("SELECT id FROM sf_contacts WHERE hub_id = $1", contactHubId));
    }

    [Fact]
    public async Task FailedRun_WrongClientSecret_SecretNeverInLogsOrErrors()
    {
        const string secret = "Wr0ng-S3cret-Value-7f1c2b";
        const string refreshToken = "R3fresh-T0ken-Value-9d8e7a";
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(FailedRun_WrongClientSecret_SecretNeverInLogsOrErrors));
        var messages = new List<string>();

        var outbound = hub.Outbound(hub.Client(hub.Options(secret)));
        var hubId = await hub.InsertAccountAsync("Secretive");
        var tx = hub.NextTransaction();
        var error = await Record.ExceptionAsync(async () =>
        {
            await outbound.WriteAsync([await hub.UpsertEventAsync(Table, hubId, tx)], CancellationToken.None);
            await outbound.CommitAsync(tx.CommitLsn, CancellationToken.None);
        }) as SalesforceApiException;
        Assert.True(error is not null, string.Join("\n", hub.Logs.Lines));
        Assert.Equal("invalid_client", error!.ErrorCode);
        messages.Add(error.ToString());

        var withRefresh = hub.Options(secret);
        withRefresh.RefreshToken = refreshToken;
        var inbound = hub.Inbound(hub.Client(withRefresh));
        var inboundError = await Assert.ThrowsAsync<SalesforceApiException>(() => inbound.ReadChangesAsync(null, CancellationToken.None));
        Assert.Equal("invalid_grant", inboundError.ErrorCode);
        messages.Add(inboundError.ToString());
        messages.Add(withRefresh.ToString());

        Assert.NotEmpty(hub.Logs.Lines);
        foreach (var line in hub.Logs.Lines.Concat(messages))
        {
            Assert.DoesNotContain(secret, line, StringComparison.Ordinal);
            Assert.DoesNotContain(refreshToken, line, StringComparison.Ordinal);
            Assert.DoesNotContain(SalesforceSandboxOptions.DefaultClientSecret, line, StringComparison.Ordinal);
        }

        Assert.Contains("Connectors:salesforce:ClientSecret", error.Message, StringComparison.Ordinal);
    }

    private static async Task<List<Guid>> WriteAccountsAsync(SalesforceTestHub hub, SalesforceOutboundConnector connector, params string[] names)
    {
        var hubIds = new List<Guid>();
        foreach (var name in names)
        {
            hubIds.Add(await hub.InsertAccountAsync(name));
        }

        var tx = hub.NextTransaction();
        var changes = new List<ChangeEvent>();
        for (var i = 0; i < hubIds.Count; i++)
        {
            changes.Add(await hub.UpsertEventAsync(Table, hubIds[i], tx, i));
        }

        await connector.WriteAsync(changes, CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
        return hubIds;
    }
}
