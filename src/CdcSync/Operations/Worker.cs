using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Inbound;
using CdcSync.Pipeline;
using CdcSync.Scheduling;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using Polly.CircuitBreaker;

namespace CdcSync.Operations;

internal enum WorkerState
{
    Starting,
    StandingBy,
    Streaming,
    Stopped,
}

/// <summary>
/// What `cdcsync run` runs: takes the leader lease (standing by while another worker holds it),
/// applies pending replay requests, runs the pipeline, and stops and restarts it when a new replay
/// request arrives. Every few seconds it records each connector's lag, rate and last error in
/// cdc.connector_status (read by `cdcsync status`) and refreshes the Prometheus gauges; every
/// Hub:ProgressInterval it logs one progress line.
/// </summary>
internal sealed class Worker(
    CdcSyncOptions options,
    Func<string, IOutboundConnector> outbound,
    Func<string, IInboundConnector?> inbound,
    ILoggerFactory loggers,
    TimeProvider? timeProvider = null,
    NpgsqlDataSource? hubSource = null,
    IReadOnlyList<IScheduledJob>? jobs = null,
    Alerts.AlertEvaluator? alerts = null,
    IScheduledJobSource? jobSource = null)
{
    /// <summary>How often status rows and gauges are refreshed; `status` treats rows older than 5 times this as stale.</summary>
    public static readonly TimeSpan StatusRefresh = TimeSpan.FromSeconds(2);

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ILogger _logger = loggers.CreateLogger<Worker>();
    private readonly Dictionary<string, object> _connectors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Changes, long At)> _rates = new(StringComparer.Ordinal);
    private readonly string _workerId = $"{Environment.MachineName}:{Environment.ProcessId}";
    private StatusHistory? _history;

    /// <summary>This build's version (the assembly's informational version, without the source revision).</summary>
    public static string Version { get; } =
        (typeof(Worker).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false).FirstOrDefault() as System.Reflection.AssemblyInformationalVersionAttribute)?.InformationalVersion.Split('+')[0]
        ?? typeof(Worker).Assembly.GetName().Version?.ToString() ?? "unknown";

    public WorkerState State { get; private set; } = WorkerState.Starting;

    public PipelineRunner? Runner { get; private set; }

    /// <summary>What the worker waits for while it is not streaming (standing by, creating the slot, restarting); null while streaming.</summary>
    public string? Stage => State switch
    {
        WorkerState.StandingBy => $"standing by: another worker holds the lease for slot {options.Hub.Slot}, or the hub is unreachable",
        WorkerState.Streaming when Runner is { } runner => runner.Stage,
        WorkerState.Stopped => "stopped",
        _ => "starting",
    };

    /// <summary>Streaming with no connector tripped: what /readyz reports.</summary>
    public bool IsReady => State == WorkerState.Streaming && Runner?.Health == PipelineHealth.Running && OpenCircuits().Count == 0;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        PipelineMetrics.BuildInfo.WithLabels(Version).Set(1);
        var replay = new ReplayService(options, _logger);
        while (!stoppingToken.IsCancellationRequested)
        {
            State = WorkerState.StandingBy;
            PipelineMetrics.Streaming.Set(0);
            await using var lease = await LeaderLease.AcquireAsync(
                options.Hub.ConnectionString, options.Hub.Slot, TimeSpan.FromSeconds(1), _time,
                () => _logger.LogInformation("Standing by: another worker holds the lease for slot {Slot}; taking over when it stops", options.Hub.Slot),
                message => _logger.LogWarning("Cannot reach the hub to take the lease ({Message}); retrying", message),
                stoppingToken);
            _logger.LogInformation("Holding the lease for slot {Slot}; streaming", options.Hub.Slot);

            var lost = false;
            while (!stoppingToken.IsCancellationRequested && !lost)
            {
                try
                {
                    await replay.ApplyPendingAsync($"worker {_workerId}", stoppingToken);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException or OperatorException && !stoppingToken.IsCancellationRequested
                                          && Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
                {
                    // A missing grant on the replay queue, a target's wrong password: retrying cannot help.
                    throw new OperatorException($"Applying pending replay requests: {Resilience.FailureClassifier.Describe(e)}", e);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException or OperatorException && !stoppingToken.IsCancellationRequested)
                {
                    // The hub or a target is unreachable: stream anyway; the request stays pending and is retried on the next restart.
                    _logger.LogWarning("Could not apply pending replay requests ({Message}); retrying after the next restart", e.Message);
                    await Task.Delay(StatusRefresh, _time, stoppingToken);
                }
                var runner = new PipelineRunner(options, Track, loggers, inbound, _time, hubSource);
                Runner = runner;
                State = WorkerState.Streaming;
                // cdcsync_streaming turns 1 when the pipeline really streams (refreshed with the status below).
                PipelineMetrics.Streaming.Set(0);
                using var run = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var runTask = runner.RunAsync(run.Token);
                var resyncTask = RunResyncsAsync(runner, run.Token);
                // Alerts only from the lease holder: a standby's evaluator would see the same problems.
                var alertsTask = alerts is null ? Task.CompletedTask : RunAlertsAsync(alerts, run.Token);
                var restartForReplay = false;
                OperatorException? fatal = null;
                // The host's pool of the hub when it gave one (shared with the connectors), else one of this run's.
                await using (var owned = hubSource is null ? NpgsqlDataSource.Create(options.Hub.ConnectionString) : null)
                {
                    var hub = hubSource ?? owned!;
                    var jobsTask = RunJobsAsync(hub, run.Token);
                    var lastProgress = _time.GetTimestamp();
                    while (!runTask.IsCompleted)
                    {
                        await Task.WhenAny(runTask, Task.Delay(StatusRefresh, _time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default));
                        if (runTask.IsCompleted || stoppingToken.IsCancellationRequested)
                        {
                            break;
                        }

                        PipelineMetrics.Streaming.Set(runner.Health == PipelineHealth.Running ? 1 : 0);
                        try
                        {
                            await using var conn = await hub.OpenConnectionAsync(stoppingToken);
                            await RecordStatusAsync(conn, runner, stoppingToken);
                            if (_time.GetElapsedTime(lastProgress) >= options.Hub.ProgressInterval)
                            {
                                LogProgress(runner);
                                lastProgress = _time.GetTimestamp();
                            }

                            if (await replay.AnyPendingAsync(conn, stoppingToken))
                            {
                                _logger.LogInformation("Replay requested; restarting the pipeline from the slot to apply it");
                                restartForReplay = true;
                            }
                            else if (!await lease.IsHeldAsync(stoppingToken))
                            {
                                _logger.LogWarning("Lost the lease for slot {Slot} (hub connection broken); stopping and standing by", options.Hub.Slot);
                                lost = true;
                            }
                        }
                        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException && !stoppingToken.IsCancellationRequested
                                                  && Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
                        {
                            // A revoked grant on the cdc schema: stop with the fix instead of warning every 2 s forever.
                            fatal = new OperatorException($"Recording status in the hub: {Resilience.FailureClassifier.Describe(e)}", e);
                        }
                        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
                        {
                            _logger.LogWarning("Could not record status this time: {Message}", e.Message);
                        }

                        if (restartForReplay || lost || fatal is not null)
                        {
                            await run.CancelAsync();
                            break;
                        }
                    }

                    try
                    {
                        if (fatal is not null)
                        {
                            // The pipeline drains and stops on the cancellation; the cause is the status failure.
                            await runTask.ContinueWith(_ => { }, TaskScheduler.Default);
                            _logger.LogError("Worker stopped: {Error}", fatal.Message);
                            throw fatal;
                        }

                        await runTask;
                    }
                    catch (OperationCanceledException) when ((restartForReplay || lost) && !stoppingToken.IsCancellationRequested)
                    {
                        // This worker cancelled the run itself (lease lost, replay requested): loop on.
                    }
                    finally
                    {
                        await run.CancelAsync();
                        await resyncTask;
                        await jobsTask;
                        await alertsTask;
                        State = WorkerState.Stopped;
                        PipelineMetrics.Streaming.Set(0);
                        Runner = null;
                    }
                }

                if (!restartForReplay && !lost)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The scheduled jobs (reconcile, checks), run while this run holds the lease.</summary>
    private async Task RunJobsAsync(NpgsqlDataSource hub, CancellationToken cancellationToken)
    {
        if (jobs is not { Count: > 0 } && jobSource is null)
        {
            return;
        }

        try
        {
            await new JobScheduler(jobs ?? [], hub, options.Hub.Slot, _workerId, _time, loggers.CreateLogger<JobScheduler>(), jobSource).RunAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The run stopped (shutdown, lease lost, replay): the next run schedules again from cdc.job_runs.
        }
    }

    private async Task RunResyncsAsync(PipelineRunner runner, CancellationToken cancellationToken)
    {
        try
        {
            await new ResyncService(options, _logger).RunAsync(runner, _time, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // A resync must never take the stream down; the job keeps its last key and resumes next run.
            _logger.LogError(e, "Resync loop stopped: {Message}", e.Message);
        }
    }

    private async Task RunAlertsAsync(Alerts.AlertEvaluator evaluator, CancellationToken cancellationToken)
    {
        try
        {
            await evaluator.RunAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Alerting must never take the stream down.
            _logger.LogError(e, "Alert loop stopped: {Message}", e.Message);
        }
    }

    private IOutboundConnector Track(string name)
    {
        var connector = outbound(name);
        lock (_connectors)
        {
            _connectors[name] = connector;
        }

        return connector;
    }

    /// <summary>Connectors whose circuit breaker is open (those with the <see cref="IHasCircuit"/> capability).</summary>
    public IReadOnlyList<string> OpenCircuits()
    {
        lock (_connectors)
        {
            return _connectors.Where(c => CircuitOf(c.Value) is "open" or "isolated").Select(c => c.Key).ToList();
        }
    }

    /// <summary>Sets cdcsync_circuit_open and the API allowance gauges for every connector this worker made (called on each scrape, so it is never stale).</summary>
    public void UpdateCircuitGauges()
    {
        lock (_connectors)
        {
            foreach (var (name, connector) in _connectors)
            {
                PipelineMetrics.CircuitOpen.WithLabels(name).Set(CircuitOf(connector) is "open" or "isolated" ? 1 : 0);
                if (connector is IHasApiBudget { Budget: { } budget })
                {
                    PipelineMetrics.ApiCallsUsed.WithLabels(name).Set(budget.Used);
                    PipelineMetrics.ApiCallsAllowed.WithLabels(name).Set(budget.Max);
                }
            }
        }
    }

    private static string CircuitOf(object connector) => connector is IHasCircuit breaker
        ? breaker.CircuitState switch
        {
            CircuitState.Open => "open",
            CircuitState.Isolated => "isolated",
            CircuitState.HalfOpen => "half-open",
            _ => "closed",
        }
        : "closed";

    private async Task RecordStatusAsync(NpgsqlConnection conn, PipelineRunner runner, CancellationToken cancellationToken)
    {
        await conn.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO cdc.worker_status (slot, worker, state, pipeline, stage, last_error, restarts, updated_at)
            VALUES (@slot, @worker, @state, @pipeline, @stage, @error, @restarts, now())
            ON CONFLICT (slot) DO UPDATE SET worker = EXCLUDED.worker, state = EXCLUDED.state, pipeline = EXCLUDED.pipeline, stage = EXCLUDED.stage,
                last_error = EXCLUDED.last_error, restarts = EXCLUDED.restarts, updated_at = now()
            """,
            new
            {
                slot = options.Hub.Slot,
                worker = _workerId,
                state = State.ToString(),
                pipeline = runner.Health.ToString(),
                stage = Stage,
                error = runner.LastError,
                restarts = runner.Restarts,
            },
            cancellationToken: cancellationToken));
        var current = await conn.ExecuteScalarAsync<string>(new CommandDefinition("SELECT pg_current_wal_lsn()::text", cancellationToken: cancellationToken));
        var wal = (ulong)NpgsqlTypes.NpgsqlLogSequenceNumber.Parse(current!);
        var readUpTo = runner.Reader?.LastCommitEnd ?? default;
        var now = _time.GetUtcNow();
        var open = OpenCircuits();
        var samples = new List<StatusSample>(runner.Writers.Count);
        foreach (var writer in runner.Writers)
        {
            var caughtUp = writer.CaughtUp;
            var position = caughtUp && readUpTo > writer.Committed ? readUpTo : writer.Committed;
            var lagBytes = caughtUp ? 0 : (long)(wal > (ulong)writer.Committed ? wal - (ulong)writer.Committed : 0);
            var oldest = writer.OldestPendingCommitTimeUtc;
            var lagSeconds = caughtUp || oldest is null ? 0 : Math.Max(0, (now - new DateTimeOffset(oldest.Value, TimeSpan.Zero)).TotalSeconds);
            var stamp = _time.GetTimestamp();
            var rate = _rates.TryGetValue(writer.Name, out var before)
                ? (writer.ChangesApplied - before.Changes) / Math.Max(0.001, _time.GetElapsedTime(before.At, stamp).TotalSeconds)
                : 0;
            _rates[writer.Name] = (writer.ChangesApplied, stamp);
            var circuit = open.Contains(writer.Name) ? "open" : "closed";
            PipelineMetrics.LagBytes.WithLabels(writer.Name).Set(lagBytes);
            PipelineMetrics.LagSeconds.WithLabels(writer.Name).Set(lagSeconds);
            await conn.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO cdc.connector_status (connector, worker, caught_up_to, lag_bytes, lag_seconds, events_per_second, changes_applied, last_error, circuit, updated_at)
                VALUES (@connector, @worker, @position::pg_lsn, @lagBytes, @lagSeconds, @rate, @changes, @error, @circuit, now())
                ON CONFLICT (connector) DO UPDATE SET worker = EXCLUDED.worker, caught_up_to = EXCLUDED.caught_up_to, lag_bytes = EXCLUDED.lag_bytes,
                    lag_seconds = EXCLUDED.lag_seconds, events_per_second = EXCLUDED.events_per_second, changes_applied = EXCLUDED.changes_applied,
                    last_error = EXCLUDED.last_error, circuit = EXCLUDED.circuit, updated_at = now()
                """,
                new
                {
                    connector = writer.Name,
                    worker = _workerId,
                    position = position.ToString(),
                    lagBytes,
                    lagSeconds,
                    rate,
                    changes = writer.ChangesApplied,
                    error = runner.LastError,
                    circuit,
                },
                cancellationToken: cancellationToken));
            ApiBudget? budget;
            lock (_connectors)
            {
                budget = _connectors.TryGetValue(writer.Name, out var connector) ? (connector as IHasApiBudget)?.Budget : null;
            }

            samples.Add(new StatusSample(writer.Name, now.UtcDateTime, lagBytes, lagSeconds, rate, budget?.Used, budget?.Max));
        }

        // The console's lag chart (WebConsole): the same figures, kept an hour.
        await (_history ??= new StatusHistory(_time)).RecordAsync(conn, samples, cancellationToken);

        var counts = await conn.QueryAsync<(string Connector, long DeadLetters, long Conflicts)>(new CommandDefinition(
            """
            SELECT c.connector,
                   (SELECT count(*) FROM cdc.dead_letters d WHERE d.connector = c.connector AND d.status = 'open'),
                   (SELECT count(*) FROM cdc.conflicts f WHERE f.connector = c.connector AND f.status = 'open')
            FROM unnest(@names) AS c(connector)
            """, new { names = runner.Writers.Select(w => w.Name).ToArray() }, cancellationToken: cancellationToken));
        foreach (var (connector, deadLetters, conflicts) in counts)
        {
            PipelineMetrics.DeadLetters.WithLabels(connector).Set(deadLetters);
            PipelineMetrics.Conflicts.WithLabels(connector).Set(conflicts);
        }

        var window = await conn.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = @slot",
            new { slot = options.Hub.Slot }, cancellationToken: cancellationToken));
        PipelineMetrics.ReplayWindowBytes.Set(window ?? 0);
    }

    private void LogProgress(PipelineRunner runner)
    {
        var parts = runner.Writers.Select(w =>
            $"{w.Name} at {w.Committed} ({w.ChangesApplied} changes, {(w.CaughtUp ? "caught up" : "behind")})");
        _logger.LogInformation("Progress: read up to {Lsn}; {Connectors}; restarts {Restarts}", runner.Reader?.LastCommitEnd, string.Join("; ", parts), runner.Restarts);
    }
}
