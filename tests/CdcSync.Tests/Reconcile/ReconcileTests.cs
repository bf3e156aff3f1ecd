using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors;
using CdcSync.Reconcile;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.EndToEnd;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.Reconcile;

/// <summary>
/// `cdcsync reconcile` over both sandboxes and a two-way linked set: changes made behind the
/// systems' change tracking (<c>/_sandbox/silent-edit</c>) are found, repaired through the
/// inbound path, and a second run finds nothing.
/// </summary>
public sealed class ReconcileTests
{
    private static readonly HttpClient Http = new();

    [Fact]
    public async Task Reconcile_SilentEditsOnEachSideAndARemovedRecord_ReportedRepairedThenClean()
    {
        // No overlap window: polling re-reads nothing it has read, so a silent change stays silent
        // (within the window a re-read would find it, as it should).
        await using var rig = await TwoWayRig.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connectors:salesforce:Inbound:OverlapWindow"] = "00:00:00",
            ["Connectors:netsuite:Inbound:OverlapWindow"] = "00:00:00",
        });
        var a = await PairAsync(rig, "Acme Drift", "(415) 555-0101");
        var b = await PairAsync(rig, "Birch Drift", "(415) 555-0102");
        var c = await PairAsync(rig, "Cedar Drift", "(415) 555-0103");
        var d = await PairAsync(rig, "Dune Drift", "(415) 555-0104");
        var e = await PairAsync(rig, "Elm Drift", "(415) 555-0105");
        await rig.QuietAsync();
        // Both systems' stamps are queried to the second and a scan starts at the newest stamp read,
        // so even without an overlap window the newest second is read again. One more pair, made
        // in a later second, moves that second past every record edited silently below.
        var quietAt = DateTime.UtcNow;
        var nextSecond = quietAt.AddTicks(TimeSpan.TicksPerSecond - (quietAt.Ticks % TimeSpan.TicksPerSecond));
        while (DateTime.UtcNow < nextSecond)
        {
            await Task.Delay(20);
        }

        await PairAsync(rig, "Fir Drift", "(415) 555-0106");
        await rig.QuietAsync();
        var config = await rig.WriteConfigFileAsync();

        // Behind the change tracking: a field on each side, a record removed, a formatting-only
        // change (the same phone), and a field of a record that has an open conflict.
        await SilentEditAsync(rig.Salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = a.AccountId, ["fields"] = new JsonObject { ["Phone"] = "(415) 555-0177" } });
        await SilentEditAsync(rig.NetSuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = b.InternalId.ToString(CultureInfo.InvariantCulture), ["fields"] = new JsonObject { ["phone"] = "4155550188" } });
        await SilentEditAsync(rig.Salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = c.AccountId, ["delete"] = true });
        await SilentEditAsync(rig.Salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = d.AccountId, ["fields"] = new JsonObject { ["Phone"] = "+1 415.555.0104" } });
        await SilentEditAsync(rig.Salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = e.AccountId, ["fields"] = new JsonObject { ["Phone"] = "(415) 555-0155" } });
        // Held for a person by the conflict rules (a manual policy leaves exactly this row).
        await rig.ScalarAsync<int>(
            """
            INSERT INTO cdc.conflicts (connector, object, record_key, policy, status, field, hub_value, incoming_value, incoming_system, hub_system)
            SELECT 'salesforce', 'sf_accounts', hub_id::text, 'manual', 'open', 'phone', to_jsonb(phone), '"(415) 555-0155"', 'salesforce', 'netsuite'
              FROM sf_accounts WHERE id = $1
            """, e.AccountId);
        Assert.Null(rig.Salesforce.Get(c.AccountId));
        var writesBefore = (rig.Salesforce.Stats.Writes, rig.NetSuite.Stats.Writes);

        var report = await CliProcess.RunAsync("reconcile", "--config", config, "--json");
        Assert.True(report.ExitCode == 1, $"reconcile exit {report.ExitCode}: {report.Stdout}{report.Stderr}");
        var json = JsonNode.Parse(report.Stdout)!;
        var drift = json["drift"]!.AsArray().Select(f => (Kind: f!["kind"]!.GetValue<string>(), Object: f["object"]!.GetValue<string>(), Record: f["recordId"]?.GetValue<string>(), Field: f["field"]?.GetValue<string>())).OrderBy(f => f.Record).ToList();
        Assert.Equal(
            new (string, string, string?, string?)[]
            {
                ("field_differs", "sf_accounts", a.AccountId, "phone"),
                ("missing_in_system", "sf_accounts", c.AccountId, null),
                ("field_differs", "ns_customers", b.InternalId.ToString(CultureInfo.InvariantCulture), "phone"),
            }.OrderBy(f => f.Item3),
            drift.Select(f => (f.Kind, f.Object, f.Record, f.Field)));
        var sfPhone = json["drift"]!.AsArray().Single(f => f!["recordId"]!.GetValue<string>() == a.AccountId)!;
        Assert.Equal("(415) 555-0177", sfPhone["systemValue"]!.GetValue<string>());
        Assert.Equal("(415) 555-0101", sfPhone["hubValue"]!.GetValue<string>());
        Assert.NotNull(sfPhone["systemModifiedAt"]);
        Assert.NotNull(sfPhone["hubModifiedAt"]);
        var conflict = Assert.Single(json["conflicts"]!.AsArray());
        Assert.Equal(e.AccountId, conflict!["recordId"]!.GetValue<string>());
        Assert.True(json["apiCalls"]!.GetValue<long>() > 0);
        Assert.Equal(3L, await rig.ScalarAsync<long>("SELECT drift_count FROM cdc.reconcile_runs ORDER BY run_id DESC LIMIT 1"));

        var capped = await CliProcess.RunAsync("reconcile", "--config", config, "--max-api-calls", "2");
        Assert.True(capped.ExitCode == 2, $"capped reconcile exit {capped.ExitCode}: {capped.Stdout}{capped.Stderr}");
        Assert.Contains("API call cap", capped.Stdout, StringComparison.Ordinal);

        // The worker's scheduled run: reports, keeps the run, exports the drift.
        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(rig.Config).Build());
        var job = ReconcileJob.Create(options, rig.Hub, rig.Logs.Factory) ?? throw new Xunit.Sdk.XunitException("no reconcile job with the default schedule");
        Assert.Equal("0 3 * * *", job.Schedule.Text);
        Assert.Contains("3 drift findings, 1 open conflicts", await job.RunAsync(CancellationToken.None), StringComparison.Ordinal);
        Assert.Equal("schedule", await rig.ScalarAsync<string>("SELECT trigger FROM cdc.reconcile_runs ORDER BY run_id DESC LIMIT 1"));
        Assert.Equal(1, ReconcileMetrics.DriftRecords.WithLabels("ns_customers", "field_differs").Value);
        Assert.Equal(1, ReconcileMetrics.DriftRecords.WithLabels("sf_accounts", "missing_in_system").Value);

        var dryRun = await CliProcess.RunAsync("reconcile", "--config", config, "--repair", "--dry-run");
        Assert.True(dryRun.ExitCode == 1, $"dry run exit {dryRun.ExitCode}: {dryRun.Stdout}{dryRun.Stderr}");
        Assert.Contains("late_edit", dryRun.Stdout, StringComparison.Ordinal);
        Assert.Contains("apply_delete", dryRun.Stdout, StringComparison.Ordinal);
        await rig.QuietAsync();
        Assert.Equal(writesBefore, (rig.Salesforce.Stats.Writes, rig.NetSuite.Stats.Writes));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE operation LIKE 'reconcile:%'"));
        Assert.Equal("(415) 555-0101", await rig.ScalarAsync<string>("SELECT phone FROM sf_accounts WHERE id = $1", a.AccountId));

        var repair = await CliProcess.RunAsync("reconcile", "--config", config, "--repair");
        Assert.True(repair.ExitCode == 1, $"repair exit {repair.ExitCode}: {repair.Stdout}{repair.Stderr}");
        await rig.WaitUntilAsync("Salesforce's late edit in NetSuite", () => Task.FromResult(rig.NetSuite.GetCustomer(a.InternalId)!["phone"]?.ToString() == "4155550177"));
        await rig.WaitUntilAsync("NetSuite's late edit in Salesforce", () => Task.FromResult(rig.Salesforce.Get(b.AccountId)!["Phone"]?.ToString().EndsWith("0188", StringComparison.Ordinal) == true));
        await rig.WaitUntilAsync("the removed account's customer inactive", () => Task.FromResult(rig.NetSuite.GetCustomer(c.InternalId)!["isInactive"]?.GetValue<bool>() == true));
        await rig.QuietAsync();
        Assert.Equal(3L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE operation LIKE 'reconcile:%'"));

        var after = await CliProcess.RunAsync("reconcile", "--config", config);
        Assert.True(after.ExitCode == 0, $"reconcile after the repair exit {after.ExitCode}: {after.Stdout}{after.Stderr}");
        Assert.Contains("open conflicts (not drift)", after.Stdout, StringComparison.Ordinal);
        Assert.Equal("clean", await rig.ScalarAsync<string>("SELECT status FROM cdc.reconcile_runs ORDER BY run_id DESC LIMIT 1"));

        // Reconcile:RecreateMissing: a customer removed without a trace is created again from the hub's row.
        var dExternal = "sf-" + await rig.ScalarAsync<Guid>("SELECT hub_id FROM sf_accounts WHERE id = $1", d.AccountId);
        await SilentEditAsync(rig.NetSuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = d.InternalId.ToString(CultureInfo.InvariantCulture), ["delete"] = true });
        var recreate = await CliProcess.RunAsync(new Dictionary<string, string?> { ["CDCSYNC__Reconcile__RecreateMissing"] = "true" }, "reconcile", "--config", config, "--repair", "--record", d.AccountId);
        Assert.True(recreate.ExitCode == 1, $"recreate exit {recreate.ExitCode}: {recreate.Stdout}{recreate.Stderr}");
        Assert.Contains("recreate\tns_customers", recreate.Stdout, StringComparison.Ordinal);
        long again = 0;
        await rig.WaitUntilAsync("the removed customer created again", () =>
        {
            again = rig.NetSuite.FindByExternalId(dExternal) ?? 0;
            return Task.FromResult(again != 0 && again != d.InternalId);
        });
        Assert.Equal("Dune Drift", rig.NetSuite.GetCustomer(again)!["companyName"]!.GetValue<string>());
        await rig.WaitUntilAsync("the new internal id in the hub", async () =>
            await rig.ScalarAsync<string>("SELECT internalid FROM ns_customers WHERE externalid = $1", dExternal) == again.ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task SilentEdit_UnknownTypeIdOrField_Is4xxNamingIt()
    {
        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var account = salesforce.Insert("Account", new JsonObject { ["Name"] = "Quiet Co" });
        var stamp = salesforce.Get(account)!["LastModifiedDate"]!.GetValue<string>();
        var customer = netsuite.SeedCustomer(new JsonObject { ["companyName"] = "Quiet Co", ["subsidiary"] = new JsonObject { ["id"] = "1" } });
        var nsStamp = netsuite.GetCustomer(customer)!["lastModifiedDate"]?.ToString();

        await AssertRefusedAsync(salesforce.BaseUrl, new JsonObject { ["type"] = "Acount", ["id"] = account, ["fields"] = new JsonObject { ["Phone"] = "1" } }, HttpStatusCode.BadRequest, "Acount");
        await AssertRefusedAsync(salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = "001000000000000AAA", ["delete"] = true }, HttpStatusCode.NotFound, "001000000000000AAA");
        await AssertRefusedAsync(salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = account, ["fields"] = new JsonObject { ["Phon"] = "1" } }, HttpStatusCode.BadRequest, "Phon");
        await AssertRefusedAsync(netsuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = "999999", ["delete"] = true }, HttpStatusCode.NotFound, "999999");
        await AssertRefusedAsync(netsuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = customer.ToString(CultureInfo.InvariantCulture), ["fields"] = new JsonObject { ["phon"] = "1" } }, HttpStatusCode.BadRequest, "phon");

        await SilentEditAsync(salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = account, ["fields"] = new JsonObject { ["Phone"] = "555" } });
        await SilentEditAsync(netsuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = customer.ToString(CultureInfo.InvariantCulture), ["fields"] = new JsonObject { ["phone"] = "555" } });
        Assert.Equal("555", salesforce.Get(account)!["Phone"]!.GetValue<string>());
        Assert.Equal(stamp, salesforce.Get(account)!["LastModifiedDate"]!.GetValue<string>());
        Assert.Equal("555", netsuite.GetCustomer(customer)!["phone"]!.GetValue<string>());
        Assert.Equal(nsStamp, netsuite.GetCustomer(customer)!["lastModifiedDate"]?.ToString());
        Assert.Equal(0, salesforce.Stats.Writes);
        Assert.Equal(0, netsuite.Stats.Writes);
    }

    [Fact]
    public async Task ReconcileCli_DryRunWithoutRepairOrCapBelowOne_IsAUsageErrorNamingTheOption()
    {
        var dryRun = await CliProcess.RunAsync("reconcile", "--config", "examples/salesforce-netsuite.json", "--dry-run");
        Assert.Equal(2, dryRun.ExitCode);
        Assert.Contains("use it with --repair", dryRun.Stderr, StringComparison.Ordinal);
        var cap = await CliProcess.RunAsync("reconcile", "--config", "examples/salesforce-netsuite.json", "--max-api-calls", "0");
        Assert.Equal(2, cap.ExitCode);
        Assert.Contains("--max-api-calls 0 is too small", cap.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ReconcileSchedule_NotACronExpression_ConfigProblemNamingTheKey_EmptyTurnsItOff()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = "Host=127.0.0.1;Username=x;Password=y;Database=z",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "target",
            ["Reconcile:Schedule"] = "every night",
        };
        var problems = ConnectorConfig.BindAll(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()).Problems;
        Assert.Contains(problems, p => p.Contains("Reconcile:Schedule = \"every night\" is not a cron expression", StringComparison.Ordinal));

        settings["Reconcile:Schedule"] = "";
        var (options, none) = ConnectorConfig.BindAll(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        Assert.Empty(none);
        // A system read inbound: the job exists with a schedule, not without one.
        options.Connectors["reads"] = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["reads:Type"] = "netsuite", ["reads:Inbound:Enabled"] = "true" }).Build().GetSection("reads");
        Assert.Null(ReconcileJob.Create(options, null!, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
        options.Reconcile.Schedule = "0 3 * * *";
        Assert.NotNull(ReconcileJob.Create(options, null!, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
    }

    private static async Task<(string AccountId, long InternalId)> PairAsync(TwoWayRig rig, string name, string phone)
    {
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = name, ["Phone"] = phone });
        long internalId = 0;
        await rig.WaitUntilAsync($"{name} linked in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            internalId = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return internalId != 0 && rig.Salesforce.Get(accountId)!["NetSuite_Id__c"] is not null;
        });
        return (accountId, internalId);
    }

    private static async Task SilentEditAsync(Uri sandbox, JsonObject body)
    {
        using var response = await Http.PostAsJsonAsync(new Uri(sandbox, "_sandbox/silent-edit"), body);
        Assert.True(response.IsSuccessStatusCode, $"silent-edit {body.ToJsonString()}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static async Task AssertRefusedAsync(Uri sandbox, JsonObject body, HttpStatusCode status, string named)
    {
        using var response = await Http.PostAsJsonAsync(new Uri(sandbox, "_sandbox/silent-edit"), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"silent-edit {body.ToJsonString()}: {(int)response.StatusCode} {text}");
        Assert.Contains(named, text, StringComparison.Ordinal);
    }
}
