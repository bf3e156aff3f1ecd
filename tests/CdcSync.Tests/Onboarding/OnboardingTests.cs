using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Inbound;
using CdcSync.Onboarding;
using CdcSync.Tests.EndToEnd;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Onboarding;

/// <summary>
/// Onboarding two systems that already hold data, end to end over both sandboxes and a real hub:
/// the automatic onboarding of the worker's first run, the CLI (onboard, --dry-run, matches), the
/// review queue holding ambiguous records, and a load interrupted and resumed.
/// </summary>
public sealed class OnboardingTests
{
    private const int Shared = 30;
    private const int OnlySalesforce = 10;
    private const int OnlyNetSuite = 10;

    [Fact]
    public async Task FirstRun_ThirtySharedTenAndTenOneSided_EndsWithFiftyLinkedOnEachSideNothingDuplicated()
    {
        await using var rig = await PrepareAsync();
        SeedCompanies(rig);

        await rig.StartPipelineAsync();

        var expected = Shared + OnlySalesforce + OnlyNetSuite;
        await rig.WaitUntilAsync("every Account to carry its NetSuite customer's id", () => Task.FromResult(
            rig.Salesforce.Records("Account").Count(a => a["NetSuite_Id__c"] is not null) == expected && rig.NetSuite.CustomerCount == expected), TimeSpan.FromSeconds(120));
        await rig.QuietAsync();

        var accounts = rig.Salesforce.Records("Account");
        Assert.Equal(expected, accounts.Count);
        Assert.Equal(expected, rig.NetSuite.CustomerCount);
        // Linked one to one: every Account points at a distinct, existing customer.
        var pointed = accounts.Select(a => long.Parse(a["NetSuite_Id__c"]!.GetValue<string>(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(expected, pointed.Distinct().Count());
        Assert.All(pointed, id => Assert.NotNull(rig.NetSuite.GetCustomer(id)));
        // Each shared company kept its one record on both sides (the name differing in case and spacing too).
        Assert.Single(accounts, a => a["Name"]!.GetValue<string>() == "Globex Corporation");
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM sf_accounts s WHERE cdc.linked_hub_id('sf_accounts', s.hub_id, 'ns_customers') IS NULL"));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers n WHERE cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts') IS NULL"));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.onboarding WHERE phase <> 'settled'"));
    }

    [Fact]
    public async Task TwoCustomersMatchingOneAccount_HeldForReview_UntilAcceptedAndRejected()
    {
        await using var rig = await PrepareAsync();
        var tie = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Tie Company" });
        var solo = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Solo Industries", ["Phone"] = "(212) 555-0100" });
        var first = rig.NetSuite.SeedCustomer(Customer("Tie Company", null));
        var second = rig.NetSuite.SeedCustomer(Customer("TIE  company", null));
        rig.NetSuite.SeedCustomer(Customer("Solo Industries", "212.555.0100"));
        var config = await rig.WriteConfigFileAsync();

        var onboard = await CliProcess.RunAsync("onboard", "--config", config);
        Assert.True(onboard.ExitCode == 1, $"onboard exit {onboard.ExitCode}: {onboard.Stdout}{onboard.Stderr}");
        Assert.Contains("wait for review", onboard.Stdout, StringComparison.Ordinal);

        await rig.StartPipelineAsync();
        await rig.WaitUntilAsync("Solo Industries linked", () => Task.FromResult(rig.Salesforce.Get(solo)!["NetSuite_Id__c"] is not null));
        await rig.QuietAsync();
        // Held: nothing created for either customer or the account, nothing linked.
        Assert.Equal(2, rig.Salesforce.Records("Account").Count);
        Assert.Equal(3, rig.NetSuite.CustomerCount);
        Assert.Null(rig.Salesforce.Get(tie)!["NetSuite_Id__c"]);
        var tieHub = (await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", tie))!.Value;
        var firstHub = await CustomerHubAsync(rig, first);
        var secondHub = await CustomerHubAsync(rig, second);
        Assert.Null(await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('sf_accounts', $1)", tieHub));
        Assert.Null(await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('ns_customers', $1)", firstHub));
        Assert.Null(await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('ns_customers', $1)", secondHub));

        var list = await CliProcess.RunAsync("matches", "list", "--config", config);
        Assert.True(list.ExitCode == 1, $"matches list exit {list.ExitCode}: {list.Stdout}{list.Stderr}");
        var unknown = await CliProcess.RunAsync("matches", "accept", "999999", "--config", config);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no match candidate with id 999999", unknown.Stderr, StringComparison.Ordinal);

        // Whichever side the SQL keeps as the record, the row pairing the first customer with the account.
        var (id, with) = await ReviewRowAsync(rig, firstHub, tieHub) ?? throw new Xunit.Sdk.XunitException("no review row pairs the first customer with the account");
        var show = await CliProcess.RunAsync("matches", "show", id.ToString(CultureInfo.InvariantCulture), "--config", config);
        Assert.True(show.ExitCode == 0, $"matches show exit {show.ExitCode}: {show.Stdout}{show.Stderr}");
        Assert.Contains(with.ToString(), show.Stdout, StringComparison.Ordinal);
        var accept = await CliProcess.RunAsync("matches", "accept", id.ToString(CultureInfo.InvariantCulture), "--with", with.ToString(), "--config", config);
        Assert.True(accept.ExitCode == 0, $"matches accept exit {accept.ExitCode}: {accept.Stdout}{accept.Stderr}");
        await rig.WaitUntilAsync("the account linked to the first customer", () => Task.FromResult(rig.Salesforce.Get(tie)!["NetSuite_Id__c"]?.GetValue<string>() == first.ToString(CultureInfo.InvariantCulture)));

        if (await ReviewRowAsync(rig, secondHub, null) is { } other)
        {
            var reject = await CliProcess.RunAsync("matches", "reject", other.Id.ToString(CultureInfo.InvariantCulture), "--config", config);
            Assert.True(reject.ExitCode == 0, $"matches reject exit {reject.ExitCode}: {reject.Stdout}{reject.Stderr}");
        }

        await rig.WaitUntilAsync("the second customer created as a new Account", () => Task.FromResult(
            rig.Salesforce.Records("Account").Any(a => a["NetSuite_Id__c"]?.GetValue<string>() == second.ToString(CultureInfo.InvariantCulture))));
        await rig.QuietAsync();
        Assert.Equal(3, rig.Salesforce.Records("Account").Count);
        Assert.Equal(3, rig.NetSuite.CustomerCount);
        Assert.Equal(0, (await CliProcess.RunAsync("matches", "list", "--config", config)).ExitCode);
    }

    [Fact]
    public async Task Unlink_AWrongAutomaticMatch_BothRecordsStandAloneHeldForReview()
    {
        await using var rig = await PrepareAsync();
        // Name and phone agree: a confident match by the shipped rules (a name alone goes to review).
        var account = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Initrode", ["Phone"] = "(512) 555-0175" });
        var customer = rig.NetSuite.SeedCustomer(Customer("INITRODE", "5125550175"));
        var config = await rig.WriteConfigFileAsync();
        var onboard = await CliProcess.RunAsync("onboard", "--config", config);
        Assert.True(onboard.ExitCode == 0, $"onboard exit {onboard.ExitCode}: {onboard.Stdout}{onboard.Stderr}");
        var accountHub = (await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", account))!.Value;
        var customerHub = await CustomerHubAsync(rig, customer);
        var link = (await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('sf_accounts', $1)", accountHub))!.Value;
        Assert.Equal(link, await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('ns_customers', $1)", customerHub));

        var unknown = await CliProcess.RunAsync("matches", "unlink", Guid.NewGuid().ToString(), "--config", config);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no link", unknown.Stderr, StringComparison.Ordinal);
        var unlink = await CliProcess.RunAsync("matches", "unlink", link.ToString(), "--config", config);
        Assert.True(unlink.ExitCode == 0, $"matches unlink exit {unlink.ExitCode}: {unlink.Stdout}{unlink.Stderr}");

        Assert.Null(await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('sf_accounts', $1)", accountHub));
        Assert.Null(await rig.ScalarAsync<Guid?>("SELECT cdc.link_id_of('ns_customers', $1)", customerHub));
        Assert.Equal(1, (await CliProcess.RunAsync("matches", "list", "--config", config)).ExitCode);
        Assert.Equal(1L, await rig.ScalarAsync<long>("SELECT count(*) FROM sf_accounts"));   // not re-created
        Assert.Equal(1L, await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers"));
    }

    [Fact]
    public async Task Onboard_WhileAWorkerHoldsTheSlot_RefusesWithExitCode2_DryRunStillRuns()
    {
        await using var rig = await PrepareAsync();
        var config = await rig.WriteConfigFileAsync();
        await using var lease = await CdcSync.Operations.LeaderLease.TryAcquireAsync(rig.Config["Hub:ConnectionString"]!, rig.Config["Hub:Slot"]!, CancellationToken.None);
        Assert.NotNull(lease);

        var refused = await CliProcess.RunAsync("onboard", "--config", config);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("a worker runs on slot", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.onboarding"));
        Assert.Equal(0, (await CliProcess.RunAsync("onboard", "--config", config, "--dry-run")).ExitCode);
    }

    [Fact]
    public async Task DryRun_ByTheCli_WritesNothingToEitherSystem_AndLeavesTheHubAsItWas()
    {
        await using var rig = await PrepareAsync();
        SeedCompanies(rig);
        var config = await rig.WriteConfigFileAsync();
        var before = await HubSnapshotAsync(rig);

        var run = await CliProcess.RunAsync("onboard", "--config", config, "--dry-run", "--json");

        Assert.True(run.ExitCode == 0, $"onboard --dry-run exit {run.ExitCode}: {run.Stdout}{run.Stderr}");
        var counts = JsonNode.Parse(run.Stdout)!["counts"]!;
        Assert.Equal(Shared, counts["matched"]!.GetValue<int>());
        Assert.Equal(0, counts["review"]!.GetValue<int>());
        Assert.Equal(OnlyNetSuite, counts["create_in_salesforce"]!.GetValue<int>());
        Assert.Equal(OnlySalesforce, counts["create_in_netsuite"]!.GetValue<int>());
        Assert.Equal(0, rig.Salesforce.Stats.Writes);
        Assert.Equal(0, rig.NetSuite.Stats.Writes);
        Assert.Equal(before, await HubSnapshotAsync(rig));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", rig.Config["Hub:Slot"]!));

        var text = await CliProcess.RunAsync("onboard", "--config", config, "--dry-run");
        Assert.True(text.ExitCode == 0, $"onboard --dry-run exit {text.ExitCode}: {text.Stderr}");
        Assert.Contains("matched automatically", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("Dry run: nothing was written", text.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, await HubSnapshotAsync(rig));
    }

    [Fact]
    public async Task LoadCancelledMidway_SecondRunResumesAfterTheLastPage_AndSettles()
    {
        await using var rig = await PrepareAsync(new Dictionary<string, string?> { ["Connectors:netsuite:PageSize"] = "10" });
        SeedCompanies(rig);
        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(rig.Config).Build());
        var service = new OnboardingService(rig.Hub, NullLogger<OnboardingService>.Instance);

        using var cancel = new CancellationTokenSource();
        var first = Connectors(options, rig.Hub, netsuite => new CancelAfterPages(netsuite, 2, cancel));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => service.RunAsync(first, dryRun: false, null, cancel.Token));
        Dispose(first);
        var loadedBefore = await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers");
        Assert.InRange(loadedBefore, 1, Shared + OnlyNetSuite - 1);
        Assert.Equal("loading", await rig.ScalarAsync<string>("SELECT phase FROM cdc.onboarding WHERE connector = 'netsuite'"));
        Assert.Equal(["netsuite", "salesforce"], (await service.PendingAsync(["salesforce", "netsuite"], CancellationToken.None)).Order(StringComparer.Ordinal));

        var second = Connectors(options, rig.Hub, c => c);
        var result = await service.RunAsync(second, dryRun: false, null, CancellationToken.None);
        Dispose(second);

        Assert.True(result.IsSettled);
        Assert.Contains("netsuite", result.Connectors);
        // Resumed: the pages written before the cancellation were not read again.
        Assert.True(result.Loaded["netsuite"] <= Shared + OnlyNetSuite - loadedBefore, $"read {result.Loaded["netsuite"]} after {loadedBefore} were loaded");
        Assert.Equal(Shared + OnlySalesforce + OnlyNetSuite, await rig.ScalarAsync<long>("SELECT count(*) FROM sf_accounts"));
        Assert.Equal(Shared + OnlySalesforce + OnlyNetSuite, await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers"));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers n WHERE cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts') IS NULL"));
        Assert.Empty(await service.PendingAsync(["salesforce", "netsuite"], CancellationToken.None));
        Assert.Equal(0, rig.Salesforce.Stats.Writes);   // no worker ran: the hub holds what the systems will get
        Assert.Equal(0, rig.NetSuite.Stats.Writes);
    }

    private static async Task<TwoWayRig> PrepareAsync(IReadOnlyDictionary<string, string?>? settings = null, [System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        return await TwoWayRig.CreateAsync(settings: settings, name: name);
    }

    /// <summary>
    /// The issue's case: companies present in both systems (same names, phones formatted differently,
    /// one name differing only in case and spacing), some only in Salesforce, some only in NetSuite;
    /// none carries the other's id.
    /// </summary>
    private static void SeedCompanies(TwoWayRig rig)
    {
        for (var i = 0; i < Shared; i++)
        {
            var name = i == 0 ? "Globex Corporation" : $"Shared Company {i:D2}";
            var other = i == 0 ? "GLOBEX  corporation" : name;
            rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = name, ["Phone"] = $"(415) 555-{1000 + i}" });
            rig.NetSuite.SeedCustomer(Customer(other, $"415.555.{1000 + i}"));
        }

        for (var i = 0; i < OnlySalesforce; i++)
        {
            rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = $"Salesforce Only {i:D2}", ["Phone"] = $"(646) 555-{2000 + i}" });
        }

        for (var i = 0; i < OnlyNetSuite; i++)
        {
            rig.NetSuite.SeedCustomer(Customer($"NetSuite Only {i:D2}", $"312-555-{3000 + i}"));
        }
    }

    private static JsonObject Customer(string name, string? phone)
    {
        var customer = new JsonObject { ["companyName"] = name, ["subsidiary"] = new JsonObject { ["id"] = "1" } };
        if (phone is not null)
        {
            customer["phone"] = phone;
        }

        return customer;
    }

    private static async Task<Guid> CustomerHubAsync(TwoWayRig rig, long internalId) =>
        (await rig.ScalarAsync<Guid?>("SELECT hub_id FROM ns_customers WHERE internalid = $1", internalId.ToString(CultureInfo.InvariantCulture)))!.Value;

    /// <summary>An open review row with <paramref name="record"/> on either side (and <paramref name="candidate"/> on the other, when given): its id and the other side's hub id.</summary>
    private static async Task<(long Id, Guid With)?> ReviewRowAsync(TwoWayRig rig, Guid record, Guid? candidate)
    {
        await using var cmd = rig.Hub.CreateCommand(
            """
            SELECT id, hub_b FROM cdc.match_candidates
            WHERE status = 'review' AND ((hub_a = $1 AND ($2::uuid IS NULL OR hub_b = $2)) OR (hub_b = $1 AND ($2::uuid IS NULL OR hub_a = $2)))
            ORDER BY id LIMIT 1
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = record });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)candidate ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid });
        await using var reader = await cmd.ExecuteReaderAsync();
        return await reader.ReadAsync() ? (reader.GetInt64(0), reader.GetGuid(1)) : null;
    }

    /// <summary>Every row of the staging tables and the onboarding state, as text, to compare before and after.</summary>
    private static async Task<string> HubSnapshotAsync(TwoWayRig rig) =>
        (await rig.ScalarAsync<string>(
            """
            SELECT concat_ws('|',
                (SELECT count(*) FROM sf_accounts), (SELECT count(*) FROM sf_contacts), (SELECT count(*) FROM ns_customers),
                (SELECT count(*) FROM cdc.inbound_cursors), (SELECT count(*) FROM cdc.identity_links),
                (SELECT count(*) FROM cdc.onboarding), (SELECT count(*) FROM cdc.match_candidates),
                (SELECT count(*) FROM cdc.audit_log), (SELECT count(*) FROM cdc.conflicts),
                -- Origins are the server's (other tests' hubs add theirs): this hub's only.
                (SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'cdcsync:' || current_database() || ':%'))
            """))!;

    private static List<IInboundConnector> Connectors(CdcSyncOptions options, NpgsqlDataSource hub, Func<IInboundConnector, IInboundConnector> wrapNetSuite) =>
        options.Connectors.Keys
            .Select(n => ConnectorRegistry.Default.CreateInbound(n, options.Connectors[n], hub, NullLoggerFactory.Instance))
            .OfType<IInboundConnector>()
            .Select(c => c.Name == "netsuite" ? wrapNetSuite(c) : c)
            .ToList();

    private static void Dispose(IEnumerable<IInboundConnector> connectors)
    {
        foreach (var c in connectors)
        {
            (c as IDisposable)?.Dispose();
        }
    }

    /// <summary>The real NetSuite connector, with the run cancelled as it asks for the page after <paramref name="pages"/> pages (a kill between two pages).</summary>
    private sealed class CancelAfterPages(IInboundConnector inner, int pages, CancellationTokenSource cancel) : IInboundConnector, IDisposable
    {
        private int _read;

        public string Name => inner.Name;

        public InboundOptions Options => inner.Options;

        public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken)
        {
            if (++_read > pages)
            {
                await cancel.CancelAsync();
                cancellationToken.ThrowIfCancellationRequested();
            }

            return await inner.ReadChangesAsync(cursor, cancellationToken);
        }

        public void Dispose() => (inner as IDisposable)?.Dispose();
    }
}
