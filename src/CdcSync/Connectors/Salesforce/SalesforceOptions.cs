using System.ComponentModel.DataAnnotations;
using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Inbound;
using Microsoft.Extensions.Options;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// One Salesforce org reached through the REST API with an OAuth 2.0 connected app. Secrets
/// (<see cref="ClientSecret"/>, <see cref="RefreshToken"/>, <see cref="PrivateKey"/>, access tokens)
/// are never logged nor put in exception messages; <see cref="ToString"/> leaves them out.
/// </summary>
public sealed class SalesforceOptions : IValidatableObject
{
    /// <summary>Connector name: replication origin, checkpoint and dead-letter key. Default <c>salesforce</c>.</summary>
    [Required]
    public string Name { get; set; } = "salesforce";

    /// <summary>
    /// Where the token endpoint lives (<c>{LoginUrl}/services/oauth2/token</c>): the org's My Domain URL
    /// (required for the client credentials flow), or <c>https://login.salesforce.com</c> /
    /// <c>https://test.salesforce.com</c> with a refresh token or the JWT bearer flow. API calls go to the
    /// <c>instance_url</c> the token response names.
    /// </summary>
    [Required]
    public Uri? LoginUrl { get; set; }

    /// <summary>
    /// How the connector gets its access token: <c>clientcredentials</c>, <c>refreshtoken</c> or <c>jwt</c>.
    /// Default: <c>refreshtoken</c> when <see cref="RefreshToken"/> is set, else <c>clientcredentials</c>.
    /// </summary>
    public SalesforceAuthFlow? AuthFlow { get; set; }

    /// <summary>The connected app's consumer key (the JWT assertion's issuer, <c>iss</c>).</summary>
    [Required]
    public string ClientId { get; set; } = string.Empty;

    /// <summary>The connected app's consumer secret; required except for the JWT bearer flow.</summary>
    public string ClientSecret { get; set; } = string.Empty;

    /// <summary>When set (and <see cref="AuthFlow"/> is not), the connector uses the refresh token flow instead of client credentials.</summary>
    public string? RefreshToken { get; set; }

    /// <summary>JWT bearer flow: the username of the Salesforce user the connector acts as (<c>sub</c>), pre-authorized for the connected app.</summary>
    public string? Username { get; set; }

    /// <summary>JWT bearer flow: a PEM file with the RSA private key of the certificate uploaded to the connected app.</summary>
    public string? PrivateKeyFile { get; set; }

    /// <summary>
    /// JWT bearer flow: the PEM private key itself, for a key kept in an environment variable
    /// (<c>"${SALESFORCE_PRIVATE_KEY}"</c>); <c>\n</c> escapes stand for line breaks. Set this or <see cref="PrivateKeyFile"/>.
    /// </summary>
    public string? PrivateKey { get; set; }

    /// <summary>
    /// JWT bearer flow: the assertion's audience (<c>aud</c>). Default <c>https://login.salesforce.com</c>;
    /// <c>https://test.salesforce.com</c> for a sandbox org.
    /// </summary>
    public string Audience { get; set; } = "https://login.salesforce.com";

    /// <summary>REST API version. Default 61.0.</summary>
    [Required]
    [RegularExpression(@"^\d{2,3}\.0$", ErrorMessage = "Salesforce:ApiVersion must look like 61.0.")]
    public string ApiVersion { get; set; } = "61.0";

    /// <summary>Records per sObject Collections request, 1..200 (Salesforce's maximum). Default 200.</summary>
    [Range(1, 200)]
    public int BatchSize { get; set; } = 200;

    /// <summary>Records per query page (<c>Sforce-Query-Options: batchSize</c>), 200..2000. Default 2000.</summary>
    [Range(200, 2000)]
    public int QueryBatchSize { get; set; } = 2000;

