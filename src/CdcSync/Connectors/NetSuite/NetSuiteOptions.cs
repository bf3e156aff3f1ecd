using System.ComponentModel.DataAnnotations;
using CdcSync.Connectors.Http;
using CdcSync.Inbound;
using Microsoft.Extensions.Options;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// One NetSuite account reached through SuiteTalk REST web services with token-based
/// authentication. Secrets are never logged nor put in exception messages; <see cref="ToString"/>
/// leaves them out.
/// </summary>
public sealed class NetSuiteOptions
{
    /// <summary>Account id, e.g. <c>1234567</c> or <c>1234567_SB1</c> for a sandbox account; the OAuth realm.</summary>
    [Required]
    public string AccountId { get; set; } = string.Empty;

    /// <summary>Root of the account's REST domain; default <c>https://{account-id}.suitetalk.api.netsuite.com/</c>.</summary>
    public Uri? BaseUrl { get; set; }

    [Required]
    public string ConsumerKey { get; set; } = string.Empty;

    [Required]
    public string ConsumerSecret { get; set; } = string.Empty;

    [Required]
    public string TokenId { get; set; } = string.Empty;

    [Required]
    public string TokenSecret { get; set; } = string.Empty;

    /// <summary>Requests in flight at once; set to the account's concurrency limit (NetSuite rejects past it). Default 5.</summary>
    [Range(1, 1000)]
    public int ConcurrencyLimit { get; set; } = 5;

    /// <summary>A hub delete makes the record inactive (NetSuite's usual practice) instead of deleting it. Default true.</summary>
    public bool InactivateInsteadOfDelete { get; set; } = true;

    /// <summary>SuiteQL page size (<c>limit</c>), 1..1000. Default 1000.</summary>
    [Range(1, 1000)]
    public int PageSize { get; set; } = 1000;

    /// <summary>
    /// The record types to sync, parents first: which staging table mirrors which record type. The
    /// fields are the staging table's columns; their REST names, references and read-only flags
    /// come from the account's metadata catalog, or from the record's config where the catalog is
    /// not available.
    /// </summary>
    [ValidateEnumeratedItems]
    public List<NetSuiteRecordOptions> Records { get; set; } = [];

    /// <summary>Inbound: read SuiteQL's <c>deletedrecord</c> table so records deleted in NetSuite leave the hub too. Default true.</summary>
    public bool DetectDeletes { get; set; } = true;

    /// <summary>Inbound polling: enabled, overlap window, idle backoff.</summary>
    [ValidateObjectMembers]
    public InboundOptions Inbound { get; set; } = new();

    /// <summary>Retry, circuit breaker and rate limits; its MaxConcurrency is set from <see cref="ConcurrencyLimit"/>.</summary>
    [ValidateObjectMembers]
    public HttpResilienceOptions Resilience { get; set; } = new();

    public Uri EffectiveBaseUrl => BaseUrl ?? new Uri($"https://{AccountId.ToLowerInvariant().Replace('_', '-')}.suitetalk.api.netsuite.com/");

    public override string ToString() => $"NetSuite account {AccountId} at {EffectiveBaseUrl}";
}

/// <summary>How one NetSuite record type maps to its hub staging table.</summary>
public sealed class NetSuiteRecordOptions
{
    /// <summary>Record type as the REST record service and SuiteQL name it, e.g. <c>customer</c>, <c>opportunity</c>.</summary>
    [Required]
    [RegularExpression("^[a-z][a-z0-9_]*$", ErrorMessage = "{0} must be a NetSuite record type id in lower case, e.g. customer.")]
    public string RecordType { get; set; } = string.Empty;

    /// <summary>Hub staging table, e.g. <c>ns_customers</c>.</summary>
    [Required]
    public string Table { get; set; } = string.Empty;

    /// <summary>The hub's own key column. Default <c>hub_id</c>.</summary>
    public string KeyColumn { get; set; } = "hub_id";

    /// <summary>Column holding the internal id (SuiteQL's <c>id</c>; null until created). Default <c>internalid</c>.</summary>
    public string IdColumn { get; set; } = "internalid";

    /// <summary>Column holding the external id rows are upserted by (<c>eid:</c>). Default <c>externalid</c>.</summary>
    public string ExternalIdColumn { get; set; } = "externalid";

    /// <summary>Column of the inactive flag a delete sets (with InactivateInsteadOfDelete). Default <c>isinactive</c>.</summary>
    public string InactiveColumn { get; set; } = "isinactive";

    /// <summary>SuiteQL column of the record's modification stamp, for the cursor. Default <c>lastmodifieddate</c>.</summary>
    public string ModifiedField { get; set; } = "lastmodifieddate";

    /// <summary>Column that gets the modification stamp inbound, for last-write-wins; empty for none. Default <c>cdc_source_modified_at</c>.</summary>
    public string SourceModifiedColumn { get; set; } = "cdc_source_modified_at";

    /// <summary>REST field names of columns, where the catalog is not available (NetSuite's names are camelCase): column → field, e.g. companyname → companyName.</summary>
    public Dictionary<string, string> FieldNames { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Columns read but never written (stamps, computed fields), on top of what the catalog marks read-only.</summary>
    public List<string> ReadOnlyColumns { get; set; } = [];

    /// <summary>Columns kept in the hub only, on top of the key column and the <c>cdc_*</c> columns.</summary>
    public List<string> HubOnlyColumns { get; set; } = [];

    /// <summary>Columns holding another record's internal id, sent as <c>{"id": ...}</c> (e.g. subsidiary, entity), where the catalog is not available.</summary>
    public List<string> References { get; set; } = [];

    /// <summary>
    /// Sublists (jsonb array columns, e.g. addressbook) are merged line by line with what NetSuite
    /// holds, matched by this line field (column → line field). Default for every sublist: the
    /// line's <c>label</c> when it has one, else its <c>id</c>.
    /// </summary>
    public Dictionary<string, string> SublistKeys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// References resolved from the hub when the row has no parent internal id yet (e.g. an
    /// opportunity's entity while NetSuite is still creating its customer). Their hub key columns
    /// are kept in the hub only.
    /// </summary>
    [ValidateEnumeratedItems]
    public List<NetSuiteLookupOptions> Lookups { get; set; } = [];
}

/// <summary>
/// A NetSuite lookup (see <see cref="LookupOptions"/>): the parent's internal id is in <c>internalid</c>
/// by default. A row whose parent is not in NetSuite by then goes to dead letters, naming the parent.
/// </summary>
public sealed class NetSuiteLookupOptions : LookupOptions
{
    public NetSuiteLookupOptions() => ParentIdColumn = "internalid";
}
