namespace CdcSync.Checks;

/// <summary>A check as the hub holds it (cdc.checks), with its last run if any.</summary>
internal sealed record DeployedCheck
{
    public string Name { get; init; } = "";

    public string File { get; init; } = "";

    /// <summary>warning or error.</summary>
    public string Severity { get; init; } = "";

    /// <summary>Cron, 5 fields, UTC.</summary>
    public string Schedule { get; init; } = "";

    public string? Description { get; init; }

    public DateTime DeployedAt { get; init; }

    public DateTime? LastRunAt { get; init; }

    /// <summary>Null when the check never ran or its last run failed.</summary>
    public long? LastFailingRows { get; init; }

    public string? LastError { get; init; }
}
