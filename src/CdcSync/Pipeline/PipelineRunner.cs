using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
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
/// re-sends and never loses. On stop, the reader stops, writers finish the complete transactions
/// they hold, checkpoints are recorded, and the slot is acknowledged one last time.
/// </summary>
public sealed class PipelineRunner(CdcSyncOptions options, Func<string, IOutboundConnector> connectorFactory, ILoggerFactory loggers, Func<string, IInboundConnector?>? inboundFactory = null, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ILogger _logger = loggers.CreateLogger<PipelineRunner>();
    private List<ConnectorWriter> _writers = [];
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
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
                Health = PipelineHealth.Stopped;
                return;
            }
            catch (OperatorException)
            {
                Health = PipelineHealth.Stopped;
                throw;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                Restarts++;
                Health = PipelineHealth.Restarting;
                LastError = e.Message;
                _logger.LogError(e, "Pipeline failed; restarting from the slot in {Delay}", delay);
                try
                {
                    await Task.Delay(delay, _time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.Hub.MaxRestartDelay.Ticks));
            }
        }

        Health = PipelineHealth.Stopped;
    }

    private async Task RunOnceAsync(CancellationToken stoppingToken)
    {
        var hub = options.Hub;
        var routes = options.Routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value);
        await new SlotManager(hub.ConnectionString, loggers.CreateLogger<SlotManager>())
            .EnsureAsync(hub.Slot, hub.Publication, routes.Keys, stoppingToken);

        var connectors = new Dictionary<string, ConnectorWriter>(StringComparer.Ordinal);
        foreach (var name in routes.Values.SelectMany(v => v).Distinct(StringComparer.Ordinal))
        {
            connectors[name] = new ConnectorWriter(connectorFactory(name), loggers.CreateLogger($"CdcSync.Connectors.{name}"), hub.ChannelCapacity, hub.ChunkSize, hub.MaxBatchChanges, hub.MaxMegabytesInFlight * 1024L * 1024L, hub.CommitLinger, hub.MaxCommitDelay);
        }

        _writers = connectors.Values.ToList();
        try
        {
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
            using var readerStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, failure.Token);
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
                .Select(c => new InboundPoller(c.Connector!, hub, _time, loggers.CreateLogger<InboundPoller>()).RunAsync(background.Token))
                .ToList();
            heartbeatTask = Task.WhenAll(inboundTasks.Append(heartbeatTask));
            Health = PipelineHealth.Running;

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
                    var error = done.Exception!.InnerException!;
                    if (error is OperatorException)
                    {
                        throw error;
                    }

                    throw new InvalidOperationException(error.Message, error);
                }
            }

            // Clean stop: writers drained and committed. The stream is closed, so the final
            // position goes through SQL once the server has released the slot.
            await background.CancelAsync();
            await Task.WhenAll(ackTask.ContinueWith(_ => { }, TaskScheduler.Default), heartbeatTask.ContinueWith(_ => { }, TaskScheduler.Default));
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