    /// <summary>
    /// Initial loads: an sObject read for the first time (no cursor yet) with more records than this
    /// (one <c>SELECT COUNT()</c> call tells) is read with a Bulk API 2.0 query job instead of REST
    /// query pages: a 2M-record object is about 100 calls instead of 1,000. Below it REST is cheaper
    /// (a job costs about six calls however small). 0 uses a job for any object with records;
    /// 2147483647 never. Default 10000.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int BulkQueryThreshold { get; set; } = 10_000;

    /// <summary>Records per Bulk API 2.0 results page (<c>maxRecords</c>), one hub transaction each. 100..1,000,000, default 20000.</summary>
    [Range(100, 1_000_000)]
    public int BulkQueryPageSize { get; set; } = 20_000;

    /// <summary>How often a running query job's state is checked. Default 2 seconds.</summary>
    [DurationRange("10ms", "5m")]
    public TimeSpan BulkQueryPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A query job not complete after this long is aborted and the object is read with REST query
    /// pages instead. Default 1 hour.
    /// </summary>
    [DurationRange("1s", "1d")]
    public TimeSpan BulkQueryTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Inbound: records a system reports as deleted (queryAll, IsDeleted = true) are kept in the hub
    /// with <c>isdeleted = true</c> (default), so the transforms can act on the tombstone; false
    /// deletes the hub row.
    /// </summary>
    public bool SoftDeleteInbound { get; set; } = true;

    /// <summary>
    /// The sObjects to sync, in dependency order (parents first): which staging table mirrors which
    /// sObject. The fields are the staging table's columns; their API names and which are writable
    /// come from the org's describe (or <see cref="SalesforceObjectOptions.FieldNames"/> and
    /// <see cref="SalesforceObjectOptions.ReadOnlyColumns"/> where describe is not available).
    /// </summary>
    [ValidateEnumeratedItems]
    public List<SalesforceObjectOptions> Objects { get; set; } = [];

    /// <summary>
    /// Retry, circuit breaker and rate limit. Salesforce allows 25 concurrent long requests and a
    /// daily request quota per org; <c>REQUEST_LIMIT_EXCEEDED</c> counts as throttling.
    /// </summary>
    [ValidateObjectMembers]
    public HttpResilienceOptions Resilience { get; set; } = new() { PermitsPerSecond = 20 };

    /// <summary>Inbound polling: enabled, overlap window, idle backoff and API share.</summary>
    [ValidateObjectMembers]
    public InboundOptions Inbound { get; set; } = new();

    /// <summary>Change Data Capture over the Pub/Sub API: endpoint, CA file, safety poll (no endpoint: polling only).</summary>
    [ValidateObjectMembers]
    public PubSub.SalesforcePubSubOptions PubSub { get; set; } = new();

    public Uri TokenUrl => new(LoginUrl ?? throw new InvalidOperationException("Salesforce:LoginUrl is not set."), "services/oauth2/token");

    /// <summary>The flow in effect: <see cref="AuthFlow"/>, or what the credentials set imply.</summary>
    public SalesforceAuthFlow Flow => AuthFlow ?? (string.IsNullOrEmpty(RefreshToken) ? SalesforceAuthFlow.ClientCredentials : SalesforceAuthFlow.RefreshToken);

    public override string ToString() => $"Salesforce org at {LoginUrl} (client id {ClientId}, {Flow} flow, API v{ApiVersion})";

    /// <summary>
    /// What each flow needs. The generated validator calls this; a failure names its key and never
    /// shows a secret (the private key's problems say what is wrong with it, not what it holds).
    /// </summary>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (Flow != SalesforceAuthFlow.Jwt)
        {
            if (string.IsNullOrEmpty(ClientSecret))
            {
                yield return new ValidationResult("The ClientSecret field is required (the connected app's consumer secret), unless AuthFlow is jwt.", [nameof(ClientSecret)]);
            }

            if (Flow == SalesforceAuthFlow.RefreshToken && string.IsNullOrEmpty(RefreshToken))
            {
                yield return new ValidationResult("AuthFlow refreshtoken needs a RefreshToken; set it, or choose another AuthFlow.", [nameof(RefreshToken)]);
            }

            yield break;
        }

