namespace CdcSync.Alerts;

internal enum AlertStatus
{
    /// <summary>The problem started (sent once).</summary>
    Firing,

    /// <summary>The problem cleared (sent once, after a Firing).</summary>
    Resolved,

    /// <summary>From 'cdcsync alerts test'.</summary>
    Test,
}

/// <summary>One delivery: an alert's state change. <see cref="Id"/> is the cdc.alerts row (0 for a test).</summary>
internal sealed record AlertMessage(
    long Id,
    AlertStatus Status,
    string Key,
    string Source,
    string Severity,
    string Text,
    DateTimeOffset OpenedAt,
    DateTimeOffset? ResolvedAt)
{
    /// <summary>The same for every retry of one delivery, different for the Firing and the Resolved of one alert.</summary>
    public string IdempotencyKey => $"alert-{Id}-{Status.ToString().ToLowerInvariant()}";
}
