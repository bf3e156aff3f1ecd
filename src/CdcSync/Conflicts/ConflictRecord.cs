namespace CdcSync.Conflicts;

/// <summary>
/// One field of one record that changed in both systems since they last agreed, as recorded in
/// <c>cdc.conflicts</c>. Values are JSON text (<c>to_jsonb</c> of the column value).
/// </summary>
internal sealed record ConflictRecord
{
    public long Id { get; init; }
    public string Connector { get; init; } = "";
    public string Object { get; init; } = "";
    public string RecordKey { get; init; } = "";
    public string? Field { get; init; }
    public string Policy { get; init; } = "";
    public string Status { get; init; } = "";
    public string? Decision { get; init; }
    public string? BaseValue { get; init; }
    public string? HubValue { get; init; }
    public string? IncomingValue { get; init; }
    public string? DecidedValue { get; init; }
    public string? HubSystem { get; init; }
    public string? IncomingSystem { get; init; }
    public DateTime? HubModifiedAt { get; init; }
    public DateTime? IncomingModifiedAt { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? ResolvedAt { get; init; }
    public string? ResolvedBy { get; init; }
}