        if (string.IsNullOrWhiteSpace(Username))
        {
            yield return new ValidationResult("AuthFlow jwt signs in as a Salesforce user; set Username to that user's username (e.g. integration@example.com), a user pre-authorized for the connected app.", [nameof(Username)]);
        }

        if (!Uri.TryCreate(Audience, UriKind.Absolute, out var audience) || audience.Scheme is not ("https" or "http"))
        {
            yield return new ValidationResult("Audience must be a URL: https://login.salesforce.com (production), https://test.salesforce.com (sandbox org) or the org's My Domain URL.", [nameof(Audience)]);
        }

        if (SalesforcePrivateKey.Problem(this) is { } problem)
        {
            yield return new ValidationResult(problem.Message, [problem.Key]);
        }
    }
}

/// <summary>How one sObject maps to its hub staging table.</summary>
public sealed class SalesforceObjectOptions
{
    /// <summary>API name, e.g. <c>Account</c>.</summary>
    [Required]
    public string SObject { get; set; } = string.Empty;

    /// <summary>Hub staging table, e.g. <c>sf_accounts</c>.</summary>
    [Required]
    public string Table { get; set; } = string.Empty;

    /// <summary>The hub's own key column. Default <c>hub_id</c>.</summary>
    public string KeyColumn { get; set; } = "hub_id";

    /// <summary>Column holding the Salesforce Id (null until created). Default <c>id</c>.</summary>
    public string IdColumn { get; set; } = "id";

    /// <summary>External id field rows without an Id are upserted by. Default <c>CdcSync_Id__c</c>.</summary>
    public string ExternalIdField { get; set; } = "CdcSync_Id__c";

    /// <summary>Column holding the external id value. Default <c>cdcsync_id__c</c>.</summary>
    public string ExternalIdColumn { get; set; } = "cdcsync_id__c";

    /// <summary>Column with the record's deleted flag; true makes the outbound writer delete the record. Default <c>isdeleted</c>.</summary>
    public string DeletedColumn { get; set; } = "isdeleted";

    /// <summary>Column that gets the record's LastModifiedDate inbound, for last-write-wins; empty for none. Default <c>cdc_source_modified_at</c>.</summary>
    public string SourceModifiedColumn { get; set; } = "cdc_source_modified_at";

    /// <summary>
    /// API names for columns whose lower-cased name is not enough (Salesforce matches field names
    /// case-insensitively, so this is only for columns named unlike their field): column → field.
    /// </summary>
    public Dictionary<string, string> FieldNames { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Columns read from Salesforce but never written to it, on top of what describe reports as
    /// neither createable nor updateable (system stamps, formula fields). Needed when the org
    /// answers no describe.
    /// </summary>
    public List<string> ReadOnlyColumns { get; set; } = [];

    /// <summary>
    /// Columns that live only in the hub (neither read nor written), on top of the key column, the
    /// <c>cdc_*</c> columns, lookups' hub key columns, and columns describe does not know.
    /// </summary>
    public List<string> HubOnlyColumns { get; set; } = [];

    /// <summary>Lookups resolved from the hub when the row has no parent Id yet (e.g. a Contact's AccountId).</summary>
    [ValidateEnumeratedItems]
    public List<SalesforceLookupOptions> Lookups { get; set; } = [];

    public bool Inbound { get; set; } = true;

    public bool Outbound { get; set; } = true;
}

/// <summary>A Salesforce lookup (see <see cref="LookupOptions"/>): the parent's Id is in <c>id</c> by default.</summary>
public sealed class SalesforceLookupOptions : LookupOptions
{
    public SalesforceLookupOptions() => ParentIdColumn = "id";
}
