using System.CommandLine;
using System.Text.Json;
using CdcSync.Cli.Commands;
using CdcSync.Conflicts;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// Conflict detection and policies in the hub's SQL (transforms/005_sync_tracking.sql), driven by
/// inbound pages written the way the pipeline writes them (StagingWriter under the connector's
/// replication origin) against a real PostgreSQL.
/// </summary>
[Collection(ConsoleCapture.Name)]
public sealed class ConflictPolicyTests
{
    private static readonly DateTimeOffset T1 = SyncHub.T0.AddMinutes(1);
    private static readonly DateTimeOffset T2 = SyncHub.T0.AddMinutes(2);
    private static readonly DateTimeOffset T3 = SyncHub.T0.AddMinutes(3);

    [Fact]
    public async Task EditsInOneSystemOnly_FlowBothWays_AndAreNeverConflicts()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001A", "500", "Acme", "4155550100", "Oakland");

        await hub.SalesforceAsync("001A", T1, ("name", "Acme"), ("phone", "4155550111"), ("billingcity", "Oakland"));
        Assert.Equal("4155550111", await hub.NsAsync("500", "phone"));

        // NetSuite edits another field; its page also carries the phone it still holds (the old
        // one): that stale value must not revert the pending Salesforce edit.
        await hub.NetSuiteAsync("500", T2, ("companyname", "Acme Corp"), ("phone", "4155550100"));
        Assert.Equal("Acme Corp", await hub.SfAsync("001A", "name"));
        Assert.Equal("4155550111", await hub.NsAsync("500", "phone"));
        Assert.Equal("4155550111", await hub.SfAsync("001A", "phone"));

