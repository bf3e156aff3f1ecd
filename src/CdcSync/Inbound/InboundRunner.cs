using Npgsql;
using CdcSync.Configuration;
using Microsoft.Extensions.Logging;

namespace CdcSync.Inbound;

/// <summary>
/// The inbound direction: one <see cref="InboundPoller"/> per system with an inbound side, each
/// reading its system and writing into the hub's staging tables under the connector's replication
/// origin. It runs beside the outbound pipeline, not inside it, so an outbound restart (a NetSuite
/// 503) leaves every poll alone. Each poller rides out transient failures itself, with capped
/// backoff; a permanent one (credentials, a grant) ends the runner with that error, after stopping
/// the other pollers.
/// </summary>
internal sealed class InboundRunner(IReadOnlyList<IInboundConnector> connectors, HubOptions hub, TimeProvider time, ILoggerFactory loggers, NpgsqlDataSource? hubSource = null)
{
    public IReadOnlyList<IInboundConnector> Connectors => connectors;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var logger = loggers.CreateLogger<InboundPoller>();
        var polls = connectors.Select(c => Task.Run(() => new InboundPoller(c, hub, time, logger, hubSource).RunAsync(stop.Token), CancellationToken.None)).ToList();
        while (polls.Count > 0)
        {
            var done = await Task.WhenAny(polls);
            polls.Remove(done);
            if (done.IsFaulted)
            {
                await stop.CancelAsync();
                await Task.WhenAll(polls.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default)));
                await done;
            }
        }
    }
}
