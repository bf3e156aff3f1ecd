using CdcSync.Configuration;
using CdcSync.Checkpoints;
using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Postgres;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors.Webhook;
using CdcSync.Hub;
using CdcSync.Inbound;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>Builds outbound connectors from their config sections (Type picks the kind).</summary>
public static class ConnectorFactory
{
    public static IOutboundConnector CreateOutbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        var type = section["Type"]?.ToLowerInvariant();
        switch (type)
        {
            case "postgres" or "postgresql":
            {
                var options = BindValidated(section, $"Connectors:{name}", new PostgresConnectorOptionsValidator());
                return new PostgresOutboundConnector(name, options, loggers.CreateLogger($"CdcSync.Connectors.{name}"), hub);
            }

            case "salesforce":
                return new SalesforceOutboundConnector(SalesforceClientFor(name, section, loggers), new HubWriter(hub), new DeadLetterStore(hub), new HubCheckpointStore(hub), loggers.CreateLogger<SalesforceOutboundConnector>());
            case "netsuite":
            {
                var (options, client) = NetSuiteClientFor(name, section, loggers);
                return new NetSuiteOutboundConnector(name, options, client, new HubWriter(hub), new HubCheckpointStore(hub), new DeadLetterStore(hub), loggers.CreateLogger<NetSuiteOutboundConnector>());
            }

            case "webhook":
                return new WebhookOutboundConnector(name, BindValidated(section, $"Connectors:{name}", new WebhookOptionsValidator()), new HubCheckpointStore(hub), new DeadLetterStore(hub), loggers.CreateLogger<WebhookOutboundConnector>());
            default:
                throw new OperatorException(
                    $"Config key Connectors:{name}:Type is '{section["Type"]}'; use one of: postgres, salesforce, netsuite, webhook.");
        }
    }

    /// <summary>The inbound side of a connector when its config enables it (Inbound:Enabled = true), else null.</summary>
    public static IInboundConnector? CreateInbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        if (!string.Equals(section["Inbound:Enabled"], "true", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return section["Type"]?.ToLowerInvariant() switch
        {
            "salesforce" => new SalesforceInboundConnector(SalesforceClientFor(name, section, loggers), hub, loggers.CreateLogger<SalesforceInboundConnector>()),
            "netsuite" => NetSuiteInbound(name, section, hub, loggers),
            _ => throw new OperatorException($"Config key Connectors:{name}:Inbound:Enabled is true, but a {section["Type"]} connector has no inbound side; remove it."),
        };
    }

    // One client per org and process: inbound and outbound share its token, rate limiter and breaker.
    // Keyed by the whole config section, so a second pipeline in the process (tests, a config
    // reload) with any other setting for the same connector name gets its own client.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SalesforceClient> SalesforceClients = new();

    private static SalesforceClient SalesforceClientFor(string name, IConfigurationSection section, ILoggerFactory loggers) =>
        SalesforceClients.GetOrAdd(SectionKey(name, section), _ =>
        {
            // Its objects, their lookups, Inbound and Resilience are validated with it.
            var options = BindValidated(section, $"Connectors:{name}", new SalesforceOptionsValidator());
            options.Name = name;
            if (options.Objects.Count == 0)
            {
                throw new OperatorException($"Config key Connectors:{name}:Objects is empty; list the sObjects to sync, e.g. [{{\"SObject\": \"Account\", \"Table\": \"sf_accounts\"}}] (see examples/salesforce-netsuite.json).");
            }

            return new SalesforceClient(options, new HttpClient { Timeout = Timeout.InfiniteTimeSpan }, loggers.CreateLogger<SalesforceClient>());
        });

    private static NetSuiteInboundConnector NetSuiteInbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        var (options, client) = NetSuiteClientFor(name, section, loggers);
        return new NetSuiteInboundConnector(name, options, client, hub, loggers.CreateLogger<NetSuiteInboundConnector>());
    }

    // One client per account and process, as for Salesforce: NetSuite's concurrency limit is the
    // account's, so inbound and outbound share one limiter, one breaker and one connection pool.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (NetSuiteOptions Options, NetSuiteClient Client)> NetSuiteClients = new();

    private static (NetSuiteOptions Options, NetSuiteClient Client) NetSuiteClientFor(string name, IConfigurationSection section, ILoggerFactory loggers) =>
        NetSuiteClients.GetOrAdd(SectionKey(name, section), _ =>
        {
            var options = NetSuiteOptionsFor(name, section);
            return (options, new NetSuiteClient(name, options, null, TimeProvider.System, loggers.CreateLogger<NetSuiteClient>()));
        });

    private static NetSuiteOptions NetSuiteOptionsFor(string name, IConfigurationSection section)
    {
        // Its records, their lookups, Inbound and Resilience are validated with it.
        var options = BindValidated(section, $"Connectors:{name}", new NetSuiteOptionsValidator());
        if (options.Records.Count == 0)
        {
            throw new OperatorException($"Config key Connectors:{name}:Records is empty; list the record types to sync, e.g. [{{\"RecordType\": \"customer\", \"Table\": \"ns_customers\"}}] (see examples/salesforce-netsuite.json).");
        }

        return options;
    }

    /// <summary>A connector's name and every setting of its section: equal keys mean one system account configured alike.</summary>
    private static string SectionKey(string name, IConfigurationSection section) =>
        name + "|" + section.Path + "|" + string.Join('|', section.AsEnumerable().OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));

    /// <summary>
    /// A connector's options bound from its section and checked by the class's generated validator
    /// (<see cref="ConfigOptions"/>); the first problem is the error, named as `check` names it.
    /// </summary>
    internal static T BindValidated<T>(IConfigurationSection section, string path, IValidateOptions<T> validator)
        where T : class, new()
    {
        var problems = new List<string>();
        var options = ConfigOptions.Bind(section, path, validator, problems);
        return problems.Count == 0 ? options : throw new OperatorException(problems[0]);
    }
}
