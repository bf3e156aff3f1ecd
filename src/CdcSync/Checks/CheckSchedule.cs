namespace CdcSync.Checks;

/// <summary>A check's <c>schedule</c> header: a cron expression, read by the shared scheduler's parser.</summary>
internal static class CheckSchedule
{
    /// <summary>Throws an <see cref="OperatorException"/> naming <paramref name="where"/> when <paramref name="expression"/> is no cron expression.</summary>
    public static void Validate(string expression, string where)
    {
        if (expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length != 5)
        {
            throw new OperatorException($"{where} '{expression}' is not a cron expression; write 5 fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'.");
        }
    }
}
