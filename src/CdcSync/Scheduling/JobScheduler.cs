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
/// Jobs from a <see cref="IScheduledJobSource"/> (deployed checks) are listed again every
/// <see cref="RefreshInterval"/>: a new one is scheduled from then, a removed one dropped, a changed
/// schedule applied. A failing job is recorded and logged and runs again at its next time; it never
/// stops the worker.
/// </summary>
public sealed class JobScheduler(
    IReadOnlyList<IScheduledJob> jobs,
    NpgsqlDataSource hub,
    string slot,
    string worker,
    TimeProvider time,
    ILogger logger,
    IScheduledJobSource? source = null)
{
    /// <summary>How often the jobs of the source are listed again.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(1);

    // The jobs that came from the source, by name: a refresh replaces exactly these.
    private readonly Dictionary<string, IScheduledJob> _sourced = new(StringComparer.Ordinal);
    private bool _refreshFailing;

    public Task RunAsync(CancellationToken cancellationToken) =>
        // The clock is read before anything is awaited: a job's first time counts from the start, not from when the hub answered.
        RunAsync(time.GetUtcNow(), cancellationToken);

    private async Task RunAsync(DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        var duplicate = jobs.GroupBy(j => j.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException($"Two scheduled jobs are named {duplicate.Key}");
        }

        var due = new Dictionary<IScheduledJob, DateTimeOffset>();
        foreach (var job in jobs)
        {
            await ScheduleAsync(due, job, startedAt, cancellationToken);
        }

        var nextRefresh = startedAt;
        while (due.Count > 0 || source is not null)
        {
            if (source is not null && time.GetUtcNow() >= nextRefresh)
            {
                // Listings keep to a grid from the start (a late one does not shift the next); what is
                // new counts from the listing's time, as the jobs at start count from the start.
                await RefreshAsync(due, nextRefresh, cancellationToken);
                do
                {
                    nextRefresh += RefreshInterval;
                }
                while (nextRefresh <= time.GetUtcNow());
            }

            IScheduledJob? job = null;
            var at = nextRefresh;
            if (due.Count > 0)
            {
                (job, var jobAt) = due.MinBy(d => d.Value);
                if (source is null || jobAt <= nextRefresh)
                {
                    at = jobAt;
                }
                else
                {
                    job = null;
                }
            }

            var wait = at - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken);
            }

            if (job is null)
            {
                continue;
            }

            await RunOnceAsync(job, cancellationToken);
            if (NextAfterRun(job.Schedule, at, time.GetUtcNow()) is { } next)
            {
                due[job] = next;
            }
            else
            {
                due.Remove(job);
            }
        }
    }

    private async Task ScheduleAsync(Dictionary<IScheduledJob, DateTimeOffset> due, IScheduledJob job, DateTimeOffset from, CancellationToken cancellationToken)
    {
        var last = await LastStartedAsync(job, cancellationToken);
        if (job.Schedule.NextAfter(last ?? from) is { } next)
        {
            due[job] = next;
            logger.LogInformation("Scheduled job {Job} ({Schedule}) next runs at {Next:u}", job.Name, job.Schedule, next);
        }
    }

    /// <summary>Lists the source's jobs again and brings <paramref name="due"/> in line: added, removed, rescheduled.</summary>
    private async Task RefreshAsync(Dictionary<IScheduledJob, DateTimeOffset> due, DateTimeOffset from, CancellationToken cancellationToken)
    {
        IReadOnlyList<IScheduledJob> listed;
        try
        {
            listed = await source!.ListAsync(cancellationToken);
            _refreshFailing = false;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            if (!_refreshFailing)
            {
                logger.LogWarning("Could not list the scheduled jobs again ({Message}); keeping the {Count} scheduled", e.Message, due.Count);
                _refreshFailing = true;
            }

            return;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var job in listed)
        {
            if (!names.Add(job.Name) || jobs.Any(j => j.Name == job.Name))
            {
                continue;
            }

            if (_sourced.TryGetValue(job.Name, out var known))
            {
                if (known.Schedule.Text == job.Schedule.Text)
                {
                    continue;
                }

                due.Remove(known);
                logger.LogInformation("Scheduled job {Job} rescheduled: {Old} -> {New}", job.Name, known.Schedule, job.Schedule);
            }

            _sourced[job.Name] = job;
            await ScheduleAsync(due, job, from, cancellationToken);
        }

        foreach (var gone in _sourced.Keys.Where(n => !names.Contains(n)).ToList())
        {
            due.Remove(_sourced[gone]);
            _sourced.Remove(gone);
            logger.LogInformation("Scheduled job {Job} removed: it is no longer deployed", gone);
        }
    }

    /// <summary>
    /// The time after the one just run (<paramref name="ran"/>, the time it was due): the next on the
    /// schedule, or, when that is already past (the run outlasted it, or it was a catch-up at start),
    /// the first after now: times missed meanwhile are skipped, not run back to back.
    /// </summary>
    internal static DateTimeOffset? NextAfterRun(CronSchedule schedule, DateTimeOffset ran, DateTimeOffset now) =>
        schedule.NextAfter(ran) is { } next && next < now ? schedule.NextAfter(now) : schedule.NextAfter(ran);

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
