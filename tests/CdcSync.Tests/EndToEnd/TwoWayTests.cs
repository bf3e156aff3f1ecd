using System.Globalization;
using System.Text.Json.Nodes;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// Two-way sync over both sandboxes, counting the writes each system received with the sandboxes'
/// stats: every change costs exactly the expected writes, and then both systems are quiet.
/// </summary>
public sealed class TwoWayTests
{
    [Fact]
    public async Task AccountCreatedUpdatedDeletedInSalesforce_ReachNetSuite_WithExactlyTheExpectedWrites()
    {
        await using var rig = await TwoWayRig.StartAsync();

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Initech", ["Phone"] = "(415) 555-0101", ["BillingCity"] = "Austin", ["BillingCountry"] = "United States" });
        var internalId = await CustomerOfAsync(rig, accountId);
        await rig.QuietAsync();
        Assert.Equal("Initech", rig.NetSuite.GetCustomer(internalId)!["companyName"]!.GetValue<string>());
        Assert.Equal(1, NetSuiteWrites(rig, internalId));                   // the upsert
        Assert.Equal(1, SalesforceWrites(rig, accountId));                  // NetSuite_Id__c, nothing else
        Assert.Equal(internalId.ToString(CultureInfo.InvariantCulture), rig.Salesforce.Get(accountId)!["NetSuite_Id__c"]!.GetValue<string>());
        var linkWrite = await rig.ScalarAsync<string>(
            "SELECT changes::text FROM cdc.audit_log WHERE direction = 'outbound' AND target_system = 'salesforce' AND object = 'sf_accounts' ORDER BY id DESC LIMIT 1");
        Assert.Equal(["netsuite_id__c"], JsonNode.Parse(linkWrite!)!.AsObject().Select(p => p.Key));   // the link write-back carried the link only

        rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0199" });
        await rig.WaitUntilAsync("the phone in NetSuite", () => Task.FromResult(rig.NetSuite.GetCustomer(internalId)!["phone"]?.ToString().EndsWith("0199", StringComparison.Ordinal) == true));
        await rig.QuietAsync();
        Assert.Equal(2, NetSuiteWrites(rig, internalId));                   // one patch
        Assert.Equal(1, SalesforceWrites(rig, accountId));                  // no echo

        rig.Salesforce.Delete(accountId);
        await rig.WaitUntilAsync("the customer inactive", () => Task.FromResult(rig.NetSuite.GetCustomer(internalId)!["isInactive"]?.GetValue<bool>() == true));
        await rig.QuietAsync();
        Assert.Equal(3, NetSuiteWrites(rig, internalId));                   // one inactivation
        Assert.Equal(1, SalesforceWrites(rig, accountId));
        Assert.Equal("Initech", rig.NetSuite.GetCustomer(internalId)!["companyName"]!.GetValue<string>());
    }

