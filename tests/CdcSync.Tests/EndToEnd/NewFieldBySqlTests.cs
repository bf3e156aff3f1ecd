using System.Globalization;
using System.Text.Json.Nodes;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// A database team adds a mapped field with SQL alone: a migration adding the columns and a
/// transform mapping them, applied to the hub before the worker starts. No connector changes:
/// the connectors read and write the staging tables' columns.
/// </summary>
public sealed class NewFieldBySqlTests
{
    // The migration: one column per staging table, named like the API field in lower case.
    private const string Migration = """
        ALTER TABLE public.sf_accounts ADD COLUMN description text;
        ALTER TABLE public.ns_customers ADD COLUMN comments text;
        """;

    // The transform: Account.Description <-> customer comments through the identity link. Named
    // to sort after the shipped mapping triggers, so the link exists when a new record arrives.
    private const string Transform = """
        CREATE OR REPLACE FUNCTION cdc.sf_description_to_ns() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF pg_trigger_depth() > 1 THEN
                RETURN NULL;
            END IF;
            UPDATE public.ns_customers SET comments = NEW.description
             WHERE hub_id = cdc.linked_hub_id('sf_accounts', NEW.hub_id, 'ns_customers')
               AND comments IS DISTINCT FROM NEW.description;
            RETURN NULL;
        END
        $$;
        CREATE OR REPLACE FUNCTION cdc.ns_comments_to_sf() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF pg_trigger_depth() > 1 THEN
                RETURN NULL;
            END IF;
            UPDATE public.sf_accounts SET description = NEW.comments
             WHERE hub_id = cdc.linked_hub_id('ns_customers', NEW.hub_id, 'sf_accounts')
               AND description IS DISTINCT FROM NEW.comments;
            RETURN NULL;
        END
        $$;
        CREATE OR REPLACE TRIGGER cdc_sf_accounts_to_ns_zdescription
            AFTER INSERT OR UPDATE OF description ON public.sf_accounts
            FOR EACH ROW EXECUTE FUNCTION cdc.sf_description_to_ns();
        CREATE OR REPLACE TRIGGER cdc_ns_customers_to_sf_zcomments
            AFTER INSERT OR UPDATE OF comments ON public.ns_customers
            FOR EACH ROW EXECUTE FUNCTION cdc.ns_comments_to_sf();
        """;

    [Fact]
    public async Task DescriptionAndComments_AddedBySqlAlone_FlowBothWays()
    {
        await using var rig = await TwoWayRig.StartAsync(Migration + Transform);

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Dunder Mifflin", ["Description"] = "Paper, mostly" });
        long customerId = 0;
        await rig.WaitUntilAsync("the customer with its comments", () =>
        {
            var link = rig.Salesforce.Get(accountId)?["NetSuite_Id__c"]?.ToString();
            customerId = link is null ? 0 : long.Parse(link, CultureInfo.InvariantCulture);
            return Task.FromResult(customerId != 0 && rig.NetSuite.GetCustomer(customerId)?["comments"]?.ToString() == "Paper, mostly");
        });
        await rig.QuietAsync();
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("customer", customerId.ToString(CultureInfo.InvariantCulture)));   // one upsert, comments included
        Assert.Equal(1, rig.Salesforce.Stats.WritesOf("Account", accountId));                                           // the link only

        rig.NetSuite.EditRecord("customer", customerId, new JsonObject { ["comments"] = "Paper and printers" });
        await rig.WaitUntilAsync("the description in Salesforce", () => Task.FromResult(rig.Salesforce.Get(accountId)?["Description"]?.ToString() == "Paper and printers"));
        await rig.QuietAsync();
        Assert.Equal(2, rig.Salesforce.Stats.WritesOf("Account", accountId));                                           // + the description
        Assert.Equal(1, rig.NetSuite.Stats.WritesOf("customer", customerId.ToString(CultureInfo.InvariantCulture)));    // no echo (the sandbox counts API writes, not the user's edit)

        rig.Salesforce.Update(accountId, new JsonObject { ["Description"] = "Paper, printers, beets" });
        await rig.WaitUntilAsync("the comments in NetSuite", () => Task.FromResult(rig.NetSuite.GetCustomer(customerId)?["comments"]?.ToString() == "Paper, printers, beets"));
        await rig.QuietAsync();
        Assert.Equal(2, rig.NetSuite.Stats.WritesOf("customer", customerId.ToString(CultureInfo.InvariantCulture)));    // + one patch

        // The write to NetSuite carried the changed field only, recorded as that system's sync base and in the audit trail.
        var changes = await rig.ScalarAsync<string>(
            "SELECT changes::text FROM cdc.audit_log WHERE direction = 'outbound' AND target_system = 'netsuite' AND object = 'ns_customers' ORDER BY id DESC LIMIT 1");
        var fields = JsonNode.Parse(changes!)!.AsObject().Select(p => p.Key).ToList();
        Assert.Equal(["comments"], fields);
        Assert.Equal("\"Paper, printers, beets\"", await rig.ScalarAsync<string>(
            "SELECT value::text FROM cdc.sync_base WHERE object = 'ns_customers' AND field = 'comments' AND record_key = (SELECT hub_id::text FROM ns_customers WHERE internalid = $1)",
            customerId.ToString(CultureInfo.InvariantCulture)));
    }
}
