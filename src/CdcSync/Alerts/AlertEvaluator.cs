using CdcSync.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>What one evaluation did.</summary>
internal sealed record AlertRound(bool Ran, int Problems, int Sent, int Failed);

/// <summary>
/// The alert loop the leading worker runs every Alerts:EvaluationInterval: asks each
/// <see cref="IAlertSource"/> for the problems open now, records them in cdc.alerts
/// (<see cref="AlertStore"/>) and delivers what is due through the <see cref="AlertNotifier"/>.
/// A round holds a PostgreSQL advisory lock, so two workers (one taking over from the other) never
/// evaluate at once; the state in the hub makes a round after a restart or a takeover send nothing
/// already sent. A delivery that fails stays due and is tried again next round; a crash between a
/// delivery and its record may send that one alert twice (at least once, never lost).
/// </summary>
internal sealed class AlertEvaluator(
    NpgsqlDataSource hub,
    IReadOnlyList<IAlertSource> sources,
    AlertNotifier notifier,
    AlertsOptions options,
    ILogger logger,
    TimeProvider? timeProvider = null)
{
    /// <summary>pg_try_advisory_lock key of the evaluation round ('cdcalert' in ASCII).</summary>
    private const long LockKey = 0x6364_6361_6c65_7274;

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>The sources shipped with CdcSync, with the thresholds of <paramref name="options"/>.</summary>
    public static IReadOnlyList<IAlertSource> DefaultSources(AlertsOptions options) =>
    [
        new CheckAlertSource(),
        new DeadLetterAlertSource(),
        new ConflictAlertSource(options.ConflictWaitThreshold),
        new LagAlertSource(options.LagThreshold),
        new CircuitAlertSource(),
        new DriftAlertSource(),
    ];

    /// <summary>Evaluates every Alerts:EvaluationInterval until cancelled; a failing round is logged and the next one tries again.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Alerts: evaluating every {Interval} and sending to {Destination} as {Format}", options.EvaluationInterval, notifier.Destination, options.Format.ToString().ToLowerInvariant());
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await EvaluateOnceAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The hub restarting, a broken connection: the next round starts afresh from cdc.alerts.
                logger.LogWarning("Alerts: evaluation failed ({Message}); trying again in {Interval}", e.Message, options.EvaluationInterval);
            }

            try
            {
                await Task.Delay(options.EvaluationInterval, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async Task<AlertRound> EvaluateOnceAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        await using (var tryLock = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", conn))
        {
            tryLock.Parameters.AddWithValue("key", LockKey);
            if (await tryLock.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return new AlertRound(false, 0, 0, 0);
            }
        }

        try
        {
            return await EvaluateLockedAsync(conn, cancellationToken);
        }
        finally
        {
            if (conn.State == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", conn);
                unlock.Parameters.AddWithValue("key", LockKey);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    private async Task<AlertRound> EvaluateLockedAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var seen = new Dictionary<string, SeenProblem>(StringComparer.Ordinal);
        var read = new List<string>();
        foreach (var source in sources)
        {
            try
            {
                foreach (var problem in await source.OpenProblemsAsync(conn, now, cancellationToken))
                {
                    seen.TryAdd(problem.Key, new SeenProblem(source.Name, problem));
                }

                read.Add(source.Name);
            }
            catch (PostgresException e) when (!cancellationToken.IsCancellationRequested)
            {
                // Its problems stay as they were: an unreadable source must not look resolved.
                logger.LogWarning("Alerts: source {Source} failed ({Message}); its alerts stay as they are", source.Name, e.MessageText);
            }
        }

        var due = await AlertStore.ReconcileAsync(conn, seen.Values.ToList(), read, now, cancellationToken);
        AlertMetrics.Open.Set(await AlertStore.OpenCountAsync(conn, cancellationToken));
        var sent = 0;
        foreach (var message in due)
        {
            try
            {
                await notifier.SendAsync(message, retry: true, cancellationToken);
            }
            catch (OperatorException e)
            {
                // The receiver is down or refuses: the rest would fail alike; all stay due for the next round.
                AlertMetrics.Deliveries.WithLabels("failed").Inc();
                await AlertStore.MarkFailedAsync(conn, message, e.Message, cancellationToken);
                logger.LogError("Alerts: could not deliver {Status} {Key}: {Error}; {Due} alert(s) wait for the next round", message.Status, message.Key, e.Message, due.Count - sent);
                return new AlertRound(true, seen.Count, sent, due.Count - sent);
            }

            await AlertStore.MarkDeliveredAsync(conn, message, _time.GetUtcNow(), cancellationToken);
            AlertMetrics.Deliveries.WithLabels("sent").Inc();
            sent++;
            logger.LogInformation("Alerts: sent {Status} {Key}: {Text}", message.Status, message.Key, message.Text);
        }

        return new AlertRound(true, seen.Count, sent, 0);
    }
}
