using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Postgres;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors.Webhook;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

/// <summary>
/// What a connector's Type binds to and how that is validated, once per kind: the unknown-key
/// check reads <see cref="OptionsType"/>, `check` runs <see cref="Check"/>, the worker's host
/// <see cref="Register"/>. Typed delegates made by <see cref="Of{T}"/>, so no step creates or
/// inspects options by reflection.
/// </summary>
internal sealed class ConnectorKind
{
    /// <summary>The connector Types the config may name (case does not count).</summary>
    public static IReadOnlyDictionary<string, ConnectorKind> All { get; } = new Dictionary<string, ConnectorKind>(StringComparer.OrdinalIgnoreCase)
    {
        ["postgres"] = Of(new PostgresConnectorOptionsValidator()),
        ["postgresql"] = Of(new PostgresConnectorOptionsValidator()),
        ["salesforce"] = Of(new SalesforceOptionsValidator()),
        ["netsuite"] = Of(new NetSuiteOptionsValidator()),
        ["webhook"] = Of(new WebhookOptionsValidator()),
    };

    private ConnectorKind(Type optionsType, Action<IConfigurationSection, List<string>> check, Action<IServiceCollection, IConfigurationSection> register)
    {
        OptionsType = optionsType;
        Check = check;
        Register = register;
    }

    /// <summary>The options class a connector section of this kind binds to.</summary>
    public Type OptionsType { get; }

    /// <summary>Binds and validates a connector section, adding every problem (named Connectors:{name}:...).</summary>
    public Action<IConfigurationSection, List<string>> Check { get; }

    /// <summary>Registers a connector section as named options (the connector's name), validated on start.</summary>
    public Action<IServiceCollection, IConfigurationSection> Register { get; }

    private static ConnectorKind Of<T>(IValidateOptions<T> validator)
        where T : class, new() => new(
            typeof(T),
            (section, problems) => ConfigOptions.Bind(section, Path(section.Key), validator, problems),
            (services, section) =>
            {
                services.AddOptions<T>(section.Key).Bind(section).ValidateOnStart();
                services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<T>>(new ConfigKeyValidator<T>(validator, name => Path(name ?? string.Empty))));
            });

    private static string Path(string name) => $"Connectors:{name}";
}
