using CdcSync.Configuration;
using System.Collections.Concurrent;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// The NetSuite connector in the registry. One client per account and process, as for Salesforce:
/// NetSuite's concurrency limit is the account's, so inbound and outbound share one limiter, one
/// breaker and one connection pool.
/// </summary>
internal static class NetSuiteConnectorType
{
    // Per HTTP client factory: a registry built on its own factory (a reconcile run counting its
    // API calls) gets its own clients.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IHttpClientFactory, ConcurrentDictionary<string, (NetSuiteOptions Options, NetSuiteClient Client)>> ClientsByFactory = [];

    public static ConnectorType Type { get; } = ConnectorType.Of(
        "netsuite",
        new NetSuiteOptionsValidator(),
        context =>
        {
            var (options, client) = ClientFor(context);
            return new NetSuiteOutboundConnector(context.Name, options, client, context.Gateway, context.Loggers.CreateLogger<NetSuiteOutboundConnector>());
        },
        context =>
        {
            var (options, client) = ClientFor(context);
            return new NetSuiteInboundConnector(context.Name, options, client, context.Hub, context.Loggers.CreateLogger<NetSuiteInboundConnector>());
        });

    private static (NetSuiteOptions Options, NetSuiteClient Client) ClientFor(ConnectorContext context) =>
        ClientsByFactory.GetValue(context.Http, static _ => new()).GetOrAdd(ConnectorRegistry.SectionKey(context.Name, context.Section), _ =>
        {
            // Its records, their lookups, Inbound and Resilience are validated with it.
            var options = ConnectorFactory.BindValidated(context.Section, context.Path, new NetSuiteOptionsValidator());
            if (options.Records.Count == 0)
            {
                throw new OperatorException($"Config key {context.Path}:Records is empty; list the record types to sync, e.g. [{{\"RecordType\": \"customer\", \"Table\": \"ns_customers\"}}] (see examples/salesforce-netsuite.json).");
            }

            return (options, new NetSuiteClient(context.Name, options, context.Http.CreateClient(ConnectorHttpClients.NetSuite), TimeProvider.System, context.Loggers.CreateLogger<NetSuiteClient>()));
        });
}
