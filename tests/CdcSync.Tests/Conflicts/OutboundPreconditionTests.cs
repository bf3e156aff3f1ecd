using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Tests.EndToEnd;
using NpgsqlTypes;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// The interleaving the hub alone cannot see: a Salesforce edit is on its way to NetSuite while
/// NetSuite holds its own newer edit of the same field that no poll has read yet. The NetSuite edit
/// is made in the sandbox's store inside the outbound connector's WriteAsync, right before the
/// pipeline's write, so the order is fixed without timing. Without the outbound precondition the
/// write overwrites the NetSuite edit in NetSuite and nothing is recorded.
/// </summary>
public sealed class OutboundPreconditionTests
{
    /// <summary>Last write wins takes NetSuite's newer edit; Salesforce priority keeps the hub's value, which then reaches NetSuite too.</summary>
    [Theory]
    [InlineData("last_write_wins", "4155550188", "took netsuite")]
    [InlineData("source_priority", "4155550177", "kept salesforce")]
    public async Task AnEditWrittenTowardNetSuite_DoesNotOverwriteNetSuitesUnreadNewerEdit_TheConflictIsDecidedAndRecorded(string policy, string winner, string decision)
    {
        var gate = new EditBeforeWrite("ns_customers");
        var rules = policy == "source_priority"
            ? "INSERT INTO cdc.conflict_policies (object, field, policy, priority_system) SELECT o, 'phone', 'source_priority', 'salesforce' FROM unnest(ARRAY['sf_accounts', 'ns_customers']) o " +
              "ON CONFLICT (object, field) DO UPDATE SET policy = EXCLUDED.policy, priority_system = EXCLUDED.priority_system"
            : null;
        await using var rig = await TwoWayRig.StartAsync(rules, wrapOutbound: c => c.Name == "netsuite" ? gate.Wrap(c) : c, name: "OutboundPreconditionToNetSuite_" + policy);

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Precondition Co", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Oakland" });
        long customer = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            customer = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return customer != 0;
        });
        await rig.QuietAsync();
        var before = await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts");

        // The next write of ns_customers toward NetSuite first waits past the Salesforce edit's second
        // (NetSuite stamps have 1 s precision; the NetSuite edit must be the later one), then edits the
        // phone in NetSuite as a user would.
        gate.Arm(async () =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1100));
            rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550188" });
        });
        rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0177" });

        await rig.WaitUntilAsync("the decision in both systems", async () =>
            gate.Fired
            && Digits(rig.NetSuite.GetCustomer(customer)?["phone"]) == winner
            && Digits(rig.Salesforce.Get(accountId)?["Phone"]) == winner
            && await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts") > before);
        await rig.QuietAsync();

        Assert.Equal(winner, Digits(rig.NetSuite.GetCustomer(customer)?["phone"]));
        Assert.Equal(winner, Digits(rig.Salesforce.Get(accountId)?["Phone"]));
        var conflict = Assert.Single(await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None), c => c.Field == "phone");
        Assert.Equal((policy, "resolved", decision), (conflict.Policy, conflict.Status, conflict.Decision));
        Assert.Equal(winner, Digits(JsonNode.Parse(conflict.DecidedValue!)));
        Assert.NotNull(conflict.HubModifiedAt);
        Assert.NotNull(conflict.IncomingModifiedAt);
    }

    [Fact]
    public async Task AnEditWrittenTowardSalesforce_DoesNotOverwriteSalesforcesUnreadNewerEdit_TheConflictIsDecidedAndRecorded()
    {
        var gate = new EditBeforeWrite("sf_accounts");
        await using var rig = await TwoWayRig.StartAsync(wrapOutbound: c => c.Name == "salesforce" ? gate.Wrap(c) : c);

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Precondition Inc", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Oakland" });
        long customer = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            customer = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return customer != 0;
        });
        await rig.QuietAsync();
        var before = await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts");

        // Salesforce stamps milliseconds and NetSuite whole seconds: an edit made after the NetSuite
        // edit is the later one without waiting.
        gate.Arm(() =>
        {
            rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0166" });
            return Task.CompletedTask;
        });
        rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550155" });

        await rig.WaitUntilAsync("the Salesforce edit decided and in both systems", async () =>
            gate.Fired
            && Digits(rig.NetSuite.GetCustomer(customer)?["phone"]) == "4155550166"
            && Digits(rig.Salesforce.Get(accountId)?["Phone"]) == "4155550166"
            && await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts") > before);
        await rig.QuietAsync();

        Assert.Equal("4155550166", Digits(rig.NetSuite.GetCustomer(customer)?["phone"]));
        Assert.Equal("4155550166", Digits(rig.Salesforce.Get(accountId)?["Phone"]));
        var conflict = Assert.Single(await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None), c => c.Field == "phone");
        Assert.Equal(("last_write_wins", "resolved"), (conflict.Policy, conflict.Status));
        Assert.EndsWith("salesforce", conflict.Decision, StringComparison.Ordinal);
        Assert.Equal("4155550166", Digits(JsonNode.Parse(conflict.DecidedValue!)));
    }

    private static string Digits(JsonNode? phone) => new((phone?.ToString() ?? string.Empty).Where(char.IsAsciiDigit).ToArray());
}
