using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Inbound;
using CdcSync.Replication;
using CdcSync.Tests.EndToEnd;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// A Salesforce edit of an account made right after its NetSuite customer was created, before the
/// NetSuite poll's first read-back of that customer reached the hub. The read-back holds what we
/// created the customer with: the echo of our own write, never a NetSuite edit, so it must not undo
/// the Salesforce edit in the hub, in NetSuite or (written back) in Salesforce. Each order is fixed
/// by holding the read page and the outbound writes, not by timing.
/// </summary>
public sealed class CreateReadBackTests
{
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(60);
    private static readonly DateTimeOffset T1 = SyncHub.T0.AddMinutes(1);
    private static readonly DateTimeOffset T2 = SyncHub.T0.AddMinutes(2);
    private static readonly DateTimeOffset T3 = SyncHub.T0.AddMinutes(3);

    /// <summary>
    /// The customer is created and acknowledged; the poll reads it (old city) and its page waits; the
    /// Salesforce city edit is written to NetSuite and acknowledged, in the same second as the create
    /// (NetSuite stamps to the second; its clock is stopped here so that they always share it); then
    /// the page is applied. It carries no stamp older than our write's, but the value from before it.
    /// </summary>
    [Fact]
    public async Task ASalesforceEditAfterTheCreate_IsNotUndoneByTheCustomersFirstReadBack_ReadBeforeOurWriteOfTheEdit()
    {
        var readBack = new HeldInboundPage();
        var editWrite = new EditBeforeWrite("ns_customers");
        await using var rig = await TwoWayRig.StartAsync(
            wrapOutbound: c => c.Name == "netsuite" ? editWrite.Wrap(c) : c,
            wrapInbound: c => c.Name == "netsuite" ? readBack.Wrap(c) : c);
        rig.NetSuite.Options.TimeProvider = new StoppedClock(TimeProvider.System.GetUtcNow());
        readBack.Arm(r => r.Table == "ns_customers" && r.Values.GetValueOrDefault("companyname") as string == "Echo Co");
        editWrite.Arm(() => readBack.Read.WaitAsync(Cap));

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Echo Co", ["BillingCity"] = "Oakland" });
        var customer = await CustomerAsync(rig, accountId);
        await rig.WaitUntilAsync("the create acknowledged (internal id written back)", async () =>
            await rig.ScalarAsync<string?>("SELECT internalid FROM ns_customers WHERE internalid = $1", Id(customer)) is not null);
        await readBack.Read.WaitAsync(Cap);
        Assert.Contains("Oakland", HeldAddressBook(readBack), StringComparison.Ordinal);

        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "San Jose" });
        await rig.WaitUntilAsync("the edit written to NetSuite and acknowledged", async () =>
            editWrite.Fired && NetSuiteCity(rig, customer) == "San Jose" && await OutboundWritesAsync(rig, customer) >= 2);

        readBack.Release();
        await AssertTheEditStandsAsync(rig, accountId, customer);
    }

    /// <summary>
    /// The Salesforce edit reaches the hub before the create is sent (so before its internal id is
    /// written back): the create carries the old city, the edit follows as a second upsert by external
    /// id, a second later by NetSuite's clock. The poll's page holding the created customer was read
    /// between the two and is applied last: older than our second write, which the base must know.
    /// </summary>
    [Fact]
    public async Task ASalesforceEditBeforeTheCreatesIdWriteBack_IsNotUndoneByTheCustomersFirstReadBack()
    {
        var readBack = new HeldInboundPage();
        var create = new EditBeforeWrite("ns_customers", ChangeKind.Insert);
        var editWrite = new EditBeforeWrite("ns_customers");
        await using var rig = await TwoWayRig.StartAsync(
            wrapOutbound: c => c.Name == "netsuite" ? editWrite.Wrap(create.Wrap(c)) : c,
            wrapInbound: c => c.Name == "netsuite" ? readBack.Wrap(c) : c);
        var clock = new StoppedClock(TimeProvider.System.GetUtcNow());
        rig.NetSuite.Options.TimeProvider = clock;
        readBack.Arm(r => r.Table == "ns_customers" && r.Values.GetValueOrDefault("companyname") as string == "Edit First Co");
        editWrite.Arm(async () =>
        {
            await readBack.Read.WaitAsync(Cap);
            clock.At += TimeSpan.FromSeconds(1);
        });
        string? accountId = null;
        create.Arm(async () =>
        {
            rig.Salesforce.Update(accountId!, new JsonObject { ["BillingCity"] = "San Jose" });
            await rig.WaitUntilAsync("the edit in the hub's customer", async () =>
                await rig.ScalarAsync<string?>(
                    "SELECT (cdc.ns_billing_address(addressbook)).city FROM ns_customers WHERE hub_id = cdc.linked_hub_id('sf_accounts', (SELECT hub_id FROM sf_accounts WHERE id = $1), 'ns_customers')",
                    accountId!) == "San Jose");
        });

        accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Edit First Co", ["BillingCity"] = "Oakland" });
        var customer = await CustomerAsync(rig, accountId);
        await readBack.Read.WaitAsync(Cap);
        Assert.True(create.Fired);
        Assert.Contains("Oakland", HeldAddressBook(readBack), StringComparison.Ordinal);
        await rig.WaitUntilAsync("the edit written to NetSuite and acknowledged", async () =>
            editWrite.Fired && NetSuiteCity(rig, customer) == "San Jose" && await OutboundWritesAsync(rig, customer) >= 2);

        readBack.Release();
        await AssertTheEditStandsAsync(rig, accountId, customer);
    }

    /// <summary>The hub's rule behind the first case: a version stamped like our write, holding the value from before it, is no edit; what NetSuite made of our write still is its own.</summary>
    [Fact]
    public async Task AVersionStampedInTheSecondOfOurWrite_HoldingTheValueFromBeforeIt_IsNotTakenForAnEdit()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (_, customer) = await hub.SeedLinkedAsync("001E", "550", "Echo", "4155555000", "Fresno");
        await hub.SalesforceAsync("001E", T1, ("name", "Echo"), ("phone", "4155555011"), ("billingcity", "Fresno"));
        await hub.ExecuteAsync(
            "SELECT cdc.record_outbound('netsuite', 'ns_customers', $1::text, '550', 'update', $2::jsonb, NULL, $3)",
            customer, """{"phone": {"before": "4155555000", "after": "4155555011"}}""", T2);

        // Read before our write landed, in the same second: the phone from before it.
        await hub.NetSuiteAsync("550", T2, ("phone", "4155555000"));
        Assert.Equal("4155555011", await hub.NsAsync("550", "phone"));
        Assert.Equal("4155555011", await hub.SfAsync("001E", "phone"));
        Assert.Equal(0L, await hub.ConflictCountAsync());

        // Read after it: NetSuite's form of the phone we wrote reaches the hub as before, and a later edit is an edit.
        await hub.NetSuiteAsync("550", T2, ("phone", "(415) 555-5011"));
        Assert.Equal("(415) 555-5011", await hub.NsAsync("550", "phone"));
        await hub.NetSuiteAsync("550", T3, ("phone", "4155555000"));
        Assert.Equal("4155555000", await hub.NsAsync("550", "phone"));
        Assert.Equal("4155555000", await hub.SfAsync("001E", "phone"));
        Assert.Equal(0L, await hub.ConflictCountAsync());
    }

    /// <summary>The rule behind a read-back applied before the create was acknowledged (no base yet): the hub's newer value stays.</summary>
    [Fact]
    public async Task AReadBackAppliedBeforeTheCreatesAcknowledgement_DoesNotUndoANewerEdit()
    {
        await using var hub = await SyncHub.CreateAsync();
        await hub.SalesforceAsync("001D", SyncHub.T0, ("name", "Delta"), ("phone", "4155556000"), ("billingcity", "Fresno"));
        var account = await hub.ScalarAsync<Guid>("SELECT hub_id FROM sf_accounts WHERE id = '001D'");
        await hub.SalesforceAsync("001D", T2, ("name", "Delta"), ("phone", "4155556011"), ("billingcity", "Fresno"));

        // NetSuite created the customer at T1 with the first phone; the poll meets it by external id.
        var page = new Dictionary<string, object?>
        {
            ["externalid"] = "sf-" + account,
            ["internalid"] = "560",
            ["companyname"] = "Delta",
            ["phone"] = "4155556000",
            ["entityid"] = "CUST560",
            ["cdc_source_modified_at"] = T1,
        };
        await hub.Staging.ApplyInboundAsync("netsuite", [new InboundRecord("ns_customers", "externalid", page, Deleted: false)], cursor: null, CancellationToken.None);

        Assert.Equal("4155556011", await hub.NsAsync("560", "phone"));
        Assert.Equal("CUST560", await hub.NsAsync("560", "entityid"));
        Assert.Equal("4155556011", await hub.SfAsync("001D", "phone"));
        Assert.Equal(0L, await hub.ConflictCountAsync());
    }

    private static async Task AssertTheEditStandsAsync(TwoWayRig rig, string accountId, long customer)
    {
        await rig.WaitUntilAsync("the read-back applied", async () =>
            await rig.ScalarAsync<string?>("SELECT entityid FROM ns_customers WHERE internalid = $1", Id(customer)) is not null);
        await rig.QuietAsync();

        Assert.Equal("San Jose", rig.Salesforce.Get(accountId)?["BillingCity"]?.ToString());
        Assert.Equal("San Jose", NetSuiteCity(rig, customer));
        Assert.Equal("San Jose", await rig.ScalarAsync<string?>("SELECT billingcity FROM sf_accounts WHERE id = $1", accountId));
        Assert.Equal("San Jose", await rig.ScalarAsync<string?>("SELECT (cdc.ns_billing_address(addressbook)).city FROM ns_customers WHERE internalid = $1", Id(customer)));
        // The hub never took the old city back from the read-back, and no write took it anywhere after the create.
        Assert.Equal(0L, await rig.ScalarAsync<long>(
            "SELECT count(*) FROM cdc.audit_log WHERE direction = 'inbound' AND object = 'ns_customers' AND (changes -> 'addressbook' -> 'after')::text LIKE '%Oakland%'"));
        Assert.Equal(0L, await rig.ScalarAsync<long>(
            "SELECT count(*) FROM cdc.audit_log WHERE direction = 'outbound' AND object = 'sf_accounts' AND changes -> 'billingcity' ->> 'after' = 'Oakland'"));
        Assert.Equal(1L, await rig.ScalarAsync<long>(
            "SELECT count(*) FROM cdc.audit_log WHERE direction = 'outbound' AND object = 'ns_customers' AND record_id = $1 AND (changes -> 'addressbook' -> 'after')::text LIKE '%Oakland%'", Id(customer)));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts WHERE field IN ('addressbook', 'billingcity')"));
    }

    private static async Task<long> CustomerAsync(TwoWayRig rig, string accountId)
    {
        long customer = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            customer = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return customer != 0;
        });
        return customer;
    }

    private static Task<long> OutboundWritesAsync(TwoWayRig rig, long customer) =>
        rig.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE direction = 'outbound' AND object = 'ns_customers' AND record_id = $1", Id(customer));

    private static string? NetSuiteCity(TwoWayRig rig, long customer) =>
        (rig.NetSuite.GetCustomer(customer)?["addressBook"]?["items"] as JsonArray)?
            .FirstOrDefault(l => l?["defaultBilling"]?.GetValue<bool>() == true)?["addressBookAddress"]?["city"]?.ToString();

    private static string HeldAddressBook(HeldInboundPage page) =>
        page.Records.First(r => r.Table == "ns_customers").Values.GetValueOrDefault("addressbook")?.ToString() ?? "";

    private static string Id(long customer) => customer.ToString(CultureInfo.InvariantCulture);

    /// <summary>A clock that stands still (every NetSuite write gets the same stamp) until a test moves it.</summary>
    private sealed class StoppedClock(DateTimeOffset at) : TimeProvider
    {
        public DateTimeOffset At { get; set; } = at;

        public override DateTimeOffset GetUtcNow() => At;
    }
}
