using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Replication;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>
/// One kind of connector as the registry knows it: the names its <c>Type</c> setting may take, its
/// options class and how a section of it is validated (the unknown-key check reads
/// <see cref="OptionsType"/>, the config loader and `check` run <see cref="Check"/>, the worker's
/// host <see cref="Register"/>), what `check` connects to, and how its outbound and inbound halves
/// are built. Each system's registration lives in its own folder (e.g. <c>Salesforce/SalesforceConnectorType.cs</c>).
/// </summary>
/// <remarks>
/// Made by <see cref="Of{TOptions}"/> from the options class's generated validator: typed delegates,
/// so no step creates or inspects options by reflection.
/// </remarks>
public sealed record ConnectorType
{
    private ConnectorType(
        string name,
        Type optionsType,
        Action<IConfigurationSection, List<string>> check,
        Action<IServiceCollection, IConfigurationSection> register,
        Func<ConnectorContext, IOutboundConnector> createOutbound,
        Func<ConnectorContext, IInboundConnector>? createInbound)
    {
        Name = name;
        OptionsType = optionsType;
        Check = check;
        Register = register;
        CreateOutbound = createOutbound;
        CreateInbound = createInbound;
    }

    public string Name { get; }

    /// <summary>The options class a connector section of this type binds to.</summary>
    public Type OptionsType { get; }

    /// <summary>Binds and validates a connector section, adding every problem (named Connectors:{name}:...).</summary>
    public Action<IConfigurationSection, List<string>> Check { get; }

    /// <summary>Registers a connector section as named options (the connector's name), validated on start.</summary>
    public Action<IServiceCollection, IConfigurationSection> Register { get; }

    public Func<ConnectorContext, IOutboundConnector> CreateOutbound { get; }

    public Func<ConnectorContext, IInboundConnector>? CreateInbound { get; }

    /// <summary>Other spellings of <see cref="Name"/> accepted in the config (e.g. postgresql).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>
    /// The target keeps this connector's checkpoint in the same transaction as the rows (a database);
    /// otherwise the hub keeps it (<c>cdc.checkpoints</c>).
    /// </summary>
    public bool CheckpointInTarget { get; init; }

    /// <summary>
    /// What `check` (and `run`, before it creates a slot) checks of what a connector's section points
    /// to. Null: every absolute http(s) URL in its settings must accept a TCP connection
    /// (<see cref="Http.HttpEndpointCheck"/>).
    /// </summary>
    internal Func<ConnectorCheck, CancellationToken, Task>? CheckConnectivityAsync { get; init; }

    /// <summary>A connector type whose sections bind to <typeparamref name="TOptions"/>, checked by its generated <paramref name="validator"/>.</summary>
    public static ConnectorType Of<TOptions>(
        string name,
        IValidateOptions<TOptions> validator,
        Func<ConnectorContext, IOutboundConnector> createOutbound,
        Func<ConnectorContext, IInboundConnector>? createInbound = null)
        where TOptions : class, new() => new(
            name,
            typeof(TOptions),
            (section, problems) => ConfigOptions.Bind(section, Path(section.Key), validator, problems),
            (services, section) =>
            {
                services.AddOptions<TOptions>(section.Key).Bind(section).ValidateOnStart();
                services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>>(new ConfigKeyValidator<TOptions>(validator, n => Path(n ?? string.Empty))));
            },
            createOutbound,
            createInbound);

    internal static string Path(string name) => $"Connectors:{name}";
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
    public string Path => ConnectorType.Path(Name);
}

/// <summary>
/// A connector's connectivity check: its name and section, the hub tables routed to it, and where
/// to add what is wrong (<see cref="ConnectorType.CheckConnectivityAsync"/>).
/// </summary>
internal sealed record ConnectorCheck(string Name, IConfigurationSection Section, IReadOnlyList<TableName> RoutedTables, List<ConfigProblem> Problems);
