namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// One change event as decoded from its Avro payload: the documented <c>ChangeEventHeader</c> and
/// the record fields it says changed (API name to value; compound fields such as
/// <c>BillingAddress</c> flattened to their component fields, <c>BillingStreet</c>). For CREATE and
/// UNDELETE every populated field; for UPDATE the changed and the nulled ones.
/// </summary>
internal sealed record SalesforceChangeEvent(
    string EntityName,
    IReadOnlyList<string> RecordIds,
    string ChangeType,
    string? ChangeOrigin,
    DateTimeOffset CommitTimestamp,
    long CommitNumber,
    string? TransactionKey,
    int SequenceNumber,
    IReadOnlyDictionary<string, object?> Fields)
{
    /// <summary>GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE, GAP_OVERFLOW: changes happened that the event does not describe.</summary>
    public bool IsGap => ChangeType.StartsWith("GAP_", StringComparison.Ordinal);
}
