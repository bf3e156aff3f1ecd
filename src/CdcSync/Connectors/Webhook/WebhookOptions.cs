using System.ComponentModel.DataAnnotations;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Options;

namespace CdcSync.Connectors.Webhook;

/// <summary>A receiver of signed change batches. <see cref="ToString"/> leaves the secret out.</summary>
public sealed class WebhookOptions
{
    /// <summary>Where batches are POSTed.</summary>
    [Required]
    public Uri? Url { get; set; }

    /// <summary>Shared secret of the <c>X-CdcSync-Signature</c> HMAC-SHA256.</summary>
    [Required]
    [MinLength(16)]
    public string Secret { get; set; } = string.Empty;

    /// <summary>Events per POST. Default 500.</summary>
    [Range(1, 100_000)]
    public int MaxBatchSize { get; set; } = 500;

    [ValidateObjectMembers]
    public HttpResilienceOptions Resilience { get; set; } = new();

    public override string ToString() => $"webhook {Url}";
}
