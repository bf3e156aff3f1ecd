using CdcSync.Scheduling;

namespace CdcSync.Schema;

/// <summary>A check's <c>schedule</c> header: a cron expression, read by the shared scheduler's parser.</summary>
internal static class CheckSchedule
{
    /// <summary>Throws an <see cref="OperatorException"/> naming <paramref name="where"/> (file:line) when <paramref name="expression"/> is no cron expression.</summary>
    public static void Validate(string expression, string where) => _ = CronSchedule.Parse(expression, where);
}
