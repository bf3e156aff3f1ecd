using Cronos;

namespace CdcSync.Scheduling;

/// <summary>
/// When a scheduled job runs: a cron expression (five fields, or six with seconds first) read in
/// UTC through Cronos. A bad expression is an operator error naming the config key and the fix.
/// </summary>
public sealed class CronSchedule
{
    private readonly CronExpression _expression;

    private CronSchedule(string text, CronExpression expression)
    {
        Text = text;
        _expression = expression;
    }

    /// <summary>The expression as configured.</summary>
    public string Text { get; }

    /// <param name="expression">The cron text, e.g. "0 3 * * *" (03:00 UTC daily) or "*/30 * * * * *" (every 30 s).</param>
    /// <param name="configKey">Where it came from (a config key or a file and line), named in the error.</param>
    public static CronSchedule Parse(string expression, string configKey)
    {
        var text = expression.Trim();
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is not (5 or 6))
        {
            throw new OperatorException(
                $"{configKey} = \"{expression}\" is not a cron expression: it has {fields} fields; use five (minute hour day month weekday, e.g. \"0 3 * * *\" for 03:00 UTC daily) or six with seconds first (e.g. \"*/30 * * * * *\").");
        }

        try
        {
            return new CronSchedule(text, CronExpression.Parse(text, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard));
        }
        catch (CronFormatException e)
        {
            throw new OperatorException(
                $"{configKey} = \"{expression}\" is not a cron expression ({e.Message.TrimEnd('.')}); use five fields (minute hour day month weekday, e.g. \"0 3 * * *\" for 03:00 UTC daily) or six with seconds first.");
        }
    }

    /// <summary>The first time strictly after <paramref name="time"/> the expression matches (UTC), or null when it never does again.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset time) =>
        _expression.GetNextOccurrence(time.ToUniversalTime(), TimeZoneInfo.Utc) is { } next ? next : null;

    public override string ToString() => Text;
}
