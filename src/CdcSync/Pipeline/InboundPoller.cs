using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Pipeline;

/// <summary>
/// Polls one system for changes and writes them into the hub under the connector's origin,
/// with the cursor in the same hub transaction. A failing system is retried with backoff and
/// never stops the outbound side.
/// </summary>
internal sealed class InboundPoller(IInboundConnector connector, HubOptions hub, TimeProvider time, ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var dataSource = NpgsqlDataSource.Create(hub.ConnectionString);
        var writer = new HubWriter(dataSource);
        var delay = hub.InboundPollInterval;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var cursor = await writer.ReadCursorAsync(connector.Name, cancellationToken);
                var page = await connector.ReadChangesAsync(cursor, cancellationToken);
                var changed = await writer.ApplyInboundAsync(connector.Name, page.Records, page.NextCursor, cancellationToken);
                if (page.Records.Count > 0)
                {
                    logger.LogInformation("Inbound {Connector}: {Count} records read, {Changed} rows changed", connector.Name, page.Records.Count, changed);
                }

                delay = hub.InboundPollInterval;
                if (!page.HasMore)
                {
                    await Task.Delay(hub.InboundPollInterval, time, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Inbound {Connector} failed ({Kind}): {Error}; retrying in {Delay}", connector.Name, Resilience.FailureClassifier.Classify(e), Resilience.FailureClassifier.Describe(e), delay);
                try
                {
                    await Task.Delay(delay, time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, hub.MaxRestartDelay.Ticks));
            }
        }
    }
}
