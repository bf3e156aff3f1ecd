using CdcSync.Connectors;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.Connectors.Salesforce.PubSub;

public sealed class SalesforcePubSubCheckTests
{
    [Fact]
    public async Task Check_ObjectWithoutChangeDataCapture_AndUntrustedCertificate_EachNamedWithTheFix()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { ChangeDataCaptureObjects = ["Account"] }, CancellationToken.None);

        var trusted = await ProblemsAsync(hub, sandbox, sandbox.PubSubCertificatePath);
        var untrusted = await ProblemsAsync(hub, sandbox, caFile: null);

        Assert.Equal(
            ["Connector crm: Change Data Capture is not enabled for Contact, so its changes would only be polled; in Salesforce Setup > Change Data Capture add Contact to the selected entities (or remove Connectors:crm:PubSub:Endpoint)."],
            trusted);
        var tls = Assert.Single(untrusted, p => p.Contains("Pub/Sub", StringComparison.Ordinal));
        Assert.StartsWith($"Connector crm: the TLS certificate of the Pub/Sub API at {sandbox.PubSubEndpoint} is not trusted (", tls, StringComparison.Ordinal);
        Assert.EndsWith("); set Connectors:crm:PubSub:CaFile to the PEM of the certificate it presents (or its CA).", tls, StringComparison.Ordinal);
    }

    private static async Task<List<string>> ProblemsAsync(string hub, SalesforceSandbox sandbox, string? caFile)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Connectors:crm:Type"] = "salesforce",
            ["Connectors:crm:LoginUrl"] = sandbox.BaseUrl.ToString(),
            ["Connectors:crm:ClientId"] = SalesforceSandboxOptions.DefaultClientId,
            ["Connectors:crm:ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
            ["Connectors:crm:PubSub:Endpoint"] = sandbox.PubSubEndpoint,
            ["Connectors:crm:PubSub:CaFile"] = caFile,
            ["Connectors:crm:Objects:0:SObject"] = "Account",
            ["Connectors:crm:Objects:0:Table"] = "sf_accounts",
            ["Connectors:crm:Objects:1:SObject"] = "Contact",
            ["Connectors:crm:Objects:1:Table"] = "sf_contacts",
            ["Routes:public.sf_accounts:0"] = "crm",
        };
        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        var problems = await ConfigChecker.CheckConnectivityAsync(options, CancellationToken.None);
        return [.. problems.Select(p => p.Message).Where(m => m.StartsWith("Connector crm", StringComparison.Ordinal))];
    }
}
