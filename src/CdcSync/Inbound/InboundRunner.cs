using Npgsql;
using CdcSync.Configuration;
using CdcSync.Onboarding;
using CdcSync.Resilience;
using Microsoft.Extensions.Logging;

namespace CdcSync.Inbound;

/// <summary>
/// The inbound direction: one <see cref="InboundPoller"/> per system with an inbound side, each
/// reading its system and writing into the hub's staging tables under the connector's replication
/// origin. It runs beside the outbound pipeline, not inside it, so an outbound restart (a NetSuite
/// 503) leaves every poll alone. Each poller rides out transient failures itself, with capped
/// backoff; a permanent one (credentials, a grant) ends the runner with that error, after stopping
/// the other pollers. A system with no cursor yet (the first start, a system added later) or an
/// onboarding not settled is onboarded first (<see cref="OnboardingService"/>: load, match,
/// settle), and only then polled; the others poll meanwhile.
/// </summary>
internal sealed class InboundRunner(IReadOnlyList<IInboundConnector> connectors, HubOptions hub, TimeProvider time, ILoggerFactory loggers, NpgsqlDataSource? hubSource = null)
{
    public IReadOnlyList<IInboundConnector> Connectors => connectors;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var logger = loggers.CreateLogger<InboundPoller>();
        await using var owned = hubSource is null ? NpgsqlDataSource.Create(hub.ConnectionString) : null;
        var source = hubSource ?? owned!;
        var onboarding = new OnboardingService(source, loggers.CreateLogger<OnboardingService>());
        var pendingNames = await PendingAsync(onboarding, stop.Token);
        var pending = connectors.Where(c => pendingNames.Contains(c.Name)).ToList();

        Task Poll(IInboundConnector c) => Task.Run(() => new InboundPoller(c, hub, time, logger, source).RunAsync(stop.Token), CancellationToken.None);
        var tasks = connectors.Except(pending).Select(Poll).ToList();
        var onboard = pending.Count == 0 ? null : Task.Run(() => OnboardAsync(onboarding, pending, stop.Token), CancellationToken.None);
        if (onboard is not null)
        {
            tasks.Add(onboard);
        }

        while (tasks.Count > 0)
        {
            var done = await Task.WhenAny(tasks);
            tasks.Remove(done);
            if (done.IsFaulted)
            {
                await stop.CancelAsync();
                await Task.WhenAll(tasks.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default)));
                await done;
            }

            if (done == onboard && done.IsCompletedSuccessfully && !stop.IsCancellationRequested)
            {
                tasks.AddRange(pending.Select(Poll));
            }
        }
    }

    /// <summary>The connectors to onboard; none when the hub predates onboarding (it then polls as before).</summary>
    private async Task<HashSet<string>> PendingAsync(OnboardingService onboarding, CancellationToken cancellationToken)
    {
        var log = loggers.CreateLogger<InboundRunner>();
        var delay = hub.InitialRestartDelay;
        while (true)
        {
            try
            {
                if (!await onboarding.IsAvailableAsync(cancellationToken))
                {
                    log.LogWarning("The hub has no onboarding functions (cdc.onboard_begin): systems are polled without matching existing records first; run 'cdcsync migrate' with this version");
                    return [];
                }

                return [.. await onboarding.PendingAsync(connectors.Select(c => c.Name), cancellationToken)];
            }
            catch (Exception e) when (e is not OperationCanceledException && FailureClassifier.Classify(e) != FailureKind.Permanent)
            {
                log.LogWarning("Reading the onboarding state failed ({Error}); retrying in {Delay}", FailureClassifier.Describe(e), delay);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, hub.MaxRestartDelay.Ticks));
            }
        }
    }

    /// <summary>
    /// Load, match and settle the systems that need it, retrying transient failures with capped
    /// backoff (each retry resumes after the last page loaded). Records held for review wait for
    /// 'cdcsync matches'; they do not stop the systems from being polled.
    /// </summary>
    private async Task OnboardAsync(OnboardingService onboarding, IReadOnlyList<IInboundConnector> pending, CancellationToken cancellationToken)
    {
        var log = loggers.CreateLogger<InboundRunner>();
        var delay = hub.InitialRestartDelay;
        var progress = new LogProgress(log, time);
        while (true)
        {
            try
            {
                log.LogInformation("Onboarding {Connectors} before polling them: load, match, settle", string.Join(", ", pending.Select(c => c.Name)));
                var result = await onboarding.RunAsync(pending, dryRun: false, progress, cancellationToken);
                if (result.OpenReviews > 0)
                {
                    log.LogWarning("Onboarding settled; {Count} records wait for review and are held (nothing created or linked for them): 'cdcsync matches list'", result.OpenReviews);
                }
                else
                {
                    log.LogInformation("Onboarding settled: {Connectors}", string.Join(", ", pending.Select(c => c.Name)));
                }

                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && FailureClassifier.Classify(e) != FailureKind.Permanent && e is not OperatorException { Transient: false })
            {
                log.LogWarning("Onboarding interrupted ({Error}); resuming in {Delay}", FailureClassifier.Describe(e), delay);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, hub.MaxRestartDelay.Ticks));
            }
        }
    }

    /// <summary>Load progress in the log, at most every 10 s per system and when it is done.</summary>
    private sealed class LogProgress(ILogger logger, TimeProvider time) : IProgress<LoadProgress>
    {
        private readonly Dictionary<string, long> _last = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();

        public void Report(LoadProgress value)
        {
            lock (_lock)
            {
                var now = time.GetTimestamp();
                if (!value.Done && _last.TryGetValue(value.Connector, out var last) && time.GetElapsedTime(last, now) < TimeSpan.FromSeconds(10))
                {
                    return;
                }

                _last[value.Connector] = now;
            }

            logger.LogInformation("Onboarding {Connector}: {Count} records loaded{Done}", value.Connector, value.Records, value.Done ? " (done)" : "");
        }
    }
}
