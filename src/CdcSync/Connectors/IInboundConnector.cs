namespace CdcSync.Connectors;

/// <summary>One record read from a system: the staging table it belongs in and its field values.</summary>
/// <param name="Table">Staging table, e.g. <c>sf_accounts</c>.</param>
/// <param name="KeyColumn">Column that identifies the record in the staging table, e.g. <c>id</c>.</param>
/// <param name="Values">Column name (lower case, as in the staging table) to value.</param>
/// <param name="Deleted">The system reports the record as deleted.</param>
public sealed record InboundRecord(string Table, string KeyColumn, IReadOnlyDictionary<string, object?> Values, bool Deleted);

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

    Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken);
}
