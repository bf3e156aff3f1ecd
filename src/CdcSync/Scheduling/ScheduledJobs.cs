using CdcSync.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Scheduling;

/// <summary>The jobs `cdcsync run` schedules, from the configuration. Each feature adds its own here.</summary>
public static class ScheduledJobs
{
    public static IReadOnlyList<IScheduledJob> Create(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        var jobs = new List<IScheduledJob>();
        if (Reconcile.ReconcileJob.Create(options, hub, loggers) is { } reconcile)
        {
            jobs.Add(reconcile);
        }

        return jobs;
    }
}
