using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Connectors.Salesforce;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>
/// jsforce, a Salesforce client library written by others, signs in to the sandbox through the OAuth
/// 2.0 JWT bearer flow (its <c>authorize({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion })</c>,
/// the assertion signed with Node's crypto) and uses the session; bad assertions get Salesforce's
/// errors. Installs the client itself (<c>npm ci</c>) and fails, never skips, without Node.js.
/// </summary>
public sealed class SalesforceJwtClientLibraryTests
{
    private const int Calls = 8;

    [Fact]
    public async Task Jsforce_JwtBearerFlow_SignsInUsesTheSessionAndGetsSalesforcesRefusals()
    {
        var client = Path.Combine(Repo.Root, "tests", "clients", "jsforce");
        await SalesforceClientLibraryTests.InstallAsync(client);
        using var key = JwtTestKey.Create();
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { JwtCertificate = key.Certificate }, CancellationToken.None);
        sandbox.Insert("Account", new JsonObject { ["Name"] = "Made In The Org" });

        var output = await SalesforceClientLibraryTests.RunAsync("node", ["jwt.mjs"], client, new()
        {
            ["SF_URL"] = sandbox.BaseUrl.ToString().TrimEnd('/'),
            ["SF_CLIENT_ID"] = sandbox.Options.ClientId,
            ["SF_USERNAME"] = SalesforceSandboxOptions.DefaultUsername,
            ["SF_PRIVATE_KEY"] = key.PrivateKeyPem,
        });

        var calls = JsonNode.Parse(output.Trim().Split('\n')[^1])!["calls"]!.AsArray();
        var failed = calls.Where(c => !c!["ok"]!.GetValue<bool>()).Select(c => $"{c!["call"]}: {c["error"]}").ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {calls.Count} jsforce calls failed:\n" + string.Join("\n", failed));
        Assert.Equal(Calls, calls.Count);
        Assert.Single(sandbox.Records("Account"), a => a["Name"]!.GetValue<string>().EndsWith(" Acme", StringComparison.Ordinal));
        // one sign-in and five refused assertions
        Assert.Equal(6, sandbox.Options.TokenRequestCount);
    }
}
