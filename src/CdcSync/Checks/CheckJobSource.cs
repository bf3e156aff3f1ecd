using CdcSync.Scheduling;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Checks;

/// <summary>
/// The deployed checks (cdc.checks) as scheduled jobs, one per check. The scheduler lists them
/// again every minute, so a check that `cdcsync migrate` adds, removes or reschedules takes effect
/// without restarting the worker.
/// </summary>
internal sealed class CheckJobSource(CheckRunner runner, ILogger logger) : IScheduledJobSource
{
    // What was already said once (a hub not migrated, a schedule written wrong by hand): not repeated every minute.
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    public async Task<IReadOnlyList<IScheduledJob>> ListAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<DeployedCheck> checks;
        try
        {
            checks = await runner.ListAsync(cancellationToken);
        }
        catch (OperatorException e)
        {
            // No cdc.checks table: the hub is not migrated yet (the worker says so itself).
            ReportOnce(e.Message, () => logger.LogWarning("No checks scheduled: {Reason}", e.Message));
            return [];
        }
        catch (NpgsqlException e) when (Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
        {
            // A wrong password, a missing grant: the worker stops on it with the fix when it takes its lease.
            var reason = Resilience.FailureClassifier.Describe(e);
            ReportOnce(reason, () => logger.LogWarning("No checks scheduled: {Reason}", reason));
            return [];
        }

        var jobs = new List<IScheduledJob>();
        foreach (var check in checks)
        {
            try
            {
                jobs.Add(new CheckJob(check.Name, CronSchedule.Parse(check.Schedule, $"{check.File} schedule"), runner));
            }
            catch (OperatorException e)
            {
                // Deploying validates schedules; a row written by hand may still be wrong.
                ReportOnce(check.Name + "\n" + check.Schedule, () => logger.LogError("Check {Check} is not scheduled: {Error}", check.Name, e.Message));
            }
        }

        return jobs;
    }

    private void ReportOnce(string what, Action report)
    {
        if (_reported.Add(what))
        {
            report();
        }
    }
}
