using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Scheduling;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Reconcile;

/// <summary>
/// Reconcile on <c>Reconcile:Schedule</c> in the worker (only the lease holder runs it): reports,
/// never repairs; the run and its findings land in <c>cdc.reconcile_runs</c> / <c>cdc.reconcile_findings</c>
/// and <c>cdcsync_drift_records</c>.
/// </summary>
internal sealed class ReconcileJob(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers, CronSchedule schedule) : IScheduledJob
{
    public string Name => "reconcile";

    public CronSchedule Schedule { get; } = schedule;

    /// <summary>The job when <c>Reconcile:Schedule</c> is set and some connector reads its system; else null.</summary>
    public static ReconcileJob? Create(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        if (string.IsNullOrWhiteSpace(options.Reconcile.Schedule)
            || !options.Connectors.Values.Any(c => string.Equals(c["Inbound:Enabled"], "true", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        return new ReconcileJob(options, hub, loggers, CronSchedule.Parse(options.Reconcile.Schedule, "Reconcile:Schedule"));
    }

    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        var budget = new ApiCallBudget(options.Reconcile.MaxApiCalls);
        using var readers = ReconcileConnectors.Create(options, hub, budget, loggers);
        var result = await new ReconcileService(hub, loggers.CreateLogger<ReconcileService>())
            .RunAsync(readers.Connectors, budget, new ReconcileRequest { Trigger = "schedule" }, null, cancellationToken);
        return result.Status == ReconcileStatus.Capped
            ? $"run {result.RunId}: stopped at the API call cap ({result.MaxApiCalls}), nothing compared"
            : string.Create(CultureInfo.InvariantCulture, $"run {result.RunId}: {result.DriftCount} drift findings, {result.OpenConflicts} open conflicts, {result.ApiCalls} API calls");
    }
}
