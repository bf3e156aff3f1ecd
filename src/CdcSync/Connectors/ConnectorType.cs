using CdcSync.Hub;
using CdcSync.Inbound;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>
/// One kind of connector as the registry knows it: the names its <c>Type</c> setting may take, its
/// options class (for validation and unknown-key hints), and how its outbound and inbound halves are
/// built. Each system's registration lives in its own folder (e.g. <c>Salesforce/SalesforceConnectorType.cs</c>).
/// </summary>
public sealed record ConnectorType(
    string Name,
    Type OptionsType,
    Func<ConnectorContext, IOutboundConnector> CreateOutbound,
    Func<ConnectorContext, IInboundConnector>? CreateInbound = null)
{
    /// <summary>Other spellings of <see cref="Name"/> accepted in the config (e.g. postgresql).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>
    /// The target keeps this connector's checkpoint in the same transaction as the rows (a database);
    /// otherwise the hub keeps it (<c>cdc.checkpoints</c>).
    /// </summary>
    public bool CheckpointInTarget { get; init; }
}

/// <summary>What building a connector may use: its name and config section, the hub, logging and HTTP clients.</summary>
public sealed class ConnectorContext(string name, IConfigurationSection section, NpgsqlDataSource hub, HubGateway gateway, ILoggerFactory loggers, IHttpClientFactory http)
{
    public string Name { get; } = name;

    public IConfigurationSection Section { get; } = section;

    /// <summary>The hub's data source (inbound connectors write staging rows through the runner's StagingWriter).</summary>
    public NpgsqlDataSource Hub { get; } = hub;

    /// <summary>The one way an outbound connector reaches the hub.</summary>
    public HubGateway Gateway { get; } = gateway;

    public ILoggerFactory Loggers { get; } = loggers;

    /// <summary>Named clients per system (<see cref="Http.ConnectorHttpClients"/>).</summary>
    public IHttpClientFactory Http { get; } = http;

    /// <summary>Where this connector's settings live, for error messages.</summary>
    public string Path => $"Connectors:{Name}";
}
