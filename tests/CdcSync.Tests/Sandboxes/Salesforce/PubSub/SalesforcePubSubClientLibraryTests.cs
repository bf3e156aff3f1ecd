using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Sandboxes.Salesforce.PubSub;

/// <summary>
/// salesforce-pubsub-api-client (npm), a Pub/Sub API client written by others, subscribes to the
/// sandbox's change events over TLS that trusts the sandbox's certificate, decodes them with the
/// schemas it fetches (its own Avro library and bitmap-field parser), and resumes after a replay id.
/// Installs the client itself (<c>npm ci</c> in tests/clients/pubsub) and fails, never skips, without Node.js.
/// </summary>
public sealed class SalesforcePubSubClientLibraryTests
{
    [Fact]
    public async Task PubSubApiClient_SubscribesDecodesAndReplays_TheSandboxsChangeEvents()
    {
        var client = Path.Combine(Repo.Root, "tests", "clients", "pubsub");
        await SalesforceClientLibraryTests.InstallAsync(client);
        await using var session = await PubSubTestSession.StartAsync(new SalesforceSandboxOptions());
        var id = await session.CreateAsync("Account", new JsonObject { ["Name"] = "Acme", ["BillingCity"] = "Paris", ["Phone"] = "555-0100" }, client: "cdcsync-hub-7");
        await session.UpdateAsync("Account", id, new JsonObject { ["BillingCity"] = "Lyon", ["Phone"] = null }, client: "cdcsync-hub-7");
        session.Sandbox.Update(id, new JsonObject { ["Industry"] = "Retail" });

        var output = await SalesforceClientLibraryTests.RunAsync("node", ["subscribe.mjs"], client, new()
        {
            ["PUBSUB_ENDPOINT"] = session.Sandbox.PubSubEndpoint,
            ["PUBSUB_CA_FILE"] = session.Sandbox.PubSubCertificatePath,
            ["SF_ACCESS_TOKEN"] = session.Auth.GetValue("accesstoken")!,
            // The client insists on an https:// instance URL, as real orgs have.
            ["SF_INSTANCE_URL"] = "https://" + session.Sandbox.BaseUrl.Authority,
            ["TOPIC"] = "/data/AccountChangeEvent",
            ["EXPECTED"] = "3",
        });

        var result = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        var events = result["events"]!.AsArray();
        Assert.Equal(["CREATE", "UPDATE", "UPDATE"], events.Select(e => e!["changeType"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal(id, e!["recordIds"]![0]!.GetValue<string>()));
        Assert.Equal("Acme", events[0]!["fields"]!["Name"]!.GetValue<string>());
        Assert.Equal("com/salesforce/api/rest/61.0;client=cdcsync-hub-7", events[1]!["changeOrigin"]!.GetValue<string>());
        Assert.Equal(["LastModifiedDate", "Phone", "BillingAddress.City"], events[1]!["changedFields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Equal(["Phone"], events[1]!["nulledFields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Equal("Lyon", events[1]!["fields"]!["BillingAddress"]!["City"]!.GetValue<string>());
        Assert.Equal(string.Empty, events[2]!["changeOrigin"]!.GetValue<string>());
        Assert.Equal(["LastModifiedDate", "Industry"], events[2]!["changedFields"]!.AsArray().Select(f => f!.GetValue<string>()));

        // Subscribed again after the first event's replay id: the two after it.
        Assert.Equal(events.Skip(1).Select(e => e!["replayId"]!.GetValue<long>()), result["replayed"]!.AsArray().Select(e => e!["replayId"]!.GetValue<long>()));
    }
}
