using System.Text.Json.Nodes;
using CdcSync.Connectors.Salesforce;
using CdcSync.Inbound;
using Xunit.Abstractions;

namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>
/// Initial loads through Bulk API 2.0 query jobs: the real inbound connector against the Salesforce
/// sandbox over loopback HTTP, pages applied to a real hub as the inbound runner applies them.
/// </summary>
public sealed class SalesforceBulkLoadTests(ITestOutputHelper output)
{
    private const string CreateJob = "POST /services/data/v{version}/jobs/query";
    private const string JobResults = "GET /services/data/v{version}/jobs/query/{id}/results";
    private const string RestQuery = "GET /services/data/v{version}/queryAll";
    private const string RestMore = "GET /services/data/v{version}/query/{locator}";
    private const string Columns = "id, name, phone, website, billingcity, annualrevenue, numberofemployees, ownerid, isdeleted, systemmodstamp, lastmodifieddate, createddate, netsuite_id__c, cdc_source_modified_at";

    [Fact]
    public async Task InitialRead_AboveThreshold_UsesOneQueryJobFewerCallsAndLandsTheRowsRestWould()
    {
        await using var bulkHub = await SalesforceTestHub.CreateAsync(nameof(InitialRead_AboveThreshold_UsesOneQueryJobFewerCallsAndLandsTheRowsRestWould));
        await using var restHub = await SalesforceTestHub.CreateAsync(nameof(InitialRead_AboveThreshold_UsesOneQueryJobFewerCallsAndLandsTheRowsRestWould), "_rest");
        var sandbox = bulkHub.Sandbox;
        var ids = SeedAccounts(sandbox, 2500, deleted: 25);

        var bulkOptions = Options(bulkHub, threshold: 2000, pageSize: 1250);
        var before = sandbox.Options.ApiRequestCount;
        var bulkPages = await DrainAsync(bulkHub, bulkHub.Inbound(bulkHub.Client(bulkOptions)));
        var bulkCalls = sandbox.Options.ApiRequestCount - before;
        Assert.Equal(1, sandbox.Stats.RequestsTo(CreateJob));
        Assert.Equal(2, sandbox.Stats.RequestsTo(JobResults));
        Assert.True(bulkPages >= 2, $"expected the job's two results pages as separate inbound pages, got {bulkPages}");

        // The same org read with REST pages of 200 into a second hub: the threshold is above the count.
        sandbox.Stats.Reset();
        var restOptions = Options(bulkHub, threshold: 100_000, pageSize: 1250);
        restOptions.QueryBatchSize = 200;
        before = sandbox.Options.ApiRequestCount;
        await DrainAsync(restHub, restHub.Inbound(restHub.Client(restOptions)));
        var restCalls = sandbox.Options.ApiRequestCount - before;
        Assert.Equal(0, sandbox.Stats.RequestsTo(CreateJob));
        var restPages = sandbox.Stats.RequestsTo(RestQuery) + sandbox.Stats.RequestsTo(RestMore);
        Assert.True(restPages >= 13, $"2500 accounts in REST pages of 200, got {restPages} queries");

        // Both count the same describes, counts and reads of the empty Contact and Opportunity;
        // the accounts cost 2 results pages (plus create, 2 status checks, delete) against 13 REST pages.
        output.WriteLine($"API calls of the initial read: Bulk API 2.0 {bulkCalls}, REST {restCalls}");
        Assert.True(bulkCalls + 5 <= restCalls, $"bulk load took {bulkCalls} API calls, REST {restCalls}");

        var bulkRows = await RowsAsync(bulkHub);
        Assert.Equal(2500, bulkRows.Count);
        Assert.Equal(await RowsAsync(restHub), bulkRows);
        Assert.Equal(25, await bulkHub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE isdeleted"));
        Assert.Equal("Says \"hi\", twice,\nover two lines", await bulkHub.ScalarAsync<string>("SELECT billingcity FROM sf_accounts WHERE id = $1", ids[1]));
    }

    [Fact]
    public async Task InitialRead_QueryJobFails_FallsBackToRestPagesAndLosesNothing()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(InitialRead_QueryJobFails_FallsBackToRestPagesAndLosesNothing));
        SeedAccounts(hub.Sandbox, 1200, deleted: 10);
        hub.Sandbox.Options.FailNextBulkJobs(1);

        await DrainAsync(hub, hub.Inbound(hub.Client(Options(hub, threshold: 1000, pageSize: 500))));

