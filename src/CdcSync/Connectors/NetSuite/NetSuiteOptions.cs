using System.ComponentModel.DataAnnotations;
using CdcSync.Connectors.Http;

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

    /// <summary>A hub delete makes the customer inactive (NetSuite's usual practice) instead of deleting it. Default true.</summary>
    public bool InactivateInsteadOfDelete { get; set; } = true;

    /// <summary>SuiteQL page size (<c>limit</c>), 1..1000. Default 1000.</summary>
    [Range(1, 1000)]
    public int PageSize { get; set; } = 1000;

    /// <summary>Hub staging table of customers. Default <c>ns_customers</c>.</summary>
    [Required]
    public string Table { get; set; } = "ns_customers";

    /// <summary>Retry, circuit breaker and rate limits; its MaxConcurrency is set from <see cref="ConcurrencyLimit"/>.</summary>
    public HttpResilienceOptions Resilience { get; set; } = new();

    public Uri EffectiveBaseUrl => BaseUrl ?? new Uri($"https://{AccountId.ToLowerInvariant().Replace('_', '-')}.suitetalk.api.netsuite.com/");

    public override string ToString() => $"NetSuite account {AccountId} at {EffectiveBaseUrl}";
}
