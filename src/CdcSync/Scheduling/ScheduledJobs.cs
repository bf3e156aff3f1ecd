using CdcSync.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Scheduling;

/// <summary>The jobs `cdcsync run` schedules, from the configuration. Each feature adds its own here.</summary>
public static class ScheduledJobs
{
    public static IReadOnlyList<IScheduledJob> Create(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        _ = options;
        _ = hub;
        _ = loggers;
        return [];
    }
}
