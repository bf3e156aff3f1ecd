using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// Salesforce changes streamed over the Pub/Sub API (Change Data Capture) instead of polled: the
/// pipeline subscribes to the sandbox's stream with polling slowed to an hourly safety poll, so what
/// arrives in time came by the stream, or by a catch-up the stream asked for.
/// </summary>
public sealed class PubSubStreamingTests
{
    [Fact]
    public async Task StreamedEdit_ReachesNetSuite_AndOurOwnWritesEventIsNotAnEdit()
    {
        await using var rig = await StartStreamingAsync();
        using var http = new HttpClient();
        await SteerAsync(http, rig.Salesforce.BaseUrl, "_sandbox/faults", new JsonObject { ["normalize"] = new JsonObject { ["phone"] = "northAmerican" } });

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Streamed Corp", ["BillingCity"] = "Lyon" });
        var internalId = await CustomerOfAsync(rig, accountId);
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Paris" });
        await rig.WaitUntilAsync("the streamed city in NetSuite", () => Task.FromResult(
            rig.NetSuite.GetCustomer(internalId)!["addressBook"]?.ToJsonString().Contains("Paris", StringComparison.Ordinal) == true));
        Assert.Contains(rig.Logs.Lines, l => l.Contains("change events streamed", StringComparison.Ordinal));

        // A NetSuite edit reaches Salesforce as our write; Salesforce reformats the phone and its
        // change event names our client: the reformatted value reaches the hub, as no user's edit.
        var clientId = await rig.ScalarAsync<string>("SELECT value FROM cdc.settings WHERE key = 'salesforce_client_id'");
        Assert.NotNull(clientId);
        rig.NetSuite.EditRecord("customer", internalId, new JsonObject { ["phone"] = "4155550123" });
        await rig.WaitUntilAsync("the reformatted phone in the hub", async () =>
            await rig.ScalarAsync<string>("SELECT phone FROM sf_accounts WHERE id = $1", accountId) == "(415) 555-0123");
        await rig.QuietAsync();
        // Our writes' events were told apart (how many arrive in one batch depends on timing: the
        // two writes of this test can come as one batch of 2).
        Assert.Contains(rig.Logs.Lines, l => System.Text.RegularExpressions.Regex.Match(l, @"change events streamed \(([0-9]+) of our own writes\)") is { Success: true } m && int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Equal(0, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts"));
        Assert.Equal("(415) 555-0123", rig.Salesforce.Get(accountId)!["Phone"]?.ToString());
    }

    [Fact]
    public async Task Restart_ResumesFromReplayId_GapAndExpiredReplayIdCatchUp_NothingMissedNorTwice()
    {
        await using var rig = await StartStreamingAsync();
        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Resume Inc", ["BillingCity"] = "Oslo" });
        var internalId = await CustomerOfAsync(rig, accountId);
        await WaitForReplayIdAsync(rig);

        // Stopped; edits meanwhile; started again: the stream resumes after the stored replay id.
        await rig.StopPipelineAsync();
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Bergen" });
        var second = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "While Down Ltd" });
        await rig.StartPipelineAsync();
        await WaitForCityAsync(rig, internalId, "Bergen");
        await CustomerOfAsync(rig, second);
        Assert.Contains(rig.Logs.Lines, l => l.Contains("after the stored replay id", StringComparison.Ordinal));

        // A change Salesforce could not describe (a gap event): caught up by query.
        var before = CatchUps(rig);
        rig.Salesforce.GapNextChanges(1);
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Tromso" });
        await WaitForCityAsync(rig, internalId, "Tromso");
        Assert.True(CatchUps(rig) > before, "a gap event asks for a catch-up");

        // Stopped past the retention window: the stored replay id is refused, caught up by query.
        await rig.StopPipelineAsync();
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Narvik" });
        rig.Salesforce.ChangeEventRetention = TimeSpan.Zero;
        await rig.StartPipelineAsync();
        await WaitForCityAsync(rig, internalId, "Narvik");
        Assert.Contains(rig.Logs.Lines, l => l.Contains("no longer has the stored replay id", StringComparison.Ordinal));
        rig.Salesforce.ChangeEventRetention = TimeSpan.FromHours(72);
        await rig.WaitUntilAsync("subscribed again from the latest event", () => Task.FromResult(
            rig.Logs.Lines.Count(l => l.Contains("subscribed to /data/ChangeEvents", StringComparison.Ordinal)) >= 3));
        rig.Salesforce.Update(accountId, new JsonObject { ["BillingCity"] = "Alta" });
        await WaitForCityAsync(rig, internalId, "Alta");

        // Nothing applied twice: each city reached the hub's account row once.
        await rig.QuietAsync();
        var cities = await rig.ScalarAsync<string>(
            """
            SELECT string_agg(changes -> 'billingcity' ->> 'after', ',' ORDER BY id) FROM cdc.audit_log
             WHERE direction = 'inbound' AND object = 'sf_accounts' AND changes ? 'billingcity'
               AND record_key = (SELECT hub_id::text FROM sf_accounts WHERE id = $1)
            """, accountId);
        Assert.Equal("Oslo,Bergen,Tromso,Narvik,Alta", cities);
        Assert.Equal(2, rig.NetSuite.CustomerCount);
    }

