using CdcSync.Scheduling;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Checks;

/// <summary>
/// One deployed check as a scheduled job of the worker (<c>check:NAME</c>, at the check's cron
/// schedule). Each run reads the check's current row, so a query changed by <c>cdcsync migrate</c>
/// takes effect at the next run; a new check or a new schedule at the worker's next start.
/// </summary>
internal sealed class CheckJob(string name, CronSchedule schedule, CheckRunner runner) : IScheduledJob
{
    public string Name { get; } = $"check:{name}";

    public CronSchedule Schedule { get; } = schedule;

    /// <summary>
    /// A job per check deployed in the hub. Waits for the hub (retrying every few seconds) as the
    /// worker's lease does: without it the worker can do nothing anyway.
    /// </summary>
    public static async Task<IReadOnlyList<IScheduledJob>> LoadAsync(NpgsqlDataSource hub, CheckRunner runner, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        IReadOnlyList<DeployedCheck> checks;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                checks = await runner.ListAsync(cancellationToken);
                break;
            }
            catch (OperatorException e)
            {
                // No cdc.checks table: the hub is not migrated yet (the worker says so itself).
                logger.LogWarning("No checks scheduled: {Reason}", e.Message);
                return [];
            }
            catch (Exception e) when (e is NpgsqlException && Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
            {
                // A wrong password, a missing database or grant: the worker stops on it with the fix
                // when it takes its lease; waiting here would hide that behind a retry loop.
                logger.LogWarning("No checks scheduled: {Reason}", Resilience.FailureClassifier.Describe(e));
                return [];
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                if (attempt == 1)
                {
                    logger.LogWarning("Cannot read the deployed checks from the hub ({Message}); retrying every 5 s", e.Message);
                }

                await Task.Delay(TimeSpan.FromSeconds(5), time, cancellationToken);
            }
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
                logger.LogError("Check {Check} is not scheduled: {Error}", check.Name, e.Message);
            }
        }

        return jobs;
    }

    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        var check = (await runner.ListAsync(cancellationToken)).FirstOrDefault(c => $"check:{c.Name}" == Name);
        if (check is null)
        {
            return "not run: the check is no longer deployed (restart the worker to stop scheduling it)";
        }

        var result = await runner.RunAsync(check, cancellationToken);
        return result.Error is { } error
            ? throw new OperatorException($"check {check.Name} could not run: {error}")
            : $"{result.FailingRows} row(s)";
    }
}
