using CdcSync.Resilience;

namespace CdcSync.Connectors.Http;

/// <summary>How the resilience pipeline treats a response.</summary>
internal enum HttpFailureKind
{
    /// <summary>Returned to the caller as is: a success or a permanent rejection the caller handles.</summary>
    None,

    /// <summary>Retried with backoff and counted by the circuit breaker (5xx, 408).</summary>
    Transient,

    /// <summary>The server asks us to slow down (429, Salesforce's REQUEST_LIMIT_EXCEEDED): retried, pauses all requests, not a breaker failure.</summary>
    Throttled,
}

/// <summary>Classifies a response; may read (buffered) content, e.g. to find Salesforce's error code.</summary>
internal delegate ValueTask<HttpFailureKind> HttpFailureClassifier(HttpResponseMessage response, CancellationToken cancellationToken);

internal static class HttpFailureKinds
{
    /// <summary>HTTP connectors classify responses themselves; a response nobody retries is the caller's to handle.</summary>
    public static FailureKind ToFailureKind(this HttpFailureKind kind) =>
        kind == HttpFailureKind.None ? FailureKind.Permanent : FailureKind.Transient;
}
