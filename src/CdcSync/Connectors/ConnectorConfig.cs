using CdcSync.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CdcSync.Connectors;

/// <summary>
/// The whole config, connectors included: the config machinery (<see cref="ConfigLoader"/>,
/// <see cref="ConfigOptions"/>) binds and validates the sections it owns, the registry's types
/// their connector sections, so Configuration knows no connector.
/// </summary>
internal static class ConnectorConfig
{
    /// <summary>Binds and checks the whole config; the first problem becomes the error, with a pointer to `check` for the rest.</summary>
    public static CdcSyncOptions Bind(IConfiguration configuration, ConnectorRegistry? registry = null)
    {
        var (options, problems) = BindAll(configuration, registry);
        if (problems.Count > 0)
        {
            throw ConfigLoader.Error(problems);
        }

        return options;
    }

    /// <summary>
    /// Every problem of the config itself, nothing connected to: unknown keys anywhere, values
    /// that do not bind or validate (nested options included), routes to undefined connectors.
    /// </summary>
    /// <param name="registry">The connector types a config may name (default: <see cref="ConnectorRegistry.Default"/>).</param>
    public static (CdcSyncOptions Options, List<string> Problems) BindAll(IConfiguration configuration, ConnectorRegistry? registry = null)
    {
        registry ??= ConnectorRegistry.Default;
        var (options, problems) = ConfigLoader.BindSections(configuration, type => registry.Find(type)?.OptionsType);
        foreach (var connector in configuration.GetSection("Connectors").GetChildren())
        {
            options.Connectors[connector.Key] = connector;
            var type = connector["Type"];
            if (registry.Find(type) is not { } kind)
            {
                problems.Add($"Config key Connectors:{connector.Key}:Type is '{type}'; use one of: {registry.Names}.");
                continue;
            }

            kind.Check(connector, problems);
        }

        ConfigLoader.CheckRoutes(options, problems);
        return (options, problems);
    }

    /// <summary>
    /// Registers the config in a host (<see cref="ConfigOptions"/>): Hub, Logging and every
    /// connector whose Type the registry knows, named after it, all validated when the host starts;
    /// and the <see cref="CdcSyncOptions"/> the worker takes.
    /// </summary>
    public static IServiceCollection AddCdcSyncOptions(this IServiceCollection services, IConfiguration configuration, ConnectorRegistry? registry = null)
    {
        registry ??= ConnectorRegistry.Default;
        return ConfigOptions.AddConfigSections(services, configuration, type => registry.Find(type)?.Register);
    }
}
