using System.CommandLine;
using System.Text.Json;
using CdcSync.Audit;
using CdcSync.Cli.Commands;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Tests.Conflicts;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Audit;

/// <summary>The audit trail: inbound rows from the staging tables' triggers, outbound rows from
/// cdc.record_outbound, masking, retention and <c>cdcsync audit --record</c>.</summary>
[Collection(ConsoleCapture.Name)]
public sealed class AuditTrailTests
{
    [Fact]
    public async Task InboundAndOutboundChanges_AreAudited_WithBeforeAfterAndTheIdsOfBothSides()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (account, customer) = await hub.SeedLinkedAsync("001K", "510", "Kilo", "4155551100", "Chico");
        await hub.SalesforceAsync("001K", SyncHub.T0.AddMinutes(1), ("name", "Kilo"), ("phone", "4155551111"), ("billingcity", "Chico"));
        await hub.ExecuteAsync(
            "SELECT cdc.record_outbound('netsuite', 'ns_customers', $1::text, '510', 'update', '{\"phone\": {\"before\": \"4155551100\", \"after\": \"4155551111\"}}', '0/1'::pg_lsn)",
            customer);

        var history = await new AuditService(hub.Source).HistoryAsync("001K", 100, CancellationToken.None);

        Assert.Equal(["netsuite:510", "salesforce:001K"], history.Identities.Select(i => $"{i.System}:{i.RecordId}").Order().ToArray());
        var edit = Assert.Single(history.Entries, e => e.Direction == "inbound" && e.Operation == "update" && e.Object == "sf_accounts");
        Assert.Equal(("salesforce", "hub", "001K", account.ToString()), (edit.SourceSystem, edit.TargetSystem, edit.RecordId, edit.RecordKey));
        using (var changes = JsonDocument.Parse(edit.Changes!))
        {
            var phone = changes.RootElement.GetProperty("phone");
            Assert.Equal("4155551100", phone.GetProperty("before").GetString());
            Assert.Equal("4155551111", phone.GetProperty("after").GetString());
            Assert.Single(changes.RootElement.EnumerateObject().ToList());
        }

        var outbound = history.Entries.Where(e => e.Direction == "outbound").ToList();
        Assert.Equal(2, outbound.Count);                                       // the create and the phone update
        Assert.All(outbound, e => Assert.Equal(("hub", "netsuite", "510"), (e.SourceSystem, e.TargetSystem, e.RecordId ?? "510")));
        Assert.Contains(outbound, e => e.Operation == "update" && e.Changes!.Contains("4155551111", StringComparison.Ordinal));

