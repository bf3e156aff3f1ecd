using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Resilience;
using CdcSync.Replication;
using CdcSync.Routing;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

public enum PipelineHealth
{
    Starting,
    Running,
    Restarting,
    Stopped,
}

/// <summary>
/// Reader, router and one writer per connector. Any failure tears the whole unit down and starts
/// it again from the slot (after a capped backoff): the slot is only acknowledged up to what every
/// connector made durable, and connectors skip what is at or below their checkpoint, so a restart
/// re-sends and never loses. Transient failures (see <see cref="FailureClassifier"/>) restart it
/// forever with capped, jittered backoff that resets after a healthy period; permanent ones stop it
/// with one line (exit code 2 in the CLI). On stop, the reader stops, writers finish the complete transactions
/// they hold, checkpoints are recorded, and the slot is acknowledged one last time.
/// </summary>
public sealed class PipelineRunner(CdcSyncOptions options, Func<string, IOutboundConnector> connectorFactory, ILoggerFactory loggers, Func<string, IInboundConnector?>? inboundFactory = null, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ILogger _logger = loggers.CreateLogger<PipelineRunner>();
    private List<ConnectorWriter> _writers = [];
    private RestartBackoff? _backoff;
    private Router? _router;

    public PipelineHealth Health { get; private set; } = PipelineHealth.Starting;

    public string? LastError { get; private set; }

    public int Restarts { get; private set; }

    public IReadOnlyList<(string Connector, NpgsqlLogSequenceNumber Checkpoint, long Changes)> Progress =>
        _writers.Select(w => (w.Name, w.Committed, w.ChangesApplied)).ToList();

    public long ChangesSuppressedByOrigin => _router?.ChangesSuppressedByOrigin ?? 0;

    /// <summary>The current run's connector writers (for the worker's status and metrics).</summary>
    internal IReadOnlyList<ConnectorWriter> Writers => _writers;

    /// <summary>The current run's reader (for the worker's status and metrics); null between runs.</summary>
    internal ReplicationReader? Reader { get; private set; }

    /// <summary>Raised after each acknowledgement (tests and status use it).</summary>
    public event Action<NpgsqlLogSequenceNumber>? Acknowledged;

    public Task RunAsync(CancellationToken stoppingToken) => RunWithRestartsAsync(stoppingToken);

    private async Task RunWithRestartsAsync(CancellationToken stoppingToken)
    {
        var backoff = new RestartBackoff(options.Hub.InitialRestartDelay, options.Hub.MaxRestartDelay, options.Hub.HealthyPeriod, _time);
        _backoff = backoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
                Health = PipelineHealth.Stopped;
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested || e is OperatorException { Transient: false })
            {
                var description = FailureClassifier.Describe(e);
                LastError = description;
                if (FailureClassifier.Classify(e) == FailureKind.Permanent)
                {
                    Health = PipelineHealth.Stopped;
                    _logger.LogError("Pipeline stopped: {Error}", description);
                    throw e is OperatorException { Transient: false } operatorError ? operatorError : new OperatorException(description, e);
                }

                Restarts++;
                Health = PipelineHealth.Restarting;
                // A server that went away leaves dead connections in the pools; without this the
                // first retry after it is back fails on one of them.
                NpgsqlConnection.ClearAllPools();
                var delay = backoff.Next();
                _logger.LogWarning("Pipeline interrupted: {Error}; restarting from the slot in {Delay} (attempt {Attempt})", description.TrimEnd('.'), delay, backoff.Attempt);
                try
                {
                    await Task.Delay(delay, _time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        Health = PipelineHealth.Stopped;
    }

    private async Task RunOnceAsync(CancellationToken stoppingToken)
    {
        var hub = options.Hub;
        var routes = options.Routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value);
        // Everything the config points to is checked before the slot exists: a slot created for a
        // config that cannot run would hold WAL with nobody reading it.
        var problems = await ConfigChecker.CheckConnectivityAsync(options, stoppingToken);
        if (problems.Count > 0)
        {
            var permanent = problems.Where(p => p.Kind == FailureKind.Permanent).ToList();
            var first = (permanent.Count > 0 ? permanent : problems)[0].Message;
            throw new OperatorException(
                problems.Count == 1 ? first : $"{first} (and {problems.Count - 1} more problems: 'cdcsync check --config FILE' lists them all)",
                transient: permanent.Count == 0);
        }

        var connectors = new Dictionary<string, ConnectorWriter>(StringComparer.Ordinal);
        foreach (var name in routes.Values.SelectMany(v => v).Distinct(StringComparer.Ordinal))
        {
            connectors[name] = new ConnectorWriter(connectorFactory(name), loggers.CreateLogger($"CdcSync.Connectors.{name}"), hub.ChannelCapacity, hub.ChunkSize, hub.MaxBatchChanges, hub.MaxMegabytesInFlight * 1024L * 1024L, hub.CommitLinger, hub.MaxCommitDelay);
        }

        _writers = connectors.Values.ToList();
        try
        {
            await new SlotManager(hub.ConnectionString, loggers.CreateLogger<SlotManager>())
                .EnsureAsync(hub.Slot, hub.Publication, routes.Keys, stoppingToken);
            foreach (var writer in _writers)
            {
                var checkpoint = await writer.OpenAsync(stoppingToken);
                _logger.LogInformation("Connector {Connector} resumes after {Lsn}", writer.Name, checkpoint);
            }

            await using var acknowledger = new SlotAcknowledger(hub, _writers, _logger);
            acknowledger.Acknowledged += lsn => Acknowledged?.Invoke(lsn);
            _router = new Router(routes.ToDictionary(r => r.Key, r => r.Value.Select(n => connectors[n]).ToArray()));
            await using var reader = new ReplicationReader(
                new ReaderOptions(hub.ConnectionString, hub.Slot, hub.Publication, hub.Binary, hub.Streaming),
                loggers.CreateLogger<ReplicationReader>());
            Reader = reader;

            // Writers only stop on failure; on a clean stop they drain what the reader handed them.
            using var failure = new CancellationTokenSource();
            // A permanent inbound failure (credentials, a field the system does not know) stops the
            // stream like a clean stop: writers drain and commit what they hold, then it is raised.
            using var inboundFailed = new CancellationTokenSource();
            Exception? inboundFailure = null;
            using var readerStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, failure.Token, inboundFailed.Token);
            var writerTasks = _writers.Select(w => Task.Run(() => w.RunAsync(failure.Token), CancellationToken.None)).ToList();
            var readerTask = Task.Run(async () =>
            {
                try
                {
                    await reader.RunAsync(_router, default, readerStop.Token);
                }
                finally
                {
                    foreach (var writer in _writers)
                    {
                        writer.Complete();
                    }
                }
            }, CancellationToken.None);
            using var background = CancellationTokenSource.CreateLinkedTokenSource(failure.Token);
            var ackTask = acknowledger.RunAsync(reader, background.Token);
            var heartbeatTask = new Heartbeat(hub.ConnectionString, hub.HeartbeatInterval, _time, _logger).RunAsync(background.Token);
            var inboundTasks = options.Connectors.Keys
                .Select(name => (Name: name, Connector: inboundFactory?.Invoke(name)))
                .Where(c => c.Connector is not null)
                .Select(c => new InboundPoller(c.Connector!, hub, _time, loggers.CreateLogger<InboundPoller>()).RunAsync(background.Token)
                    .ContinueWith(
                        t =>
                        {
                            if (t.Exception?.InnerException is { } error)
                            {
                                Interlocked.CompareExchange(ref inboundFailure, error, null);
                                inboundFailed.Cancel();
                            }
                        },
                        TaskScheduler.Default))
                .ToList();
            heartbeatTask = Task.WhenAll(inboundTasks.Append(heartbeatTask));
            Health = PipelineHealth.Running;
            _backoff?.MarkHealthy();

            var all = writerTasks.Append(readerTask).ToList();
            while (all.Count > 0)
            {
                var done = await Task.WhenAny(all);
                all.Remove(done);
                if (done.IsFaulted && !(done.Exception?.InnerException is OperationCanceledException && stoppingToken.IsCancellationRequested))
                {
                    // One part failed: stop the rest, then let the restart loop take over.
                    await failure.CancelAsync();
                    await Task.WhenAll(all.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
                    await background.CancelAsync();
                    await Task.WhenAll(ackTask.ContinueWith(_ => { }, TaskScheduler.Default), heartbeatTask.ContinueWith(_ => { }, TaskScheduler.Default));
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(done.Exception!.InnerException!);
                }
            }

            // Clean stop: writers drained and committed. The stream is closed, so the final
            // position goes through SQL once the server has released the slot.
            await background.CancelAsync();
            await Task.WhenAll(ackTask.ContinueWith(_ => { }, TaskScheduler.Default), heartbeatTask.ContinueWith(_ => { }, TaskScheduler.Default));
            if (inboundFailure is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inboundFailure);
            }

            var final = acknowledger.SafePosition(reader);
            await reader.DisposeAsync();
            await acknowledger.AdvanceSlotAsync(final);
        }
        finally
        {
            foreach (var writer in _writers)
            {
                await writer.Connector.DisposeAsync();
            }
        }
    }
}