        Assert.Equal(0, await hub.ConflictCountAsync());
    }

    [Fact]
    public async Task StaleReRead_OfAValueTheSystemDidNotChange_KeepsThePendingHubValue()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001B", "501", "Bolt", "4155550200", "Fresno");

        await hub.NetSuiteAsync("501", T1, ("phone", "4155550222"));
        Assert.Equal("4155550222", await hub.SfAsync("001B", "phone"));

        // Salesforce re-reads the account (overlap window) before the outbound write landed.
        await hub.SalesforceAsync("001B", T2, ("name", "Bolt"), ("phone", "4155550200"), ("billingcity", "Fresno"));
        Assert.Equal("4155550222", await hub.SfAsync("001B", "phone"));
        Assert.Equal(0, await hub.ConflictCountAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LastWriteWins_DecidesByTheSystemsOwnStamps_NotByPollOrder(bool salesforceEditIsLater)
    {
        await using var hub = await SyncHub.CreateAsync(nameof(LastWriteWins_DecidesByTheSystemsOwnStamps_NotByPollOrder) + salesforceEditIsLater);
        await hub.SeedLinkedAsync("001C", "502", "Cobalt", "4155550300", "Reno");

        // NetSuite's edit is polled first; Salesforce's, polled second, may be older or newer.
        await hub.NetSuiteAsync("502", T2, ("phone", "4155550333"));
        await hub.SalesforceAsync("001C", salesforceEditIsLater ? T3 : T1, ("name", "Cobalt"), ("phone", "4155550399"), ("billingcity", "Reno"));

        var winner = salesforceEditIsLater ? "4155550399" : "4155550333";
        Assert.Equal(winner, await hub.SfAsync("001C", "phone"));
        Assert.Equal(winner, await hub.NsAsync("502", "phone"));

        var conflict = Assert.Single(await new ConflictService(hub.Source).ListAsync(all: true, recordKey: null, limit: 10, CancellationToken.None));
        Assert.Equal(("sf_accounts", "phone", "last_write_wins", "resolved"), (conflict.Object, conflict.Field, conflict.Policy, conflict.Status));
        Assert.Equal("\"4155550300\"", conflict.BaseValue);
        Assert.Equal("\"4155550333\"", conflict.HubValue);
        Assert.Equal("\"4155550399\"", conflict.IncomingValue);
        Assert.Equal($"\"{winner}\"", conflict.DecidedValue);
        Assert.Equal(("netsuite", "salesforce"), (conflict.HubSystem, conflict.IncomingSystem));
        Assert.Equal(T2.UtcDateTime, conflict.HubModifiedAt);
        Assert.Equal((salesforceEditIsLater ? T3 : T1).UtcDateTime, conflict.IncomingModifiedAt);
        Assert.Equal(salesforceEditIsLater ? "took salesforce" : "kept netsuite", conflict.Decision);
    }

    [Fact]
    public async Task AStaleWriteQueuedBeforeTheDecision_LandingAfterIt_IsFollowedByTheDecision_Once()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (account, _) = await hub.SeedLinkedAsync("001P", "515", "Papa", "4155551600", "Alameda");
        await hub.NetSuiteAsync("515", T1, ("phone", "4155551611"));           // queued for Salesforce: 611
        await hub.SalesforceAsync("001P", T2, ("name", "Papa"), ("phone", "4155551622"), ("billingcity", "Alameda"));
        Assert.Equal("4155551622", await hub.SfAsync("001P", "phone"));        // last write wins: Salesforce's edit

        // The queued write of 611 reaches Salesforce after the decision and is acknowledged.
        var stale = """{"phone": {"before": "4155551600", "after": "4155551611"}}""";
        var before = await hub.ScalarAsync<string>("SELECT xmin::text FROM sf_accounts WHERE id = '001P'");
        await hub.ExecuteAsync("SELECT cdc.record_outbound('salesforce', 'sf_accounts', $1::text, '001P', 'update', $2::jsonb, NULL)", account, stale);

        Assert.Equal("4155551622", await hub.SfAsync("001P", "phone"));
        Assert.NotEqual(before, await hub.ScalarAsync<string>("SELECT xmin::text FROM sf_accounts WHERE id = '001P'"));
        Assert.Equal(1L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.field_pushes WHERE object = 'sf_accounts' AND value = '\"4155551622\"'"));

        // The push's own intermediate write being acknowledged does not push again.
        await hub.ExecuteAsync("SELECT cdc.record_outbound('salesforce', 'sf_accounts', $1::text, '001P', 'update', $2::jsonb, NULL)", account, stale);
        Assert.Equal(1L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.field_pushes"));
    }

    [Fact]
    public async Task SourcePriority_NetSuiteOwnsTheBillingCity_EvenAgainstALaterSalesforceEdit()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.ExecuteAsync("INSERT INTO cdc.conflict_policies (object, field, policy, priority_system) VALUES ('sf_accounts', 'billingcity', 'source_priority', 'netsuite')");
        await hub.SeedLinkedAsync("001D", "503", "Delta", "4155550400", "Salem");

        await hub.NetSuiteAsync("503", T1, ("addressbook", """[{"defaultBilling":true,"addressBookAddress":{"city":"Eugene"}}]"""));
        Assert.Equal("Eugene", await hub.SfAsync("001D", "billingcity"));
        await hub.SalesforceAsync("001D", T3, ("name", "Delta"), ("phone", "4155550444"), ("billingcity", "Bend"));

        Assert.Equal("Eugene", await hub.SfAsync("001D", "billingcity"));
        Assert.Equal("4155550444", await hub.NsAsync("503", "phone"));       // the other field flows
        var conflict = Assert.Single(await new ConflictService(hub.Source).ListAsync(true, null, 10, CancellationToken.None));
        Assert.Equal(("billingcity", "source_priority", "kept netsuite", "\"Eugene\""), (conflict.Field, conflict.Policy, conflict.Decision, conflict.DecidedValue));
    }

    [Fact]
    public async Task CustomPolicy_SqlFunctionWrittenByTheDatabaseTeam_ChoosesTheValue()
    {
        await using var hub = await SyncHub.CreateAsync();
        // Keeps the longer name whatever the stamps say.
        await hub.ExecuteAsync(
            """
            CREATE FUNCTION public.keep_longer(base jsonb, hub jsonb, incoming jsonb, hub_at timestamptz, incoming_at timestamptz)
            RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
                SELECT CASE WHEN length(hub #>> '{}') >= length(incoming #>> '{}') THEN hub ELSE incoming END
            $$;
            INSERT INTO cdc.conflict_policies (object, field, policy, custom_function) VALUES ('ns_customers', 'companyname', 'custom', 'public.keep_longer');
            """);
        await hub.SeedLinkedAsync("001E", "504", "Echo", "4155550500", "Boise");

        await hub.SalesforceAsync("001E", T1, ("name", "Echo Industries Incorporated"), ("phone", "4155550500"), ("billingcity", "Boise"));
        await hub.NetSuiteAsync("504", T3, ("companyname", "Echo Inc"));

        Assert.Equal("Echo Industries Incorporated", await hub.NsAsync("504", "companyname"));
        var conflict = Assert.Single(await new ConflictService(hub.Source).ListAsync(true, null, 10, CancellationToken.None));
        Assert.Equal(("ns_customers", "companyname", "custom", "kept salesforce"), (conflict.Object, conflict.Field, conflict.Policy, conflict.Decision));
    }

    [Fact]
    public async Task ManualReview_HoldsOnlyThatRecordsConflictingField_UntilResolveTakesASide()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.ExecuteAsync("INSERT INTO cdc.conflict_policies (object, field, policy) VALUES ('sf_accounts', 'phone', 'manual')");
        await hub.SeedLinkedAsync("001F", "505", "Foxtrot", "4155550600", "Tacoma");
        await hub.SeedLinkedAsync("001G", "506", "Golf", "4155550700", "Yakima");

        await hub.NetSuiteAsync("505", T1, ("phone", "4155550666"));
        await hub.SalesforceAsync("001F", T2, ("name", "Foxtrot Ltd"), ("phone", "4155550677"), ("billingcity", "Tacoma"));
        // The other record and the other fields of this record flow.
        await hub.SalesforceAsync("001G", T2, ("name", "Golf"), ("phone", "4155550777"), ("billingcity", "Yakima"));

        Assert.Equal("4155550666", await hub.SfAsync("001F", "phone"));        // held: the hub keeps its value
        Assert.Equal("Foxtrot Ltd", await hub.NsAsync("505", "companyname"));
        Assert.Equal("4155550777", await hub.NsAsync("506", "phone"));
        var open = Assert.Single(await new ConflictService(hub.Source).ListAsync(false, null, 10, CancellationToken.None));
        Assert.Equal(("open", "manual", "held for review", "\"4155550677\""), (open.Status, open.Policy, open.Decision, open.IncomingValue));

        // A second Salesforce edit of the held field updates the open conflict, still held.
        await hub.SalesforceAsync("001F", T3, ("name", "Foxtrot Ltd"), ("phone", "4155550688"), ("billingcity", "Tacoma"));
        Assert.Equal("4155550666", await hub.SfAsync("001F", "phone"));
        open = Assert.Single(await new ConflictService(hub.Source).ListAsync(false, null, 10, CancellationToken.None));
        Assert.Equal("\"4155550688\"", open.IncomingValue);

        Assert.Equal(2, await CliAsync("conflicts", "resolve", open.Id.ToString(), "--take", "oracle", "--db", hub.ConnectionString));
        Assert.Equal(0, await CliAsync("conflicts", "resolve", open.Id.ToString(), "--take", "salesforce", "--db", hub.ConnectionString));
        Assert.Equal("4155550688", await hub.SfAsync("001F", "phone"));
        Assert.Equal("4155550688", await hub.NsAsync("505", "phone"));         // the decision syncs to NetSuite too
        var resolved = await new ConflictService(hub.Source).GetAsync(open.Id, CancellationToken.None);
        Assert.Equal(("resolved", "took salesforce", "\"4155550688\""), (resolved!.Status, resolved.Decision, resolved.DecidedValue));
        Assert.StartsWith("cli:", resolved.ResolvedBy);
        Assert.Equal(2, await CliAsync("conflicts", "resolve", open.Id.ToString(), "--take", "salesforce", "--db", hub.ConnectionString));
        Assert.Empty(await new ConflictService(hub.Source).ListAsync(false, null, 10, CancellationToken.None));
    }

    [Fact]
    public async Task ManualReview_TakingTheHubsSide_PushesTheValueToTheSystemThatHoldsItsOwnEdit()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.ExecuteAsync("INSERT INTO cdc.conflict_policies (object, field, policy) VALUES ('sf_accounts', 'phone', 'manual')");
        await hub.SeedLinkedAsync("001H", "507", "Hotel", "4155550800", "Vallejo");
        await hub.NetSuiteAsync("507", T1, ("phone", "4155550888"));
        await hub.SalesforceAsync("001H", T2, ("name", "Hotel"), ("phone", "4155550899"), ("billingcity", "Vallejo"));
        var id = Assert.Single(await new ConflictService(hub.Source).ListAsync(false, null, 10, CancellationToken.None)).Id;
        var before = await hub.ScalarAsync<string>("SELECT xmin::text FROM sf_accounts WHERE id = '001H'");

        Assert.Equal(0, await CliAsync("conflicts", "resolve", id.ToString(), "--take", "netsuite", "--json", "--db", hub.ConnectionString));

        Assert.Equal("4155550888", await hub.SfAsync("001H", "phone"));
        // The hub already held NetSuite's value; a new row version carries it to Salesforce.
        Assert.NotEqual(before, await hub.ScalarAsync<string>("SELECT xmin::text FROM sf_accounts WHERE id = '001H'"));
        Assert.Equal(1L, await hub.ScalarAsync<long>("SELECT count(*) FROM cdc.field_pushes WHERE object = 'sf_accounts' AND field = 'phone' AND value = '\"4155550888\"'"));
    }

    [Fact]
    public async Task Resolve_WithAValue_ParsesItAsTheColumnsType_AndRejectsTheWrongField()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.ExecuteAsync("UPDATE cdc.conflict_policies SET policy = 'manual' WHERE object = 'ns_customers' AND field = '*'");
        await hub.SeedLinkedAsync("001I", "508", "India", "4155550900", "Modesto");
        await hub.SalesforceAsync("001I", T1, ("name", "India"), ("phone", "4155550911"), ("billingcity", "Modesto"));
        await hub.NetSuiteAsync("508", T2, ("phone", "4155550922"));
        var id = Assert.Single(await new ConflictService(hub.Source).ListAsync(false, null, 10, CancellationToken.None)).Id;

        Assert.Equal(2, await CliAsync("conflicts", "resolve", id.ToString(), "--value", "email=x@example.com", "--db", hub.ConnectionString));
        Assert.Equal(2, await CliAsync("conflicts", "resolve", id.ToString(), "--db", hub.ConnectionString));
        Assert.Equal(0, await CliAsync("conflicts", "resolve", id.ToString(), "--value", "phone=4155550933", "--db", hub.ConnectionString));

        Assert.Equal("4155550933", await hub.NsAsync("508", "phone"));
        Assert.Equal("4155550933", await hub.SfAsync("001I", "phone"));
        Assert.Equal("set by operator", (await new ConflictService(hub.Source).GetAsync(id, CancellationToken.None))!.Decision);
    }

    [Fact]
    public async Task ConflictsListJson_IsParseable_AndCarriesBothValuesAndStamps()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SeedLinkedAsync("001J", "509", "Juliet", "4155551000", "Merced");
        await hub.NetSuiteAsync("509", T1, ("phone", "4155551011"));
        await hub.SalesforceAsync("001J", T2, ("name", "Juliet"), ("phone", "4155551022"), ("billingcity", "Merced"));

        var output = new StringWriter();
        var stdout = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.Equal(0, await CliAsync("conflicts", "list", "--all", "--json", "--db", hub.ConnectionString));
        }
        finally
        {
            Console.SetOut(stdout);
        }

        using var json = JsonDocument.Parse(output.ToString());
        var c = Assert.Single(json.RootElement.EnumerateArray().ToList());
        Assert.Equal("4155551011", c.GetProperty("hubValue").GetString());
        Assert.Equal("4155551022", c.GetProperty("incomingValue").GetString());
        Assert.Equal("4155551022", c.GetProperty("decidedValue").GetString());
        Assert.Equal(T2.UtcDateTime, c.GetProperty("incomingModifiedAt").GetDateTime());
    }

    private static Task<int> CliAsync(params string[] args) =>
        new RootCommand { ConflictsCommand.Create(), AuditCommand.Create() }.Parse(args).InvokeAsync();
}
