namespace CdcSync.Audit;

/// <summary>One applied change from <c>cdc.audit_log</c>; <see cref="Changes"/> is the JSON
/// <c>{"field": {"before": .., "after": ..}}</c> with sensitive fields masked.</summary>
internal sealed record AuditEntry
{
    public long Id { get; init; }
    public DateTime AppliedAt { get; init; }
    public string Direction { get; init; } = "";
    public string Connector { get; init; } = "";
    public string? SourceSystem { get; init; }
    public string? TargetSystem { get; init; }
    public string Object { get; init; } = "";
    public string RecordKey { get; init; } = "";
    public string? RecordId { get; init; }
    public string Operation { get; init; } = "";
    public string? Changes { get; init; }
    /// <summary>The person who acted (direction 'operator': a console user); null for the pipeline's own changes.</summary>
    public string? Actor { get; init; }
}

/// <summary>One row of a linked record: the staging table, its hub key and the system's own id.</summary>
internal sealed record AuditIdentity(string Object, string System, string HubId, string? RecordId);

/// <summary>A customer's history across systems: its identities and every change applied to any of them.</summary>
internal sealed record AuditHistory(IReadOnlyList<AuditIdentity> Identities, IReadOnlyList<AuditEntry> Entries);
