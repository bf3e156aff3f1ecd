using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

/// <summary>What alerts look like on the wire. Section Alerts, key Format.</summary>
public enum AlertFormat
{
    /// <summary>CdcSync's own JSON document (status, key, source, severity, text, times).</summary>
    Json,

    /// <summary><c>{"text": "..."}</c>, what Slack (and Mattermost, Teams workflows) incoming webhooks take.</summary>
    Slack,
}

/// <summary>
/// Where the worker sends alerts, and when a condition is a problem. Section "Alerts"; without a
/// WebhookUrl no alert is sent. <see cref="ToString"/> leaves the secret and the URL's path out.
/// </summary>
public sealed class AlertsOptions : IValidatableObject
{
    /// <summary>Where alerts are POSTed (http or https). Default: none, alerts off.</summary>
    public Uri? WebhookUrl { get; set; }

    /// <summary>Shared secret of the X-CdcSync-Signature HMAC-SHA256, at least 16 characters; required with Format json.</summary>
    public string Secret { get; set; } = string.Empty;

    /// <summary>json or slack. Default: json.</summary>
    public AlertFormat Format { get; set; } = AlertFormat.Json;

    /// <summary>How often the lease holder looks for problems. Default: 10 s.</summary>
    [DurationRange("100ms", "1h")]
    public TimeSpan EvaluationInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A connector whose oldest unapplied change is older than this is lagging. Default: 5 min.</summary>
    [DurationRange("1s", "30d")]
    public TimeSpan LagThreshold { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>An open conflict waiting for review longer than this is a problem. Default: 24 h.</summary>
    [DurationRange("1s", "365d")]
    public TimeSpan ConflictWaitThreshold { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Retries of one delivery after the first attempt (5xx, 408, 429, unreachable). Default: 4.</summary>
    [Range(0, 20)]
    public int MaxRetryAttempts { get; set; } = 4;

    /// <summary>First retry delay, doubled per attempt with jitter. Default: 1 s.</summary>
    [DurationRange("0", "10m")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Cap on one retry delay. Default: 30 s.</summary>
    [DurationRange("0", "1h")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of one delivery attempt. Default: 10 s.</summary>
    [DurationRange("100ms", "5m")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool Enabled => WebhookUrl is not null;

    /// <summary>The webhook as it may be shown: scheme, host and port only (a Slack URL's path is its token).</summary>
    public string Destination => WebhookUrl is null ? "(none)" : WebhookUrl.GetLeftPart(UriPartial.Authority) + "/…";

    public override string ToString() => $"alerts to {Destination} as {Format}";

    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (WebhookUrl is { } url && (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp)))
        {
            yield return new ValidationResult("must be an absolute http or https URL.", [nameof(WebhookUrl)]);
        }

        // The secret itself never appears in a message.
        if (Secret.Length is > 0 and < 16)
        {
            yield return new ValidationResult("shorter than 16 characters; use a long random value (e.g. openssl rand -hex 32).", [nameof(Secret)]);
        }
        else if (WebhookUrl is not null && Format == AlertFormat.Json && Secret.Length == 0)
        {
            yield return new ValidationResult("required with Alerts:WebhookUrl (receivers verify the X-CdcSync-Signature with it); set it, e.g. from CDCSYNC__Alerts__Secret.", [nameof(Secret)]);
        }
    }
}

/// <summary>Section Alerts.</summary>
[OptionsValidator]
internal sealed partial class AlertsOptionsValidator : IValidateOptions<AlertsOptions>;