    [Fact]
    public async Task CustomerCreatedUpdatedDeletedInNetSuite_ReachSalesforce_WithExactlyTheExpectedWrites()
    {
        await using var rig = await TwoWayRig.StartAsync();

        var internalId = rig.NetSuite.SeedCustomer(new JsonObject { ["companyName"] = "Vandelay Industries", ["phone"] = "2125550142", ["subsidiary"] = new JsonObject { ["id"] = "1" } });
        var accountId = await AccountOfAsync(rig, internalId);
        await rig.QuietAsync();
        var account = rig.Salesforce.Get(accountId)!;
        Assert.Equal("Vandelay Industries", account["Name"]!.GetValue<string>());
        Assert.Equal(1, SalesforceWrites(rig, accountId));                  // the upsert
        Assert.Equal(0, NetSuiteWrites(rig, internalId));                   // no echo (the sandbox counts API writes, not the user's)

        rig.NetSuite.EditRecord("customer", internalId, new JsonObject { ["phone"] = "2125550143" });
        await rig.WaitUntilAsync("the phone in Salesforce", () => Task.FromResult(rig.Salesforce.Get(accountId)!["Phone"]?.ToString().Replace("-", string.Empty, StringComparison.Ordinal).EndsWith("0143", StringComparison.Ordinal) == true));
        await rig.QuietAsync();
        Assert.Equal(2, SalesforceWrites(rig, accountId));                  // one update
        Assert.Equal(0, NetSuiteWrites(rig, internalId));                   // no echo

        rig.NetSuite.DeleteRecord("customer", internalId);
        await rig.WaitUntilAsync("the account deleted in Salesforce", () => Task.FromResult(rig.Salesforce.Get(accountId)?["IsDeleted"]?.GetValue<bool>() == true));
        await rig.QuietAsync();
        Assert.Equal(3, SalesforceWrites(rig, accountId));                  // one delete
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers WHERE internalid = $1", internalId.ToString(CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task AddressAddedInNetSuite_SurvivesALaterSalesforceEdit()
    {
        await using var rig = await TwoWayRig.StartAsync();
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Hooli", ["BillingStreet"] = "1 Hacker Way", ["BillingCity"] = "Palo Alto", ["BillingCountry"] = "United States" });
        var internalId = await CustomerOfAsync(rig, accountId);
        await rig.QuietAsync();

        var warehouse = new JsonObject { ["label"] = "Warehouse", ["defaultBilling"] = false, ["defaultShipping"] = true, ["addressBookAddress"] = new JsonObject { ["addr1"] = "9 Dock Rd", ["city"] = "Oakland", ["country"] = "US" } };
        rig.NetSuite.EditRecord("customer", internalId, new JsonObject { ["addressBook"] = new JsonObject { ["items"] = new JsonArray(warehouse) } });
        await rig.WaitUntilAsync("the warehouse address in the hub", async () =>
            await rig.ScalarAsync<bool>("SELECT addressbook @> '[{\"label\":\"Warehouse\"}]' FROM ns_customers WHERE internalid = $1", internalId.ToString(CultureInfo.InvariantCulture)));
        await rig.QuietAsync();

        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Menlo Park" });
        await rig.WaitUntilAsync("the billing city in NetSuite", () => Task.FromResult(Lines(rig, internalId).Any(l => l["addressBookAddress"]?["city"]?.ToString() == "Menlo Park")));
        await rig.QuietAsync();

        var lines = Lines(rig, internalId);
        Assert.Contains(lines, l => l["label"]?.ToString() == "Warehouse" && l["addressBookAddress"]?["city"]?.ToString() == "Oakland");
        Assert.Single(lines, l => l["addressBookAddress"]?["city"]?.ToString() == "Menlo Park");
        Assert.Equal(2, lines.Count);
    }

    [Fact]
    public async Task NetSuiteEditsInTheSameSecondAsTheCursorPosition_ReachSalesforce()
    {
        await using var rig = await TwoWayRig.StartAsync();
        var low = rig.NetSuite.SeedCustomer(new JsonObject { ["companyName"] = "Low Co", ["subsidiary"] = new JsonObject { ["id"] = "1" } });
        var high = rig.NetSuite.SeedCustomer(new JsonObject { ["companyName"] = "High Co", ["subsidiary"] = new JsonObject { ["id"] = "1" } });
        var lowAccount = await AccountOfAsync(rig, low);
        var highAccount = await AccountOfAsync(rig, high);
        await rig.QuietAsync();

        for (var attempt = 0; ; attempt++)
        {
            Assert.True(attempt < 30, "NetSuite's second turned before the second edit in every attempt");
            var phone = "21255501" + attempt.ToString("00", CultureInfo.InvariantCulture);
            rig.NetSuite.EditRecord("customer", high, new JsonObject { ["phone"] = phone });
            await rig.WaitUntilAsync("the edit in the hub (the cursor is at it)", async () =>
                await rig.ScalarAsync<string>("SELECT phone FROM ns_customers WHERE internalid = $1", high.ToString(CultureInfo.InvariantCulture)) == phone);
            var second = Stamp(rig, high);
            rig.NetSuite.EditRecord("customer", low, new JsonObject { ["companyName"] = $"Low Co {attempt}" });
            rig.NetSuite.EditRecord("customer", high, new JsonObject { ["companyName"] = $"High Co {attempt}" });
            if (Stamp(rig, low) != second || Stamp(rig, high) != second)
            {
                await rig.QuietAsync();
                continue; // the second turned meanwhile: not the case under test
            }

            await rig.WaitUntilAsync("both edits in Salesforce", () => Task.FromResult(
                rig.Salesforce.Get(lowAccount)?["Name"]?.ToString() == $"Low Co {attempt}"
                && rig.Salesforce.Get(highAccount)?["Name"]?.ToString() == $"High Co {attempt}"));
            break;
        }
    }

    private static string? Stamp(TwoWayRig rig, long internalId) => rig.NetSuite.GetCustomer(internalId)?["lastModifiedDate"]?.ToString();

    private static List<JsonNode> Lines(TwoWayRig rig, long internalId) =>
        (rig.NetSuite.GetCustomer(internalId)?["addressBook"]?["items"] as JsonArray ?? []).OfType<JsonNode>().ToList();

    private static long NetSuiteWrites(TwoWayRig rig, long internalId) => rig.NetSuite.Stats.WritesOf("customer", internalId.ToString(CultureInfo.InvariantCulture));

    private static long SalesforceWrites(TwoWayRig rig, string id) => rig.Salesforce.Stats.WritesOf("Account", id);

    private static async Task<long> CustomerOfAsync(TwoWayRig rig, string accountId)
    {
        long internalId = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            internalId = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return internalId != 0;
        });
        return internalId;
    }

    private static async Task<string> AccountOfAsync(TwoWayRig rig, long internalId)
    {
        string? accountId = null;
        await rig.WaitUntilAsync("the account in Salesforce", async () =>
        {
            accountId = await rig.ScalarAsync<string>(
                "SELECT a.id FROM ns_customers n JOIN cdc.identity_links l ON l.object = 'ns_customers' AND l.hub_id = n.hub_id " +
                "JOIN cdc.identity_links o ON o.link_id = l.link_id AND o.object = 'sf_accounts' JOIN sf_accounts a ON a.hub_id = o.hub_id WHERE n.internalid = $1",
                internalId.ToString(CultureInfo.InvariantCulture));
            return accountId is not null && rig.Salesforce.Get(accountId) is not null;
        });
        return accountId!;
    }
}