        // The same history by the NetSuite id and by a hub id.
        Assert.Equal(history.Entries.Count, (await new AuditService(hub.Source).HistoryAsync("510", 100, CancellationToken.None)).Entries.Count);
        Assert.Equal(history.Entries.Count, (await new AuditService(hub.Source).HistoryAsync(customer.ToString(), 100, CancellationToken.None)).Entries.Count);
    }

    [Fact]
    public async Task SensitiveFields_AreMasked_InboundAndOutbound()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (_, customer) = await hub.SeedLinkedAsync("001L", "511", "Lima", "4155551200", "Napa");

        await hub.NetSuiteAsync("511", SyncHub.T0.AddMinutes(1), ("email", "cfo@lima.example"), ("phone", "4155551222"));
        await hub.ExecuteAsync(
            "SELECT cdc.record_outbound('netsuite', 'ns_customers', $1::text, '511', 'update', '{\"email\": {\"before\": null, \"after\": \"ceo@lima.example\"}}', NULL)",
            customer);

        var all = await hub.ScalarAsync<string>("SELECT string_agg(changes::text, ' ') FROM cdc.audit_log");
        Assert.DoesNotContain("lima.example", all, StringComparison.Ordinal);
        Assert.Contains("4155551222", all, StringComparison.Ordinal);      // other fields stay readable
        Assert.Equal(2L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE changes -> 'email' ->> 'after' = '***'"));
    }

    [Fact]
    public async Task Retention_PurgesOnlyRowsOlderThanTheSetting()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001M", "512", "Mike", "4155551300", "Lodi");
        var total = await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log");
        await hub.ExecuteAsync("UPDATE cdc.audit_log SET applied_at = now() - interval '40 days' WHERE id = (SELECT min(id) FROM cdc.audit_log)");

        Assert.Equal(0, await CliAsync("audit", "retention", "30 days", "--db", hub.ConnectionString));
        Assert.Equal(2, await CliAsync("audit", "retention", "a while", "--db", hub.ConnectionString));
        Assert.Equal(0, await CliAsync("audit", "purge", "--db", hub.ConnectionString));

        Assert.Equal(total - 1, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log"));
        Assert.Equal("30 days", await new AuditService(hub.Source).RetentionAsync(CancellationToken.None));
    }

    [Fact]
    public async Task RetentionIsEnforcedByTheWriters_WhenAPurgeIsDue()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001N", "513", "November", "4155551400", "Davis");
        await hub.ExecuteAsync("UPDATE cdc.audit_log SET applied_at = now() - interval '400 days'");
        await hub.ExecuteAsync("UPDATE cdc.settings SET value = '-infinity' WHERE key = 'audit_last_purge'");

        await hub.SalesforceAsync("001N", SyncHub.T0.AddMinutes(1), ("name", "November"), ("phone", "4155551444"), ("billingcity", "Davis"));

        Assert.Equal(0L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE applied_at < now() - interval '90 days'"));
        Assert.Equal(1L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log"));
    }

    [Fact]
    public async Task APurgeDue_DoesNotMakeOneSystemsPageWaitForAnotherSystemsOpenPage()
    {
        // Onboarding 100,000 records a side on a fresh hub: both systems' first pages found a purge
        // due, and the second system's first audited row waited for the first system's page (one
        // transaction of minutes) until the 30 s command timeout failed the onboarding.
        await using var hub = await SyncHub.CreateAsync();
        await hub.ExecuteAsync("UPDATE cdc.settings SET value = '-infinity' WHERE key = 'audit_last_purge'");

        await using var salesforce = await ReplicationOrigins.OpenAsync(hub.Source, "salesforce", CancellationToken.None);
        await using var page = await salesforce.Connection.BeginTransactionAsync();
        await hub.Staging.ApplyInboundAsync(salesforce.Connection, "salesforce", [Record("sf_accounts", "id", "001P", "Papa")], cursor: null, CancellationToken.None);

        // NetSuite's page while Salesforce's is open; a lock wait fails it after 5 s instead of blocking the test.
        var impatient = new NpgsqlConnectionStringBuilder(hub.ConnectionString) { Options = "-c lock_timeout=5s" };
        await using var netsuiteHub = NpgsqlDataSource.Create(impatient.ConnectionString);
        await new StagingWriter(netsuiteHub).ApplyInboundAsync("netsuite", [Record("ns_customers", "internalid", "615", "Quebec")], cursor: null, CancellationToken.None);

        await page.CommitAsync();
        Assert.Equal(2L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE direction = 'inbound' AND record_id IN ('001P', '615')"));
        Assert.True(await hub.ScalarAsync<bool>("SELECT value::timestamptz > '-infinity' FROM cdc.settings WHERE key = 'audit_last_purge'"));
    }

    private static InboundRecord Record(string table, string keyColumn, string key, string name) =>
        new(table, keyColumn, new Dictionary<string, object?> { [keyColumn] = key, [table == "sf_accounts" ? "name" : "companyname"] = name, ["cdc_source_modified_at"] = SyncHub.T0 }, Deleted: false);

    [Fact]
    public async Task AuditCli_ShowsTheHistoryAsJson_AndAnUnknownRecordIsAClearError()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001O", "514", "Oscar", "4155551500", "Ukiah");

        var output = new StringWriter();
        var stdout = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.Equal(0, await CliAsync("audit", "--record", "514", "--json", "--db", hub.ConnectionString));
            Assert.Equal(2, await CliAsync("audit", "--record", "no-such-id", "--db", hub.ConnectionString));
        }
        finally
        {
            Console.SetOut(stdout);
        }

        using var json = JsonDocument.Parse(output.ToString());
        Assert.Equal(2, json.RootElement.GetProperty("identities").GetArrayLength());
        var changes = json.RootElement.GetProperty("changes").EnumerateArray().ToList();
        Assert.Contains(changes, c => c.GetProperty("from").GetString() == "salesforce" && c.GetProperty("operation").GetString() == "insert");
        Assert.Contains(changes, c => c.GetProperty("to").GetString() == "netsuite" && c.GetProperty("direction").GetString() == "outbound");
    }

    private static Task<int> CliAsync(params string[] args) =>
        new RootCommand { AuditCommand.Create() }.Parse(args).InvokeAsync();
}
