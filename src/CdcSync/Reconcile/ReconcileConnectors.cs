using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Inbound;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Reconcile;

/// <summary>
/// The readers of one reconcile run: the inbound side of every connector that reads its system,
/// built on the run's own counted HTTP clients (<see cref="CountingHttpClientFactory"/>).
/// </summary>
internal sealed class ReconcileConnectors : IDisposable
{
    private readonly CountingHttpClientFactory _http;

    private ReconcileConnectors(CountingHttpClientFactory http, IReadOnlyList<IInboundConnector> connectors)
    {
        _http = http;
        Connectors = connectors;
    }

    public IReadOnlyList<IInboundConnector> Connectors { get; }

    public static ReconcileConnectors Create(CdcSyncOptions options, NpgsqlDataSource hub, ApiCallBudget budget, ILoggerFactory loggers)
    {
        var http = new CountingHttpClientFactory(budget);
        var registry = new ConnectorRegistry(ConnectorRegistry.Default.Types, http);
        var connectors = options.Connectors
            .Select(c => registry.CreateInbound(c.Key, c.Value, hub, loggers))
            .OfType<IInboundConnector>()
            .ToList();
        if (connectors.Count == 0)
        {
            http.Dispose();
            throw new OperatorException("no connector of the config reads its system (Connectors:<name>:Inbound:Enabled); reconcile has nothing to compare.");
        }

        return new ReconcileConnectors(http, connectors);
    }

    public void Dispose()
    {
        foreach (var connector in Connectors)
        {
            (connector as IDisposable)?.Dispose();
        }

        _http.Dispose();
    }
}
