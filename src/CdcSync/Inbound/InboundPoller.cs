using CdcSync.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Inbound;

/// <summary>
/// Polls one system for changes and writes them into the hub under the connector's origin,
/// with the cursor in the same hub transaction. A failing system is retried with backoff and
/// never stops the outbound side. While the system has nothing new the interval grows (doubling up
/// to <see cref="InboundOptions.MaxIdleInterval"/>, and never below what keeps a day of idle polls
/// within <see cref="InboundOptions.IdleApiShare"/> of the system's daily API allowance); the first
/// change read brings it back to <see cref="HubOptions.InboundPollInterval"/>.
/// A connector with a change stream (<see cref="IHasChangeStream"/>) has it run beside the polls:
/// while the stream is up only a safety poll runs (<see cref="IChangeStream.SafetyPollInterval"/>),
/// and a scan starts at once when the stream asks for a catch-up (a gap, an expired position).
/// </summary>
internal sealed class InboundPoller(IInboundConnector connector, HubOptions hub, TimeProvider time, ILogger logger, NpgsqlDataSource? hubSource = null)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // The worker's pool when it gave one; else (a pipeline run on its own) a pool of this poller's.
        await using var owned = hubSource is null ? NpgsqlDataSource.Create(hub.ConnectionString) : null;
        var writer = new StagingWriter(hubSource ?? owned!);
        var delay = hub.InboundPollInterval;
        var idle = hub.InboundPollInterval;
        var polls = InboundMetrics.InboundPolls.WithLabels(connector.Name);
        var failures = InboundMetrics.InboundPollFailures.WithLabels(connector.Name);
        var records = InboundMetrics.InboundRecords.WithLabels(connector.Name);
        var lag = InboundMetrics.InboundLagSeconds.WithLabels(connector.Name);
        var caughtUpAt = time.GetTimestamp();
        var stream = (connector as IHasChangeStream)?.ChangeStream;
        var streamUp = InboundMetrics.InboundStreamUp.WithLabels(connector.Name);
        var link = stream is null ? null : new ChangeStreamLink(up => streamUp.Set(up ? 1 : 0));
        using var stopStream = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var streaming = stream is null ? null : Task.Run(() => stream.RunAsync(link!, stopStream.Token), CancellationToken.None);
        var scanGeneration = link?.BeginScan() ?? 0;
        var scanDone = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (streaming is { IsFaulted: true })
                {
                    await streaming; // a permanent stream failure (credentials) ends the inbound side with its message
                }

                try
                {
                    if (scanDone && link is not null)
                    {
                        scanGeneration = link.BeginScan();
                    }

                    polls.Inc();
                    var cursor = await writer.ReadCursorAsync(connector.Name, cancellationToken);
                    var page = await connector.ReadChangesAsync(cursor, cancellationToken);
                    var changed = await writer.ApplyInboundAsync(connector.Name, page.Records, page.NextCursor, cancellationToken);
                    records.Inc(page.Records.Count);
                    scanDone = !page.HasMore;
                    if (!page.HasMore)
                    {
                        caughtUpAt = time.GetTimestamp();
                        link?.EndScan(scanGeneration);
                    }

                    lag.Set(time.GetElapsedTime(caughtUpAt).TotalSeconds);
                    if (page.Records.Count > 0)
                    {
                        logger.LogInformation("Inbound {Connector}: {Count} records read, {Changed} rows changed", connector.Name, page.Records.Count, changed);
                    }

                    delay = hub.InboundPollInterval;
                    idle = NextIdleInterval(idle, page.Records.Count > 0, hub.InboundPollInterval, connector.Options, (connector as IHasApiBudget)?.Budget);
                    if (!page.HasMore && link is null)
                    {
                        await Task.Delay(idle, time, cancellationToken);
                    }
                    else if (!page.HasMore && link is not null && !link.CatchUpPending)
                    {
                        // A stream that failed for good ends the wait too, so its error stops the worker at once.
                        await Task.WhenAny(link.WaitAsync(link.IsUp ? stream!.SafetyPollInterval : idle, time, cancellationToken), streaming!);
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
                {
                    // Retrying cannot help (credentials, grants, a field the system does not know):
                    // stop the pipeline with the cause and the fix instead of polling forever.
                    throw new OperatorException($"Inbound {connector.Name}: {Resilience.FailureClassifier.Describe(e)}", e);
                }
                catch (Exception e)
                {
                    failures.Inc();
                    lag.Set(time.GetElapsedTime(caughtUpAt).TotalSeconds);
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
        finally
        {
            if (streaming is not null)
            {
                await stopStream.CancelAsync();
                await streaming.ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        if (streaming is { IsFaulted: true })
        {
            await streaming;
        }
    }

    /// <summary>
    /// The wait before the next poll: the base interval after a poll that read something, else the
    /// previous wait doubled up to the idle maximum, and never less than the budget allows.
    /// </summary>
    internal static TimeSpan NextIdleInterval(TimeSpan previous, bool active, TimeSpan baseInterval, InboundOptions options, ApiBudget? budget)
    {
        if (active)
        {
            return baseInterval;
        }

        var next = TimeSpan.FromTicks(Math.Min(Math.Max(previous.Ticks, baseInterval.Ticks) * 2, Math.Max(options.MaxIdleInterval.Ticks, baseInterval.Ticks)));
        if (budget is { Max: > 0 } b)
        {
            // A day of idle polls costs 86,400 s / interval x CallsPerPoll calls: keep that within the share.
            var allowedCalls = b.Max * options.IdleApiShare;
            var floor = TimeSpan.FromSeconds(TimeSpan.FromDays(1).TotalSeconds * b.CallsPerPoll / Math.Max(allowedCalls, 1));
            if (floor > next)
            {
                next = floor;
            }
        }

        return next;
    }
}
