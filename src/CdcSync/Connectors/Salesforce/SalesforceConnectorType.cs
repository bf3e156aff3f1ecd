using CdcSync.Configuration;
using System.Collections.Concurrent;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// The Salesforce connector in the registry. One client per org and process: inbound and outbound
/// share its token, rate limiter and breaker. Keyed by the whole config section, so a second
/// pipeline in the process (tests, a config reload) with any other setting gets its own client.
/// </summary>
internal static class SalesforceConnectorType
{
    // Per HTTP client factory: a registry built on its own factory (a reconcile run counting its
    // API calls) gets its own clients.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IHttpClientFactory, ConcurrentDictionary<string, SalesforceClient>> ClientsByFactory = [];

    public static ConnectorType Type { get; } = ConnectorType.Of(
        "salesforce",
        new SalesforceOptionsValidator(),
        context => new SalesforceOutboundConnector(ClientFor(context), context.Gateway, context.Loggers.CreateLogger<SalesforceOutboundConnector>()),
        context => new SalesforceInboundConnector(ClientFor(context), context.Hub, context.Loggers.CreateLogger<SalesforceInboundConnector>())) with
    {
        CheckConnectivityAsync = SalesforceCheck.CheckAsync,
    };

    private static SalesforceClient ClientFor(ConnectorContext context) =>
        ClientsByFactory.GetValue(context.Http, static _ => new()).GetOrAdd(ConnectorRegistry.SectionKey(context.Name, context.Section) + "\n" + context.Hub.ConnectionString, _ =>
        {
            // Its objects, their lookups, Inbound and Resilience are validated with it.
            var options = ConnectorFactory.BindValidated(context.Section, context.Path, new SalesforceOptionsValidator());
            options.Name = context.Name;
            if (options.Objects.Count == 0)
            {
                throw new OperatorException($"Config key {context.Path}:Objects is empty; list the sObjects to sync, e.g. [{{\"SObject\": \"Account\", \"Table\": \"sf_accounts\"}}] (see examples/salesforce-netsuite.json).");
            }

            return new SalesforceClient(options, context.Http.CreateClient(ConnectorHttpClients.Salesforce), context.Loggers.CreateLogger<SalesforceClient>(), clientId: new SalesforceClientId(context.Hub));
        });
}
