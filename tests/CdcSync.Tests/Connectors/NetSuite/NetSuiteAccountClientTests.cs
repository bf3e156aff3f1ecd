using CdcSync.Connectors;
using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Salesforce;
using CdcSync.Inbound;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Connectors.NetSuite;

/// <summary>
/// A system account's limits are the account's: the inbound and outbound halves of one connector
/// share one HTTP client, so one concurrency limiter and one circuit breaker (a NetSuite 503 seen by
/// either side opens the breaker for both).
/// </summary>
public sealed class NetSuiteAccountClientTests
{
    [Theory]
    [InlineData("netsuite")]
    [InlineData("salesforce")]
    public void InboundAndOutboundOfOneConnector_ShareOneResiliencePipeline_AnotherConfigGetsItsOwn(string type)
    {
        var section = Section(type, "https://account-a.example/");
        using var hub = NpgsqlDataSource.Create("Host=127.0.0.1;Database=unused;Username=unused");

        var outbound = ConnectorRegistry.Default.CreateOutbound("c", section, hub, NullLoggerFactory.Instance);
        var inbound = ConnectorRegistry.Default.CreateInbound("c", section, hub, NullLoggerFactory.Instance);
        var other = ConnectorRegistry.Default.CreateOutbound("c", Section(type, "https://account-b.example/"), hub, NullLoggerFactory.Instance);

        Assert.Same(ResilienceOf(outbound), ResilienceOf(inbound!));
        Assert.NotSame(ResilienceOf(outbound), ResilienceOf(other));
    }

    private static object ResilienceOf(object connector) => connector switch
    {
        NetSuiteOutboundConnector c => c.Resilience,
        NetSuiteInboundConnector c => c.Resilience,
        SalesforceOutboundConnector c => c.Resilience,
        SalesforceInboundConnector c => c.Resilience,
        _ => throw new ArgumentException(connector.GetType().Name),
    };

    private static IConfigurationSection Section(string type, string url)
    {
        var settings = type == "netsuite"
            ? new Dictionary<string, string?>
            {
                ["Connectors:c:Type"] = "netsuite",
                ["Connectors:c:AccountId"] = "TSTDRV1",
                ["Connectors:c:BaseUrl"] = url,
                ["Connectors:c:ConsumerKey"] = "k",
                ["Connectors:c:ConsumerSecret"] = "s",
                ["Connectors:c:TokenId"] = "t",
                ["Connectors:c:TokenSecret"] = "ts",
                ["Connectors:c:Inbound:Enabled"] = "true",
                ["Connectors:c:Records:0:RecordType"] = "customer",
                ["Connectors:c:Records:0:Table"] = "ns_customers",
            }
            : new Dictionary<string, string?>
            {
                ["Connectors:c:Type"] = "salesforce",
                ["Connectors:c:LoginUrl"] = url,
                ["Connectors:c:ClientId"] = "id",
                ["Connectors:c:ClientSecret"] = "secret",
                ["Connectors:c:Inbound:Enabled"] = "true",
                ["Connectors:c:Objects:0:SObject"] = "Account",
                ["Connectors:c:Objects:0:Table"] = "sf_accounts",
            };
        return new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Connectors:c");
    }
}
