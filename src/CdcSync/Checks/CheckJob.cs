using CdcSync.Scheduling;

namespace CdcSync.Checks;

/// <summary>
/// One deployed check as a scheduled job of the worker (<c>check:NAME</c>, at the check's cron
/// schedule). Each run reads the check's current row, so a query changed by <c>cdcsync migrate</c>
/// takes effect at the next run; <see cref="CheckJobSource"/> adds, drops and reschedules the jobs.
/// </summary>
internal sealed class CheckJob(string name, CronSchedule schedule, CheckRunner runner) : IScheduledJob
{
    public string Name { get; } = $"check:{name}";

    public CronSchedule Schedule { get; } = schedule;

    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        var check = (await runner.ListAsync(cancellationToken)).FirstOrDefault(c => $"check:{c.Name}" == Name);
        if (check is null)
        {
            return "not run: the check is no longer deployed (it is unscheduled within a minute)";
        }

        var result = await runner.RunAsync(check, cancellationToken);
        return result.Error is { } error
            ? throw new OperatorException($"check {check.Name} could not run: {error}")
            : $"{result.FailingRows} row(s)";
    }
}