        Assert.Equal(1, hub.Sandbox.Stats.RequestsTo(CreateJob));
        Assert.Equal(0, hub.Sandbox.Stats.RequestsTo(JobResults));
        Assert.Equal(1200, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts"));
        Assert.Equal(10, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE isdeleted"));
        var warning = Assert.Single(hub.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("ended Failed", StringComparison.Ordinal));
        Assert.Contains("reading Account with REST query pages instead", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InitialRead_RestartedMidLoad_ResumesAtTheNextResultsPageAndThenPollsChangesMadeDuringTheLoad()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(InitialRead_RestartedMidLoad_ResumesAtTheNextResultsPageAndThenPollsChangesMadeDuringTheLoad));
        var ids = SeedAccounts(hub.Sandbox, 1000, deleted: 0);
        var options = Options(hub, threshold: 500, pageSize: 300);

        // The first worker applies one page (the hub stores its cursor with it), then is killed.
        var first = hub.Inbound(hub.Client(options));
        var page = await first.ReadChangesAsync(await hub.Staging.ReadCursorAsync(first.Name, CancellationToken.None), CancellationToken.None);
        await hub.Staging.ApplyInboundAsync(first.Name, page.Records, page.NextCursor, CancellationToken.None);
        Assert.True(page.HasMore);
        Assert.Equal(300, page.Records.Count);

        // Edited while the load runs: the job's snapshot holds the old name.
        hub.Sandbox.Update(ids[999], new JsonObject { ["Name"] = "Renamed during the load" });

        // A new process: new client, new connector, the cursor from the hub.
        var second = hub.Inbound(hub.Client(options));
        await DrainAsync(hub, second);

        Assert.Equal(1, hub.Sandbox.Stats.RequestsTo(CreateJob));
        Assert.Equal(4, hub.Sandbox.Stats.RequestsTo(JobResults));
        Assert.Equal(1000, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts"));

        // The next poll scans from the job's snapshot: the edit made during the load comes in.
        await DrainAsync(hub, second);
        Assert.Equal("Renamed during the load", await hub.ScalarAsync<string>("SELECT name FROM sf_accounts WHERE id = $1", ids[999]));

        // After the load, polling is the REST scan from the snapshot: later changes come in, nothing else.
        hub.Sandbox.Update(ids[3], new JsonObject { ["Name"] = "Renamed after the load" });
        await DrainAsync(hub, second);
        Assert.Equal("Renamed after the load", await hub.ScalarAsync<string>("SELECT name FROM sf_accounts WHERE id = $1", ids[3]));
        Assert.Equal(1, hub.Sandbox.Stats.RequestsTo(CreateJob));
    }

    [Fact]
    public async Task InitialRead_JobDeletedMidLoad_ReadsTheObjectWithRestPagesFromTheStart()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(InitialRead_JobDeletedMidLoad_ReadsTheObjectWithRestPagesFromTheStart));
        SeedAccounts(hub.Sandbox, 800, deleted: 5);
        var inbound = hub.Inbound(hub.Client(Options(hub, threshold: 500, pageSize: 300)));
        var page = await inbound.ReadChangesAsync(null, CancellationToken.None);
        await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
        Assert.Equal(300, page.Records.Count);

        // An admin deletes the job (or Salesforce does, 7 days on): its next page is gone.
        var job = SalesforceBulkCursor.TryParse(OverlapCursor.Parse(System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(page.NextCursor!)!["Account"], "salesforce").After)!.JobId;
        using (var http = new HttpClient { BaseAddress = hub.Sandbox.BaseUrl })
        {
            var token = await http.PostAsync("services/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = hub.Sandbox.Options.ClientId,
                ["client_secret"] = hub.Sandbox.Options.ClientSecret,
            }));
            http.DefaultRequestHeaders.Authorization = new("Bearer", JsonNode.Parse(await token.Content.ReadAsStringAsync())!["access_token"]!.GetValue<string>());
            Assert.Equal(System.Net.HttpStatusCode.NoContent, (await http.DeleteAsync($"services/data/v61.0/jobs/query/{job}")).StatusCode);
        }

        await DrainAsync(hub, inbound);

        Assert.Equal(800, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts"));
        Assert.Equal(5, await hub.ScalarAsync<long>("SELECT count(*) FROM sf_accounts WHERE isdeleted"));
        Assert.Contains(hub.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains($"query job {job} for Account cannot be read", StringComparison.Ordinal));
        Assert.Equal(1, hub.Sandbox.Stats.RequestsTo(CreateJob));
    }

    private static SalesforceOptions Options(SalesforceTestHub hub, int threshold, int pageSize)
    {
        var options = hub.Options();
        options.BulkQueryThreshold = threshold;
        options.BulkQueryPageSize = pageSize;
        options.BulkQueryPollInterval = TimeSpan.FromMilliseconds(10);
        return options;
    }

    private static List<string> SeedAccounts(CdcSync.Sandboxes.Salesforce.SalesforceSandbox sandbox, int count, int deleted)
    {
        // Made an hour ago, as an org's records are: the scan that follows a load re-reads only the
        // overlap window behind the job's snapshot, which then holds none of them.
        sandbox.Options.TimeProvider = new PastTimeProvider(TimeSpan.FromHours(1));
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            ids.Add(sandbox.Insert("Account", new JsonObject
            {
                ["Name"] = $"Account {i:D5}",
                ["Phone"] = i % 3 == 0 ? null : $"+1 415 555 {i % 10_000:D4}",
                ["Website"] = i % 2 == 0 ? $"https://a{i}.example.com" : null,
                // Values CSV must quote: commas, quotes, a line break.
                ["BillingCity"] = i == 1 ? "Says \"hi\", twice,\nover two lines" : $"City, {i % 7}",
                ["AnnualRevenue"] = i * 1000,
                ["NumberOfEmployees"] = i,
            }));
        }

        foreach (var id in ids.Take(deleted))
        {
            sandbox.Delete(id);
        }

        sandbox.Options.TimeProvider = TimeProvider.System;
        return ids;
    }

    /// <summary>Reads and applies pages as the inbound runner does (cursor stored with each page) until nothing more comes.</summary>
    private static async Task<int> DrainAsync(SalesforceTestHub hub, SalesforceInboundConnector inbound)
    {
        var pages = 0;
        InboundPage page;
        do
        {
            var cursor = await hub.Staging.ReadCursorAsync(inbound.Name, CancellationToken.None);
            page = await inbound.ReadChangesAsync(cursor, CancellationToken.None);
            await hub.Staging.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
            pages++;
        }
        while (page.HasMore);

        return pages;
    }

    private static async Task<List<string>> RowsAsync(SalesforceTestHub hub)
    {
        await using var cmd = hub.DataSource.CreateCommand($"SELECT ({Columns})::text FROM sf_accounts ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    private sealed class PastTimeProvider(TimeSpan behind) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() - behind;
    }
}
