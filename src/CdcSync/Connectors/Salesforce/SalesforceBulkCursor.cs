using System.Text.Json;
using System.Text.Json.Serialization;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Where an initial load through a Bulk API 2.0 query job stands, kept in the sObject's
/// <see cref="Inbound.OverlapCursor.After"/> as <c>bulk:{json}</c> so a restart resumes at the
/// next results page of the same job.
/// </summary>
internal sealed class SalesforceBulkCursor
{
    private const string Prefix = "bulk:";

    [JsonPropertyName("job")]
    public string JobId { get; set; } = string.Empty;

    /// <summary>When the job was created (server time): the snapshot is at least this recent.</summary>
    [JsonPropertyName("created")]
    public DateTimeOffset Created { get; set; }

    /// <summary>The job reached JobComplete; its results can be read.</summary>
    [JsonPropertyName("complete")]
    public bool Complete { get; set; }

    /// <summary>The Sforce-Locator of the next results page; null for the first.</summary>
    [JsonPropertyName("locator")]
    public string? Locator { get; set; }

    /// <summary>Newest SystemModstamp read from the job so far.</summary>
    [JsonPropertyName("max")]
    public DateTimeOffset? MaxStamp { get; set; }

    /// <summary>Records read from the job so far (for progress logs).</summary>
    [JsonPropertyName("read")]
    public long Read { get; set; }

    public static SalesforceBulkCursor? TryParse(string? after)
    {
        if (after is null || !after.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<SalesforceBulkCursor>(after[Prefix.Length..]);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public override string ToString() => Prefix + JsonSerializer.Serialize(this);
}
