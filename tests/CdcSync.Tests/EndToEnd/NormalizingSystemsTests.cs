using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// Both systems rewrite what they receive (phone formats, case, blanks), as real ones do: a change
/// costs at most one extra write, and then both systems are quiet (no echo loop).
/// </summary>
public sealed class NormalizingSystemsTests
{
    [Fact]
    public async Task BothSandboxesNormalizing_EachChangeCostsAtMostOneExtraWrite_ThenQuiet()
    {
        await using var rig = await TwoWayRig.StartAsync();
        using var http = new HttpClient();
        await SteerAsync(http, rig.Salesforce.BaseUrl, new JsonObject { ["normalize"] = new JsonObject { ["phone"] = "northAmerican", ["trim"] = true } });
        await SteerAsync(http, rig.NetSuite.BaseUrl, new JsonObject { ["normalize"] = new JsonObject { ["phone"] = "digits", ["trim"] = true, ["case"] = new JsonObject { ["companyName"] = "upper" } } });

        // Created in Salesforce: one upsert into NetSuite, which upper-cases the name; that comes
        // back as NetSuite's value and costs Salesforce at most one write besides the link.
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Kramerica", ["Phone"] = "+1 415 555 0101" });
        var internalId = await CustomerOfAsync(rig, accountId);
        await rig.QuietAsync();
        Assert.Equal("KRAMERICA", rig.NetSuite.GetCustomer(internalId)!["companyName"]!.GetValue<string>());
        // One NetSuite write, and in Salesforce the link plus at most the name NetSuite rewrote. An
        // inbound re-read of the account from before our writes, applied after them, carries an
        // older stamp than the one read back after each write, so it is not taken for an edit.
        await AssertWritesAsync(rig, "NetSuite, create", NetSuiteWrites(rig, internalId), 1, 1);
        await AssertWritesAsync(rig, "Salesforce, create", SalesforceWrites(rig, accountId), 1, 2);
        var (sfBefore, nsBefore) = (SalesforceWrites(rig, accountId), NetSuiteWrites(rig, internalId));

        // A phone edit in NetSuite: one write into Salesforce, which reformats it; the reformatted
        // value is the same phone, so nothing travels back.
        rig.NetSuite.EditRecord("customer", internalId, new JsonObject { ["phone"] = "2125550143" });
        await rig.WaitUntilAsync("the phone in Salesforce", () => Task.FromResult(rig.Salesforce.Get(accountId)!["Phone"]?.ToString() == "(212) 555-0143"));
        await rig.QuietAsync();
        await AssertWritesAsync(rig, "Salesforce, NetSuite phone edit", SalesforceWrites(rig, accountId) - sfBefore, 1, 2);
        await AssertWritesAsync(rig, "NetSuite, NetSuite phone edit", NetSuiteWrites(rig, internalId) - nsBefore, 0, 1);
        (sfBefore, nsBefore) = (SalesforceWrites(rig, accountId), NetSuiteWrites(rig, internalId));

        // A name edit in Salesforce with stray blanks: one write into NetSuite (trimmed, upper-cased
        // there), at most one write back, then quiet.
        rig.Salesforce.Update(accountId, new JsonObject { ["Name"] = "  Kramerica Industries " });
        await rig.WaitUntilAsync("the name in NetSuite", () => Task.FromResult(rig.NetSuite.GetCustomer(internalId)!["companyName"]?.ToString() == "KRAMERICA INDUSTRIES"));
        await rig.QuietAsync();
        await AssertWritesAsync(rig, "NetSuite, Salesforce name edit", NetSuiteWrites(rig, internalId) - nsBefore, 1, 2);
        await AssertWritesAsync(rig, "Salesforce, Salesforce name edit", SalesforceWrites(rig, accountId) - sfBefore, 0, 1);

        // Quiet means quiet: another quiet period adds no write anywhere.
        var (sf, ns) = (rig.Salesforce.Stats.Writes, rig.NetSuite.Stats.Writes);
        await rig.QuietAsync();
        Assert.Equal((sf, ns), (rig.Salesforce.Stats.Writes, rig.NetSuite.Stats.Writes));
    }

    private static async Task AssertWritesAsync(TwoWayRig rig, string what, long writes, long min, long max)
    {
        if (writes < min || writes > max)
        {
            var audit = await rig.ScalarAsync<string>("SELECT string_agg(connector || ' ' || direction || ' ' || object || ' ' || operation || ' ' || changes::text, E'\\n' ORDER BY id) FROM cdc.audit_log");
            Assert.Fail($"{what}: {writes} writes, expected {min}..{max}; audit trail:\n{audit}");
        }
    }

    private static async Task SteerAsync(HttpClient http, Uri baseUrl, JsonObject knobs)
    {
        using var response = await http.PostAsJsonAsync(new Uri(baseUrl, "_sandbox/faults"), knobs);
        Assert.True(response.IsSuccessStatusCode, $"{baseUrl} refused {knobs.ToJsonString()}: {(int)response.StatusCode} {response.ReasonPhrase} {string.Join("; ", response.Headers.Concat(response.Content.Headers).Select(h => h.Key + "=" + string.Join(",", h.Value)))} {await response.Content.ReadAsStringAsync()}");
    }

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
}
