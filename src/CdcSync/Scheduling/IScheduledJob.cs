namespace CdcSync.Scheduling;

/// <summary>
/// Work the leading worker runs on a schedule (reconcile, a data-quality check). Only the lease
/// holder runs it; <see cref="JobScheduler"/> records every run in cdc.job_runs.
/// </summary>
public interface IScheduledJob
{
    /// <summary>A stable name, unique among the worker's jobs (kept in cdc.job_runs).</summary>
    string Name { get; }

    CronSchedule Schedule { get; }

    /// <summary>Runs once; the returned text (e.g. "3 drifted records") is kept as the run's outcome.</summary>
    Task<string> RunAsync(CancellationToken cancellationToken);
}
