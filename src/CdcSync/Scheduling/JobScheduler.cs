using CdcSync.Resilience;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Scheduling;

/// <summary>
/// Runs the worker's scheduled jobs while it holds the slot's lease, one at a time, each at its
/// cron schedule's next time after its last run. The last run comes from cdc.job_runs, so a worker
/// that restarts, or a standby that takes over, neither repeats a run nor skips one that fell due
/// while no worker led: that one runs once at start, and missed times after it are not replayed.
/// A failing job is recorded and logged and runs again at its next time; it never stops the worker.
/// </summary>
public sealed class JobScheduler(
    IReadOnlyList<IScheduledJob> jobs,
    NpgsqlDataSource hub,
    string slot,
    string worker,
    TimeProvider time,
    ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var duplicate = jobs.GroupBy(j => j.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException($"Two scheduled jobs are named {duplicate.Key}");
        }

        var due = new Dictionary<IScheduledJob, DateTimeOffset>();
        foreach (var job in jobs)
        {
            var last = await LastStartedAsync(job, cancellationToken);
            if (job.Schedule.NextAfter(last ?? time.GetUtcNow()) is { } next)
            {
                due[job] = next;
                logger.LogInformation("Scheduled job {Job} ({Schedule}) next runs at {Next:u}", job.Name, job.Schedule, next);
            }
        }

        while (due.Count > 0)
        {
            var (job, at) = due.MinBy(d => d.Value);
            var wait = at - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken);
            }

            await RunOnceAsync(job, cancellationToken);
            if (job.Schedule.NextAfter(time.GetUtcNow()) is { } next)
            {
                due[job] = next;
            }
            else
            {
                due.Remove(job);
            }
        }
    }

    private async Task RunOnceAsync(IScheduledJob job, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        long? id = null;
        try
        {
            await using var conn = await hub.OpenConnectionAsync(cancellationToken);
            id = await conn.ExecuteScalarAsync<long>(new CommandDefinition(
                "INSERT INTO cdc.job_runs (slot, job, worker, started_at) VALUES (@slot, @job, @worker, @started) RETURNING id",
                new { slot, job = job.Name, worker, started }, cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Could not record the start of scheduled job {Job} ({Message}); running it anyway", job.Name, e.Message);
        }

        logger.LogInformation("Scheduled job {Job} starting", job.Name);
        string? outcome = null;
        string? error = null;
        try
        {
            outcome = await job.RunAsync(cancellationToken);
            logger.LogInformation("Scheduled job {Job} finished in {Seconds:0.0} s: {Outcome}", job.Name, (time.GetUtcNow() - started).TotalSeconds, outcome);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            outcome = "cancelled: the worker stopped or lost the lease";
            await RecordEndAsync(id, outcome, null, CancellationToken.None);
            throw;
        }
        catch (Exception e)
        {
            error = e is OperatorException ? e.Message : FailureClassifier.Describe(e);
            logger.LogWarning("Scheduled job {Job} failed: {Error}; it runs again at its next time", job.Name, error);
        }

        await RecordEndAsync(id, outcome, error, cancellationToken);
    }

    private async Task RecordEndAsync(long? id, string? outcome, string? error, CancellationToken cancellationToken)
    {
        if (id is null)
        {
            return;
        }

        try
        {
            await using var conn = await hub.OpenConnectionAsync(cancellationToken);
            await conn.ExecuteAsync(new CommandDefinition(
                "UPDATE cdc.job_runs SET finished_at = @finished, outcome = @outcome, error = @error WHERE id = @id",
                new { id, finished = time.GetUtcNow(), outcome, error }, cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Could not record the end of scheduled job run {Id} ({Message})", id, e.Message);
        }
    }

    private async Task<DateTimeOffset?> LastStartedAsync(IScheduledJob job, CancellationToken cancellationToken)
    {
        try
        {
            await using var conn = await hub.OpenConnectionAsync(cancellationToken);
            return await conn.ExecuteScalarAsync<DateTime?>(new CommandDefinition(
                "SELECT max(started_at) FROM cdc.job_runs WHERE slot = @slot AND job = @job",
                new { slot, job = job.Name }, cancellationToken: cancellationToken)) is { } last
                ? new DateTimeOffset(DateTime.SpecifyKind(last, DateTimeKind.Utc))
                : null;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Could not read when scheduled job {Job} last ran ({Message}); counting from now", job.Name, e.Message);
            return null;
        }
    }
}