    [Fact]
    public async Task UntrustedCertificate_WorkerRefusesToStartWithOneLineNamingCaFile()
    {
        await using var rig = await TwoWayRig.CreateAsync();
        rig.Configure("Connectors:salesforce:PubSub:Endpoint", rig.Salesforce.PubSubEndpoint);

        // The worker checks the endpoint before it starts (as `cdcsync check` does) and refuses to run.
        var e = await Assert.ThrowsAsync<OperatorException>(async () =>
        {
            await rig.StartPipelineAsync();
            await rig.WaitUntilAsync("the worker to stop", () => Task.FromResult(false));
        });

        Assert.StartsWith($"Connector salesforce: the TLS certificate of the Pub/Sub API at {rig.Salesforce.PubSubEndpoint} is not trusted (", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("; set Connectors:salesforce:PubSub:CaFile to the PEM of the certificate it presents (or its CA).", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static async Task<TwoWayRig> StartStreamingAsync([System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        var rig = await TwoWayRig.CreateAsync(name: name);
        rig.Configure("Connectors:salesforce:PubSub:Endpoint", rig.Salesforce.PubSubEndpoint);
        rig.Configure("Connectors:salesforce:PubSub:CaFile", rig.Salesforce.PubSubCertificatePath);
        // Only a safety poll an hour: what reaches the hub in time came by the stream or a catch-up it asked for.
        rig.Configure("Connectors:salesforce:PubSub:SafetyPollInterval", "01:00:00");
        rig.Configure("Connectors:salesforce:PubSub:MaxReconnectDelay", "00:00:01");
        await rig.StartPipelineAsync();
        await rig.WaitUntilAsync("the subscription", () => Task.FromResult(rig.Logs.Lines.Any(l => l.Contains("subscribed to /data/ChangeEvents", StringComparison.Ordinal))));
        return rig;
    }

    private static int CatchUps(TwoWayRig rig) => rig.Logs.Lines.Count(l => l.Contains("catching up by query", StringComparison.Ordinal));

    private static Task WaitForCityAsync(TwoWayRig rig, long internalId, string city) =>
        rig.WaitUntilAsync($"{city} in NetSuite", () => Task.FromResult(
            rig.NetSuite.GetCustomer(internalId)!["addressBook"]?.ToJsonString().Contains(city, StringComparison.Ordinal) == true));

    private static Task WaitForReplayIdAsync(TwoWayRig rig) =>
        rig.WaitUntilAsync("the replay id stored", async () =>
            await rig.ScalarAsync<string>("SELECT cursor FROM cdc.inbound_cursors WHERE connector = 'salesforce' AND object = 'pubsub:/data/ChangeEvents'") is not null);

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

    private static async Task SteerAsync(HttpClient http, Uri baseUrl, string path, JsonObject knobs)
    {
        using var response = await http.PostAsJsonAsync(new Uri(baseUrl, path), knobs);
        Assert.True(response.IsSuccessStatusCode, $"{baseUrl} refused {knobs.ToJsonString()}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }
}
