using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Tests.EndToEnd;
using NpgsqlTypes;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// Orders of events in which an older value used to be written over a newer one, each played in a
/// fixed order (no timing luck): a change written after the target's own newer edit had already
/// been read in, an edit made in the target between the outbound precondition read and the write,
/// and an inbound page read before one of our writes and applied after it. In each, the newer value
/// ends in both systems, or a conflict is recorded and its decision is in both.
/// </summary>
public sealed class OrderOfEventsTests
{
    private static readonly DateTimeOffset T1 = SyncHub.T0.AddMinutes(1);
    private static readonly DateTimeOffset T2 = SyncHub.T0.AddMinutes(2);
    private static readonly DateTimeOffset T3 = SyncHub.T0.AddMinutes(3);

    /// <summary>
    /// A Salesforce name edit is on its way to NetSuite; before its write goes out, NetSuite's own later
    /// edit of the name is read into the hub (the conflict is decided for it). The write still queued
    /// carries the older Salesforce name: it must not be written, or the values swap sides.
    /// </summary>
    [Fact]
    public async Task AChangeWrittenAfterTheTargetsOwnNewerEditWasReadIn_IsNotWritten_TheNewerEditEndsInBoth()
    {
        var gate = new EditBeforeWrite("ns_customers");
        await using var rig = await TwoWayRig.StartAsync(wrapOutbound: c => c.Name == "netsuite" ? gate.Wrap(c) : c);
        var (accountId, customer) = await LinkedAsync(rig, "Swap Co");

        gate.Arm(async () =>
        {
            // NetSuite's edit is the later one (its stamps have 1 s precision), and the inbound poll
            // reads it into the hub while the Salesforce edit's write waits here.
            await Task.Delay(TimeSpan.FromMilliseconds(1100));
            rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["companyName"] = "Swap Co (NetSuite)" });
            await rig.WaitUntilAsync("NetSuite's edit in the hub", async () =>
                await rig.ScalarAsync<string?>("SELECT companyname FROM ns_customers WHERE internalid = $1", customer.ToString(System.Globalization.CultureInfo.InvariantCulture)) == "Swap Co (NetSuite)");
        });
        rig.Salesforce.Update(accountId, new JsonObject { ["Name"] = "Swap Co (Salesforce)" });

        await rig.WaitUntilAsync("NetSuite's edit in Salesforce", () => Task.FromResult(gate.Fired && rig.Salesforce.Get(accountId)?["Name"]?.ToString() == "Swap Co (NetSuite)"));
        await rig.QuietAsync();

        Assert.Equal("Swap Co (NetSuite)", rig.NetSuite.GetCustomer(customer)?["companyName"]?.ToString());
        // The inbound side's metrics counted the polls that read both edits.
        Assert.True(CdcSync.Inbound.InboundMetrics.InboundRecords.WithLabels("netsuite").Value > 0);
        Assert.True(CdcSync.Inbound.InboundMetrics.InboundPolls.WithLabels("salesforce").Value > 0);
        Assert.Equal("Swap Co (NetSuite)", rig.Salesforce.Get(accountId)?["Name"]?.ToString());
        var conflict = Assert.Single(await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None), c => c.Field == "companyname");
        Assert.Equal(("last_write_wins", "took netsuite"), (conflict.Policy, conflict.Decision));
    }

    /// <summary>
    /// The same for a sublist line: a Salesforce billing city edit is on its way to NetSuite while a
    /// NetSuite user's later edit of the billing address line is not read yet. The line-by-line merge
    /// must not put the older city over it; other lines NetSuite holds are merged as before.
    /// </summary>
    [Fact]
    public async Task ABillingCityWrittenTowardNetSuite_DoesNotOverwriteNetSuitesUnreadNewerEditOfTheSameLine()
    {
        var gate = new EditBeforeWrite("ns_customers");
        await using var rig = await TwoWayRig.StartAsync(wrapOutbound: c => c.Name == "netsuite" ? gate.Wrap(c) : c);
        var (accountId, customer) = await LinkedAsync(rig, "Line Co");

        gate.Arm(async () =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1100));
            var lines = (rig.NetSuite.GetCustomer(customer)!["addressBook"]!["items"] as JsonArray)!.Select(l => l!.DeepClone()).ToList();
            lines.First(l => l!["defaultBilling"]?.GetValue<bool>() == true)!["addressBookAddress"]!["city"] = "Berkeley";
            rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["addressBook"] = new JsonObject { ["items"] = new JsonArray([.. lines]) } }, "addressBook");
        });
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "San Jose" });

        await rig.WaitUntilAsync("NetSuite's city in Salesforce", () => Task.FromResult(gate.Fired && rig.Salesforce.Get(accountId)?["BillingCity"]?.ToString() == "Berkeley"));
        await rig.QuietAsync();

        Assert.Equal("Berkeley", rig.Salesforce.Get(accountId)?["BillingCity"]?.ToString());
        var billing = (rig.NetSuite.GetCustomer(customer)!["addressBook"]!["items"] as JsonArray)!.Where(l => l!["defaultBilling"]?.GetValue<bool>() == true).ToList();
        Assert.Equal("Berkeley", Assert.Single(billing)!["addressBookAddress"]!["city"]!.ToString());
        var conflict = Assert.Single(await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None), c => c.Field == "addressbook");
        Assert.Equal(("last_write_wins", "took netsuite"), (conflict.Policy, conflict.Decision));
    }

    /// <summary>
    /// A NetSuite phone edit is written to Salesforce; a Salesforce user edits the same phone after the
    /// outbound precondition read it and before the write lands. Salesforce refuses the conditional
    /// write (If-Unmodified-Since), the connector reads again, and the user's later edit wins by the
    /// policy, recorded as a conflict.
    /// </summary>
    [Fact]
    public async Task AnEditInSalesforceBetweenThePreconditionReadAndTheWrite_IsNotOverwritten_TheConflictIsRecorded()
    {
        await using var rig = await TwoWayRig.StartAsync();
        var (accountId, customer) = await LinkedAsync(rig, "Between Inc");

        var fired = 0;
        rig.Salesforce.BeforeRequest = async (method, path) =>
        {
            // The first write request of an update: a composite request, a collection or a single PATCH.
            var write = (method == "POST" && path.EndsWith("/composite", StringComparison.Ordinal))
                || (method == "PATCH" && path.Contains("/sobjects", StringComparison.Ordinal));
            if (write && Interlocked.Exchange(ref fired, 1) == 0)
            {
                // Past the second of the precondition read (If-Unmodified-Since is an HTTP date).
                await Task.Delay(TimeSpan.FromMilliseconds(1100));
                rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0299" });
            }
        };
        rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550211" });

        await rig.WaitUntilAsync("the Salesforce user's edit in NetSuite", () => Task.FromResult(fired == 1 && Digits(rig.NetSuite.GetCustomer(customer)?["phone"]) == "4155550299"));
        await rig.QuietAsync();

        Assert.Equal("4155550299", Digits(rig.Salesforce.Get(accountId)?["Phone"]));
        Assert.Equal("4155550299", Digits(rig.NetSuite.GetCustomer(customer)?["phone"]));
        var conflict = Assert.Single(await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None), c => c.Field == "phone");
        Assert.Equal(("last_write_wins", "took salesforce"), (conflict.Policy, conflict.Decision));
    }

    /// <summary>
    /// Salesforce's page holding the old phone was read before our write of NetSuite's phone landed
    /// there and is applied after the write was acknowledged (with Salesforce's stamp of it). The page
    /// is older than the write: not an edit, nothing flips, nothing is recorded.
    /// </summary>
    [Fact]
    public async Task AnInboundPageReadBeforeOurWrite_AppliedAfterIt_IsNotTakenForAnEdit()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (account, _) = await hub.SeedLinkedAsync("001S", "530", "Stale", "4155553000", "Fresno");
        await hub.NetSuiteAsync("530", T1, ("phone", "4155553011"));
        Assert.Equal("4155553011", await hub.SfAsync("001S", "phone"));

        // Written to Salesforce and acknowledged; Salesforce stamped the write T3.
        await hub.ExecuteAsync(
            "SELECT cdc.record_outbound('salesforce', 'sf_accounts', $1::text, '001S', 'update', $2::jsonb, NULL, $3)",
            account, """{"phone": {"before": "4155553000", "after": "4155553011"}}""", T3);

        // The page read at T2, before the write, arrives now with the old phone.
        await hub.SalesforceAsync("001S", T2, ("name", "Stale"), ("phone", "4155553000"), ("billingcity", "Fresno"));
        Assert.Equal("4155553011", await hub.SfAsync("001S", "phone"));
        Assert.Equal("4155553011", await hub.NsAsync("530", "phone"));
        Assert.Equal(0L, await hub.ConflictCountAsync());

        // The next page, at the write's stamp, carries the written phone: nothing changes either. A
        // later edit in Salesforce is an edit as always.
        await hub.SalesforceAsync("001S", T3, ("name", "Stale"), ("phone", "4155553011"), ("billingcity", "Fresno"));
        Assert.Equal("4155553011", await hub.NsAsync("530", "phone"));
        await hub.SalesforceAsync("001S", T3.AddSeconds(1), ("name", "Stale"), ("phone", "4155553044"), ("billingcity", "Fresno"));
        Assert.Equal("4155553044", await hub.NsAsync("530", "phone"));
        Assert.Equal(0L, await hub.ConflictCountAsync());
    }

    /// <summary>The check behind the first case, in the hub: a value the hub no longer holds is superseded; a field the system changed is edited.</summary>
    [Fact]
    public async Task OutboundSkippedFields_NamesSupersededAndEditedFields()
    {
        await using var hub = await SyncHub.CreateAsync();
        var (_, customer) = await hub.SeedLinkedAsync("001K", "540", "Kilo", "4155554000", "Napa");
        await hub.SalesforceAsync("001K", T1, ("name", "Kilo One"), ("phone", "4155554011"), ("billingcity", "Napa"));
        await hub.SalesforceAsync("001K", T2, ("name", "Kilo Two"), ("phone", "4155554011"), ("billingcity", "Napa"));

        // A write of the first name (the hub has the second by now), and of the phone, which NetSuite has changed.
        var written = $$$"""{"{{{customer}}}": {"companyname": "Kilo One", "phone": "4155554011"}}""";
        var current = $$$"""{"{{{customer}}}": {"companyname": "Kilo", "phone": "4155554099"}}""";
        var rows = await hub.ScalarAsync<string>(
            "SELECT string_agg(field || '=' || reason, ',' ORDER BY field) FROM cdc.outbound_skipped_fields('ns_customers', $1::jsonb, $2::jsonb)", written, current);
        Assert.Equal("companyname=superseded,phone=edited", rows);
    }

    private static async Task<(string AccountId, long Customer)> LinkedAsync(TwoWayRig rig, string name)
    {
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = name, ["Phone"] = "(415) 555-0200", ["BillingCity"] = "Oakland" });
        long customer = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            customer = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return customer != 0;
        });
        await rig.QuietAsync();
        return (accountId, customer);
    }

    private static string Digits(JsonNode? value) => new((value?.ToString() ?? "").Where(char.IsAsciiDigit).ToArray());
}
