using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Resilience;
using CdcSync.Replication;
using CdcSync.Routing;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

internal enum PipelineHealth
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
/// Beside it, from the moment the slot exists, the inbound side runs (<see cref="InboundRunner"/>): it is
/// not torn down by an outbound restart, and a permanent inbound failure stops the outbound side
/// cleanly, then the pipeline.
/// </summary>
internal sealed class PipelineRunner(
    CdcSyncOptions options,
    Func<string, IOutboundConnector> connectorFactory,
    ILoggerFactory loggers,
    Func<string, IInboundConnector?>? inboundFactory = null,
    TimeProvider? timeProvider = null,
    NpgsqlDataSource? hubSource = null)
{
    // The hub's one pool for state and staging writes (the worker's, when it passes it); the
    // replication session, the lease and the streaming probe keep their own connections.
    private readonly NpgsqlDataSource? _givenHub = hubSource;

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ILogger _logger = loggers.CreateLogger<PipelineRunner>();
    private List<ConnectorWriter> _writers = [];
    private RestartBackoff? _backoff;
    private Router? _router;
    private readonly TaskCompletionSource _slotReady = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PipelineHealth Health { get; private set; } = PipelineHealth.Starting;

    public string? LastError { get; private set; }

    /// <summary>
    /// What the pipeline is doing while it is not yet streaming (checking connections, creating the
    /// slot and what that waits for, starting replication, waiting to restart); null while running.
    /// </summary>
    public string? Stage { get; private set; } = "starting";

    /// <summary>How long the reader may take from START_REPLICATION to an active session on the slot before the attempt restarts.</summary>
    public static readonly TimeSpan StreamingStartTimeout = TimeSpan.FromSeconds(60);

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

        // The inbound direction runs beside the outbound one, started once the slot exists (hub writes
        // made before it would never reach the other systems) and kept across outbound restarts. A
        // permanent inbound failure stops the outbound side cleanly, then stops the pipeline with it.
        var inbound = new InboundRunner(
            options.Connectors.Keys.Select(name => inboundFactory?.Invoke(name)).OfType<IInboundConnector>().ToList(),
            options.Hub, _time, loggers, _givenHub);
        using var inboundStop = new CancellationTokenSource();
        using var inboundFailed = new CancellationTokenSource();
        Exception? inboundFailure = null;
        var inboundTask = inbound.Connectors.Count == 0
            ? Task.CompletedTask
            : _slotReady.Task.ContinueWith(_ => inbound.RunAsync(inboundStop.Token), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default)
                .Unwrap()
                .ContinueWith(
                    t =>
                    {
                        if (t.Exception?.InnerException is { } error and not OperationCanceledException)
                        {
                            inboundFailure = error is OperatorException ? error : new OperatorException(FailureClassifier.Describe(error), error);
                            inboundFailed.Cancel();
                        }
                    },
                    TaskScheduler.Default);
        using var runStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, inboundFailed.Token);
        try
        {
            await RunOutboundWithRestartsAsync(backoff, runStop.Token);
        }
        catch (OperationCanceledException) when (inboundFailure is not null && !stoppingToken.IsCancellationRequested)
        {
            // The outbound side stopped because the inbound side failed: raised below.
        }
        finally
        {
            await inboundStop.CancelAsync();
            _slotReady.TrySetCanceled(CancellationToken.None);
            await inboundTask;
            foreach (var connector in inbound.Connectors)
            {
                (connector as IDisposable)?.Dispose();
            }
        }

        if (inboundFailure is not null && !stoppingToken.IsCancellationRequested)
        {
            var description = FailureClassifier.Describe(inboundFailure);
            LastError = description;
            Health = PipelineHealth.Stopped;
            _logger.LogError("Pipeline stopped: {Error}", description);
            throw inboundFailure as OperatorException ?? new OperatorException(description, inboundFailure);
        }
    }

    private async Task RunOutboundWithRestartsAsync(RestartBackoff backoff, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
                Health = PipelineHealth.Stopped;
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Stopped before streaming (while checking systems or preparing the slot): a stop,
                // not a failure; nothing was read, so nothing is left to drain.
                break;
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
                PipelineMetrics.Restarts.Inc();
                Health = PipelineHealth.Restarting;
                Stage = "restarting after: " + description;
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
        Stage = "checking the hub and every system the config names";
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
            connectors[name] = new ConnectorWriter(connectorFactory(name), loggers.CreateLogger($"CdcSync.Connectors.{name}"), hub.ChannelCapacity, hub.ChunkSize, hub.MaxBatchChanges, hub.MaxMegabytesInFlight * 1024L * 1024L, hub.CommitLinger, hub.MaxCommitDelay, _time);
        }

        _writers = connectors.Values.ToList();
        try
        {
            Stage = $"preparing publication {hub.Publication} and slot {hub.Slot}";
            await new SlotManager(hub.ConnectionString, loggers.CreateLogger<SlotManager>(), _time) { Progress = stage => Stage = stage }
                .EnsureAsync(hub.Slot, hub.Publication, routes.Keys, stoppingToken);
            _slotReady.TrySetResult();
            Stage = "opening connectors";
            foreach (var writer in _writers)
            {
                var checkpoint = await writer.OpenAsync(stoppingToken);
                _logger.LogInformation("Connector {Connector} resumes after {Lsn}", writer.Name, checkpoint);
            }

            await using var acknowledger = new SlotAcknowledger(hub, _writers, _logger, hubSource: _givenHub);
            acknowledger.Acknowledged += lsn => Acknowledged?.Invoke(lsn);
            _router = new Router(routes.ToDictionary(r => r.Key, r => r.Value.Select(n => connectors[n]).ToArray<IRouteTarget>()), ReplicationOrigins.DatabaseOf(options.Hub.ConnectionString));
            await using var reader = new ReplicationReader(
                new ReaderOptions(hub.ConnectionString, hub.Slot, hub.Publication, hub.Binary, hub.Streaming),
                loggers.CreateLogger<ReplicationReader>());
            Reader = reader;
            Stage = $"starting replication on slot {hub.Slot}";

            // Writers only stop on failure; on a clean stop they drain what the reader handed them.
            using var failure = new CancellationTokenSource();
            // A failure beside the stream (the acknowledger or heartbeat
            // meeting a missing grant, a reader the server never accepted) stops the stream like a
            // clean stop: writers drain and commit what they hold, then it is raised.
            using var sideFailed = new CancellationTokenSource();
            Exception? sideFailure = null;
            void FailBeside(Exception error)
            {
                Interlocked.CompareExchange(ref sideFailure, error, null);
                sideFailed.Cancel();
            }

            using var readerStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, failure.Token, sideFailed.Token);
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
            var ackTask = Watch(acknowledger.RunAsync(reader, background.Token), FailBeside);
            var heartbeatTask = Watch(new Heartbeat(hub.ConnectionString, hub.HeartbeatInterval, _time, _logger).RunAsync(background.Token), FailBeside);
            var streamingTask = Watch(ConfirmStreamingAsync(hub, reader, readerTask, background.Token), FailBeside);
            heartbeatTask = Task.WhenAll(heartbeatTask, streamingTask);

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
            if (sideFailure is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(sideFailure);
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

    /// <summary>
    /// Hands what a background task raised on purpose (an <see cref="OperatorException"/>: a
    /// permanent problem, or a reader the server never accepted) to <paramref name="fail"/>. Anything
    /// else it met is logged and left to the stream: the acknowledger, for one, can lose a race with
    /// the reader's connection closing on a clean stop, which is no reason to fail the stop.
    /// </summary>
    private Task Watch(Task task, Action<Exception> fail) =>
        task.ContinueWith(
            t =>
            {
                switch (t.Exception?.InnerException)
                {
                    case OperatorException error:
                        fail(error);
                        break;
                    case { } other when other is not OperationCanceledException:
                        _logger.LogWarning("A background task of the pipeline ended: {Error}", FailureClassifier.Describe(other));
                        break;
                }
            },
            TaskScheduler.Default);

    /// <summary>
    /// Running means streaming: the server has given this reader's session the slot. Until then
    /// the pipeline stays Starting with <see cref="Stage"/> saying so, and a reader the server has
    /// not accepted within <see cref="StreamingStartTimeout"/> restarts the attempt rather than
    /// leaving a pipeline that looks healthy and delivers nothing.
    /// </summary>
    private async Task ConfirmStreamingAsync(HubOptions hub, ReplicationReader reader, Task readerTask, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(hub.ConnectionString) { Pooling = false, CommandTimeout = 10 }.ConnectionString);
        while (!readerTask.IsCompleted)
        {
            try
            {
                if (reader.HasReceived)
                {
                    MarkStreaming(hub.Slot, readerTask);
                    return;
                }

                await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
                if (reader.HasReceived || await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
                        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = @slot AND a.application_name = @session)",
                        new { slot = hub.Slot, session = reader.SessionName }, cancellationToken: cancellationToken)))
                {
                    MarkStreaming(hub.Slot, readerTask);
                    return;
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                // The reader meets the same hub and fails on its own if it is gone; look again.
            }

            if (_time.GetElapsedTime(started) > StreamingStartTimeout)
            {
                throw new OperatorException($"The hub has not started streaming slot {hub.Slot} to this worker within {StreamingStartTimeout.TotalSeconds:F0} s of asking; restarting the attempt.", transient: true);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), _time, cancellationToken);
        }
    }

    private void MarkStreaming(string slot, Task readerTask)
    {
        if (!readerTask.IsCompleted)
        {
            Health = PipelineHealth.Running;
            Stage = null;
            _backoff?.MarkHealthy();
            _logger.LogInformation("Streaming slot {Slot}", slot);
        }
    }
}
