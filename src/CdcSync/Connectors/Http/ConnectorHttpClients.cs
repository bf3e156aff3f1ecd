using Microsoft.Extensions.DependencyInjection;

namespace CdcSync.Connectors.Http;

/// <summary>
/// The named <see cref="HttpClient"/>s of the HTTP connectors, from <see cref="IHttpClientFactory"/>:
/// one handler policy per system (connection lifetime, no client-side timeout: each connector's
/// resilience pipeline times requests out). The worker's host registers them; verbs and tests
/// without a host use <see cref="Default"/>.
/// </summary>
internal static class ConnectorHttpClients
{
    public const string Salesforce = "CdcSync.Salesforce";
    public const string NetSuite = "CdcSync.NetSuite";
    public const string Webhook = "CdcSync.Webhook";

    private static readonly Lazy<IHttpClientFactory> Shared = new(() =>
        new ServiceCollection().AddConnectorHttpClients().BuildServiceProvider().GetRequiredService<IHttpClientFactory>());

    /// <summary>The process's factory when no host registered one.</summary>
    public static IHttpClientFactory Default => Shared.Value;

    public static IServiceCollection AddConnectorHttpClients(this IServiceCollection services)
    {
        foreach (var name in new[] { Salesforce, NetSuite, Webhook })
        {
            services.AddHttpClient(name)
                .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan)
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        }

        return services;
    }
}
