using System.Globalization;
using System.Text.Json.Nodes;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// The second object pair, added with SQL and config only (migration 0021, transforms 040, the
/// example config): Opportunity and opportunity flow both ways through the sandboxes, linked
/// through their account / customer, with exactly the expected writes.
/// </summary>
public sealed class OpportunityTests
{
    [Fact]
    public async Task Opportunity_FlowsBothWays_LinkedThroughItsAccountAndCustomer()
    {
        await using var rig = await TwoWayRig.StartAsync();
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Pied Piper" });
        long customerId = 0;
        await rig.WaitUntilAsync("the account's customer in NetSuite and its id back in Salesforce", () =>
        {
            var link = rig.Salesforce.Get(accountId)?["NetSuite_Id__c"]?.ToString();
            customerId = link is null ? 0 : long.Parse(link, CultureInfo.InvariantCulture);
            return Task.FromResult(customerId != 0);
        });
        await rig.QuietAsync();

        // Salesforce -> NetSuite
        var opportunityId = rig.Salesforce.Insert("Opportunity", new JsonObject
        {
            ["AccountId"] = accountId, ["Name"] = "Compression Licence", ["StageName"] = "Prospecting",
            ["CloseDate"] = "2026-12-31", ["Amount"] = 250000, ["Description"] = "Middle-out",
        });
        long nsOpportunityId = 0;
        await rig.WaitUntilAsync("the opportunity in NetSuite and its id back in Salesforce", () =>
        {
            var link = rig.Salesforce.Get(opportunityId)?["NetSuite_Id__c"]?.ToString();
            nsOpportunityId = link is null ? 0 : long.Parse(link, CultureInfo.InvariantCulture);
            return Task.FromResult(nsOpportunityId != 0);
        });
        await rig.QuietAsync();
        var ns = rig.NetSuite.GetRecord("opportunity", nsOpportunityId)!;
        Assert.Equal(customerId.ToString(CultureInfo.InvariantCulture), ns["entity"]!["id"]!.ToString());
        Assert.Equal("Compression Licence", ns["title"]!.GetValue<string>());
        Assert.Equal(250000m, ns["projectedTotal"]!.GetValue<decimal>());
        Assert.Equal("2026-12-31", ns["expectedCloseDate"]!.GetValue<string>());
        Assert.Equal("Middle-out", ns["memo"]!.GetValue<string>());
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("opportunity", nsOpportunityId.ToString(CultureInfo.InvariantCulture)));   // the upsert
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Opportunity", opportunityId));    // NetSuite_Id__c only

