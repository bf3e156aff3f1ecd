using System.ComponentModel.DataAnnotations;

namespace CdcSync.Configuration;

/// <summary>The operator console in the browser (docs/operations.md, "Console"). Section "Console".</summary>
public sealed class ConsoleOptions : IValidatableObject
{
    /// <summary>
    /// Where `cdcsync run` (and `cdcsync console`) serve the console; empty turns it off in the
    /// worker. Plain http on loopback: TLS belongs to a reverse proxy in front. Default: http://127.0.0.1:9465.
    /// </summary>
    public string Url { get; set; } = "http://127.0.0.1:9465";

    /// <summary>Sign-in attempts allowed per client address per minute; more are refused with 429. Default: 10.</summary>
    [Range(1, 10_000)]
    public int SignInAttemptsPerMinute { get; set; } = 10;

    /// <summary>How long a sign-in lasts without activity (sliding). Default: 8 h.</summary>
    [DurationRange("1m", "30d")]
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(Url) && (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || uri.AbsolutePath != "/"))
        {
            yield return new ValidationResult(
                $"Console:Url is '{Url}'; use an http URL such as http://127.0.0.1:9465 (http://0.0.0.0:9465 in a container; TLS goes in a reverse proxy in front), or leave it empty to turn the console off.",
                [nameof(Url)]);
        }
    }
}
