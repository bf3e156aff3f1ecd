
namespace CdcSync.Inbound;

/// <summary>One record read from a system: the staging table it belongs in and its field values.</summary>
/// <param name="Table">Staging table, e.g. <c>sf_accounts</c>.</param>
/// <param name="KeyColumn">Column that identifies the record in the staging table, e.g. <c>id</c>.</param>
/// <param name="Values">Column name (lower case, as in the staging table) to value.</param>
/// <param name="Deleted">The system reports the record as deleted.</param>
public sealed record InboundRecord(string Table, string KeyColumn, IReadOnlyDictionary<string, object?> Values, bool Deleted)
{
    /// <summary>
    /// Column holding the system's own modified stamp of this version. When set, a version older than
    /// the hub's (a stale re-read) never overwrites the hub row.
    /// </summary>
    public string? StampColumn { get; init; }

    /// <summary>
    /// The system stamps to the second (NetSuite), so a second edit in the same second carries the
    /// same stamp and must still be applied; otherwise an equal stamp is the version the hub holds.
    /// </summary>
    public bool SameStampMayBeNewer { get; init; }

    /// <summary>
    /// The system reports this version as the result of our own write (a change event naming our
    /// client as its origin): the values are what the system made of what we wrote (a normalized
    /// phone), not a user's edit, so they never open a conflict (transforms/005_sync_tracking.sql).
    /// </summary>
    public bool OwnWrite { get; init; }

    /// <summary>
    /// The values are only the fields that changed (a change event), so the record updates the hub
    /// row it names and never creates one: a row the hub does not hold is reported missing instead
    /// (and read whole by a catch-up).
    /// </summary>
    public bool UpdateOnly { get; init; }
}

/// <summary>A page of records and the cursor that continues after them.</summary>
public sealed record InboundPage(IReadOnlyList<InboundRecord> Records, string? NextCursor, bool HasMore);

/// <summary>
/// Reads changes from one system since a cursor (a modstamp, a token: the connector's own format).
/// The pipeline upserts each page into the hub under the connector's replication origin and stores
/// the cursor in the same hub transaction, so a crash re-reads at most one page.
/// </summary>
public interface IInboundConnector
{
    string Name { get; }

    /// <summary>Polling settings: overlap window, idle backoff, API share.</summary>
    InboundOptions Options { get; }

    Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken);
}
