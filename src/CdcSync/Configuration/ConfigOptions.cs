using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

/// <summary>
/// The config's options classes, bound and validated the standard way: in the worker's host with
/// <c>AddOptions&lt;T&gt;().Bind(section).ValidateOnStart()</c>, each connector as named options of
/// its Type's class; in `check` and the other verbs, which build no host, through the same
/// generated validators called directly. Either way the rules are the classes' DataAnnotations and
/// a failure is one line naming its config key (<see cref="ConfigKeyValidator{TOptions}"/>).
/// </summary>
internal static class ConfigOptions
{
    /// <summary>
    /// Registers the config in a host: Hub, Logging, every connector whose Type is known (named
    /// after it; <paramref name="registrationOf"/> gives how for a Type, null when it is unknown),
    /// all validated when the host starts, so a bad value stops the start with an
    /// <see cref="OptionsValidationException"/> (<see cref="ConfigLoader.Explain"/> makes it one
    /// line); and the <see cref="CdcSyncOptions"/> the worker takes, built from those options.
    /// The connector types are the registry's: ConnectorConfig.AddCdcSyncOptions passes them.
    /// </summary>
    internal static IServiceCollection AddConfigSections(IServiceCollection services, IConfiguration configuration, Func<string, Action<IServiceCollection, IConfigurationSection>?> registrationOf)
    {
        Duration.UseForConfiguration();
        services.AddOptions<HubOptions>()
            .Bind(configuration.GetSection("Hub"))
            // A connection string that does not parse is left as it is and reported by ConnectorConfig.BindAll, which names the problem better than a validator could.
            .PostConfigure(hub => _ = ConfigLoader.PrepareHubConnection(hub))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HubOptions>>(new ConfigKeyValidator<HubOptions>(new HubOptionsValidator(), _ => "Hub")));
        services.AddOptions<LoggingOptions>().Bind(configuration.GetSection("Logging"));
        services.AddOptions<AlertsOptions>().Bind(configuration.GetSection("Alerts")).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AlertsOptions>>(new ConfigKeyValidator<AlertsOptions>(new AlertsOptionsValidator(), _ => "Alerts")));
        services.AddOptions<Reconcile.ReconcileOptions>().Bind(configuration.GetSection("Reconcile")).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Reconcile.ReconcileOptions>>(new ConfigKeyValidator<Reconcile.ReconcileOptions>(new Reconcile.ReconcileOptionsValidator(), _ => "Reconcile")));
        services.AddOptions<ConsoleOptions>().Bind(configuration.GetSection("Console")).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConsoleOptions>>(new ConfigKeyValidator<ConsoleOptions>(new ConsoleOptionsValidator(), _ => "Console")));

        var connectors = new Dictionary<string, IConfigurationSection>();
        foreach (var connector in configuration.GetSection("Connectors").GetChildren())
        {
            connectors[connector.Key] = connector;
            if (connector["Type"] is { } type && registrationOf(type) is { } register)
            {
                register(services, connector);
            }
        }

        services.AddSingleton(sp => new CdcSyncOptions
        {
            Hub = sp.GetRequiredService<IOptions<HubOptions>>().Value,
            Logging = sp.GetRequiredService<IOptions<LoggingOptions>>().Value,
            Alerts = sp.GetRequiredService<IOptions<AlertsOptions>>().Value,
            Reconcile = sp.GetRequiredService<IOptions<Reconcile.ReconcileOptions>>().Value,
            Console = sp.GetRequiredService<IOptions<ConsoleOptions>>().Value,
            Routes = ConfigLoader.ReadRoutes(configuration),
            Connectors = connectors,
        });
        return services;
    }

    /// <summary>
    /// New options bound from a section and validated, every problem added: a value that does
    /// not convert is named with the forms it takes and keeps its default (<see cref="ConfigSchema.TryBind"/>),
    /// so the rest is still bound and checked.
    /// </summary>
    /// <param name="path">The section's config path, which the problems name (<c>Hub</c>, <c>Connectors:crm</c>).</param>
    /// <param name="validator">The class's generated validator; null for a class without rules.</param>
    internal static T Bind<T>(IConfigurationSection section, string path, IValidateOptions<T>? validator, List<string> problems)
        where T : class, new()
    {
        var options = new T();
        ConfigSchema.TryBind(section, options, problems);
        if (validator is not null && new ConfigKeyValidator<T>(validator, _ => path).Validate(path, options) is { Failed: true } result)
        {
            problems.AddRange(result.Failures ?? []);
        }

        return options;
    }
}