        // NetSuite -> Salesforce: an edit there, then a new opportunity made there.
        rig.NetSuite.EditRecord("opportunity", nsOpportunityId, new JsonObject { ["memo"] = "Middle-out, five years" });
        await rig.WaitUntilAsync("the memo in Salesforce", () => Task.FromResult(rig.Salesforce.Get(opportunityId)?["Description"]?.ToString() == "Middle-out, five years"));
        var renewal = rig.NetSuite.SeedRecord("opportunity", new JsonObject
        {
            ["entity"] = new JsonObject { ["id"] = customerId.ToString(CultureInfo.InvariantCulture) },
            ["title"] = "Renewal", ["projectedTotal"] = 1200, ["expectedCloseDate"] = "2027-01-31",
        });
        string? renewalId = null;
        await rig.WaitUntilAsync("the NetSuite opportunity in Salesforce", async () =>
        {
            renewalId = await rig.ScalarAsync<string>("SELECT id FROM sf_opportunities WHERE netsuite_id__c = $1", renewal.ToString(CultureInfo.InvariantCulture));
            return renewalId is not null;
        });
        await rig.QuietAsync();
        var sf = rig.Salesforce.Get(renewalId!)!;
        Assert.Equal(accountId, sf["AccountId"]!.ToString());
        Assert.Equal("Renewal", sf["Name"]!.GetValue<string>());
        Assert.Equal("2027-01-31", sf["CloseDate"]!.GetValue<string>());
        Assert.Equal(2, rig.Salesforce.Stats.WritesOf("Opportunity", opportunityId));    // + the memo
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Opportunity", renewalId!));       // the upsert
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("opportunity", nsOpportunityId.ToString(CultureInfo.InvariantCulture)));   // no echo of the user's edit
        Assert.Equal(0, rig.NetSuite.Stats.WritesOf("opportunity", renewal.ToString(CultureInfo.InvariantCulture)));           // nor of the new one
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.dead_letters"));
    }

    /// <summary>
    /// An Account and its Opportunity created in Salesforce together, read in one poll before NetSuite
    /// has the customer: the opportunity reaches NetSuite with that customer as its entity, with no
    /// further edit in either system (the NetSuite connector resolves the entity from the customer's
    /// hub row at send time), and nothing echoes back.
    /// </summary>
    [Fact]
    public async Task Opportunity_CreatedWithItsAccountInOnePoll_ReachesNetSuiteWithoutAnotherEdit()
    {
        await using var rig = await TwoWayRig.StartAsync();
        await rig.QuietAsync();
        var salesforceWrites = rig.Salesforce.Stats.Writes;
        var netSuiteWrites = rig.NetSuite.Stats.Writes;

        // Both records exist before the connector's next poll: one inbound read carries both.
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Hooli XYZ" });
        var opportunityId = rig.Salesforce.Insert("Opportunity", new JsonObject
        {
            ["AccountId"] = accountId, ["Name"] = "Signature Box", ["StageName"] = "Prospecting",
            ["CloseDate"] = "2027-03-31", ["Amount"] = 90000,
        });

        long customerId = 0, nsOpportunityId = 0;
        await rig.WaitUntilAsync("the account's customer and the opportunity in NetSuite, their ids back in Salesforce", () =>
        {
            customerId = long.TryParse(rig.Salesforce.Get(accountId)?["NetSuite_Id__c"]?.ToString(), CultureInfo.InvariantCulture, out var c) ? c : 0;
            nsOpportunityId = long.TryParse(rig.Salesforce.Get(opportunityId)?["NetSuite_Id__c"]?.ToString(), CultureInfo.InvariantCulture, out var o) ? o : 0;
            return Task.FromResult(customerId != 0 && nsOpportunityId != 0);
        });
        await rig.QuietAsync();

        var ns = rig.NetSuite.GetRecord("opportunity", nsOpportunityId)!;
        Assert.Equal(customerId.ToString(CultureInfo.InvariantCulture), ns["entity"]!["id"]!.ToString());
        Assert.Equal("Signature Box", ns["title"]!.GetValue<string>());
        Assert.Equal(90000m, ns["projectedTotal"]!.GetValue<decimal>());
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("opportunity", nsOpportunityId.ToString(CultureInfo.InvariantCulture)));   // the upsert, nothing more
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("customer", customerId.ToString(CultureInfo.InvariantCulture)));
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Opportunity", opportunityId));    // NetSuite_Id__c only
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Account", accountId));            // NetSuite_Id__c only
        Assert.Equal(2, rig.NetSuite.Stats.Writes - netSuiteWrites);
        Assert.Equal(2, rig.Salesforce.Stats.Writes - salesforceWrites);
        Assert.Equal(customerId.ToString(CultureInfo.InvariantCulture), await rig.ScalarAsync<string>(
            "SELECT entity FROM ns_opportunities WHERE internalid = $1", nsOpportunityId.ToString(CultureInfo.InvariantCulture)));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.dead_letters"));
    }

    /// <summary>
    /// The same class of gap for Contacts, solved by the Salesforce connector's Lookups: a customer
    /// created in NetSuite becomes an Account and its Contact in the hub at once, the Contact with no
    /// AccountId yet (the Account is not in Salesforce); the Contact is created with the new
    /// Account's Id, with no further edit, one write each.
    /// </summary>
    [Fact]
    public async Task Contact_OfACustomerCreatedInNetSuite_GetsItsNewAccountIdWithoutAnotherEdit()
    {
        await using var rig = await TwoWayRig.StartAsync();
        await rig.QuietAsync();

        var internalId = rig.NetSuite.SeedCustomer(new JsonObject
        {
            ["companyName"] = "Raviga Capital", ["firstName"] = "Laurie", ["lastName"] = "Bream",
            ["email"] = "laurie@raviga.example", ["subsidiary"] = new JsonObject { ["id"] = "1" },
        });
        string? accountId = null;
        await rig.WaitUntilAsync("the customer's account in Salesforce", async () =>
        {
            accountId = await rig.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE netsuite_id__c = $1", internalId.ToString(CultureInfo.InvariantCulture));
            return accountId is not null;
        });
        string? contactId = null;
        await rig.WaitUntilAsync("the customer's contact in Salesforce", async () =>
        {
            contactId = await rig.ScalarAsync<string>(
                "SELECT c.id FROM sf_contacts c JOIN sf_accounts a ON a.hub_id = c.account_hub_id WHERE a.id = $1", accountId!);
            return contactId is not null;
        });
        await rig.QuietAsync();

        var contact = rig.Salesforce.Get(contactId!)!;
        Assert.Equal(accountId, contact["AccountId"]!.ToString());
        Assert.Equal("laurie@raviga.example", contact["Email"]!.ToString());
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Contact", contactId!));    // the create, AccountId included
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Account", accountId!));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.dead_letters"));
    }
}
