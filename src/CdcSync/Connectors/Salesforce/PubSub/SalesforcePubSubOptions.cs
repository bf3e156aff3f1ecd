using System.ComponentModel.DataAnnotations;
using CdcSync.Configuration;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// Change Data Capture over the Pub/Sub API (config section <c>Connectors:{name}:PubSub</c>). With an
/// <see cref="Endpoint"/> the inbound side subscribes to <c>/data/ChangeEvents</c> and polls only
/// slowly as a safety net; without one (the default) it polls as before.
/// </summary>
public sealed class SalesforcePubSubOptions : IValidatableObject
{
    /// <summary>
    /// The Pub/Sub API's <c>host:port</c> (<c>api.pubsub.salesforce.com:7443</c>) or an https URL;
    /// empty (default): no stream, polling only. Always TLS.
    /// </summary>
    public string? Endpoint { get; set; }

    /// <summary>
    /// A PEM file of the certificate authority (or the self-signed certificate) the endpoint's
    /// certificate must chain to, trusted in addition to the system's roots for this endpoint only.
    /// Empty (default): the system's trust store. TLS is never skipped.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>While the stream is up, a query still runs this often to catch what a stream could miss. Default 5 minutes.</summary>
    [DurationRange("1s", "1d")]
    public TimeSpan SafetyPollInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Events requested at a time (flow control); more are requested as these are applied. 1..100, default 100.</summary>
    [Range(1, 100)]
    public int BatchSize { get; set; } = 100;

    /// <summary>A failed subscription is retried after 1 s, doubling up to this. Default 1 minute.</summary>
    [DurationRange("1ms", "1h")]
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Topic subscribed to. Default <c>/data/ChangeEvents</c> (every object's change events, in commit order; those of objects not configured are skipped).</summary>
    public string Topic { get; set; } = "/data/ChangeEvents";

    /// <summary>True when a stream is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(Endpoint);

    /// <summary>The endpoint as a URI (https).</summary>
    public Uri EndpointUri()
    {
        var text = Endpoint!.Trim();
        return text.Contains("://", StringComparison.Ordinal) ? new Uri(text) : new Uri("https://" + text);
    }

    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (Enabled)
        {
            var text = Endpoint!.Trim();
            if (!Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "https://" + text, UriKind.Absolute, out var uri) || uri.Scheme != "https" || uri.Port <= 0)
            {
                yield return new ValidationResult("Endpoint must be host:port (e.g. api.pubsub.salesforce.com:7443) or an https URL; the Pub/Sub API is always TLS.", [nameof(Endpoint)]);
            }
        }

        if (!string.IsNullOrWhiteSpace(CaFile) && !File.Exists(CaFile))
        {
            yield return new ValidationResult($"CaFile {CaFile} does not exist; give the PEM file of the certificate the Pub/Sub endpoint presents (or its CA), or leave CaFile empty to use the system's trust store.", [nameof(CaFile)]);
        }

        if (!Topic.StartsWith('/'))
        {
            yield return new ValidationResult("Topic must be a channel name such as /data/ChangeEvents or /data/AccountChangeEvent.", [nameof(Topic)]);
        }
    }
}
