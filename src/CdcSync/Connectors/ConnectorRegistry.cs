using CdcSync.Connectors.Http;
using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Postgres;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors.Webhook;
using CdcSync.Hub;
using CdcSync.Inbound;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>
/// The connector types this build knows, by the name a config's <c>Type</c> gives. Building a
/// connector looks its type up here; nothing else switches on the type.
/// </summary>
public sealed class ConnectorRegistry
{
    private readonly Dictionary<string, ConnectorType> _byName = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<ConnectorType> _types = [];
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<NpgsqlDataSource, HubGateway> _gateways = [];

    public ConnectorRegistry(IEnumerable<ConnectorType> types, IHttpClientFactory? http = null)
    {
        foreach (var type in types)
        {
            _types.Add(type);
            foreach (var name in type.Aliases.Prepend(type.Name))
            {
                _byName.Add(name, type);
            }
        }

        Http = http ?? ConnectorHttpClients.Default;
    }

    /// <summary>Every connector type of this build, with the process's shared HTTP clients.</summary>
    public static ConnectorRegistry Default { get; } = new(
    [
        PostgresConnectorType.Type,
        SalesforceConnectorType.Type,
        NetSuiteConnectorType.Type,
        WebhookConnectorType.Type,
    ]);

    public IHttpClientFactory Http { get; }

    public IReadOnlyList<ConnectorType> Types => _types;

    /// <summary>The registered type a config's <c>Type</c> names, or null.</summary>
    public ConnectorType? Find(string? type) => type is null ? null : _byName.GetValueOrDefault(type);

    /// <summary>The type of the connector configured in <paramref name="section"/>; an unknown one is an error naming the choices.</summary>
    public ConnectorType TypeOf(string name, IConfigurationSection section) =>
        Find(section["Type"])
        ?? throw new OperatorException($"Config key Connectors:{name}:Type is '{section["Type"]}'; use one of: {Names}.");

    /// <summary>The types' names (no aliases), as the errors about an unknown Type list them.</summary>
    public string Names => string.Join(", ", _types.Select(t => t.Name));

    public IOutboundConnector CreateOutbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers) =>
        TypeOf(name, section).CreateOutbound(Context(name, section, hub, loggers));

    /// <summary>The inbound side of a connector when its config enables it (Inbound:Enabled = true), else null.</summary>
    public IInboundConnector? CreateInbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        if (!string.Equals(section["Inbound:Enabled"], "true", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var type = TypeOf(name, section);
        return type.CreateInbound is { } create
            ? create(Context(name, section, hub, loggers))
            : throw new OperatorException($"Config key Connectors:{name}:Inbound:Enabled is true, but a {section["Type"]} connector has no inbound side; remove it.");
    }

    // One gateway per hub data source: its column types are read once for every connector.
    private ConnectorContext Context(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers) =>
        new(name, section, hub, _gateways.GetValue(hub, static h => new HubGateway(h)), loggers, Http);

    /// <summary>A connector's name and every setting of its section: equal keys mean one system account configured alike.</summary>
    internal static string SectionKey(string name, IConfigurationSection section) =>
        name + "|" + section.Path + "|" + string.Join('|', section.AsEnumerable().OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
}
