using System.ComponentModel.DataAnnotations;
using CdcSync.Configuration;

namespace CdcSync.Connectors.Http;

/// <summary>
/// Retry, circuit breaker and rate limiting for one connector's HTTP calls. The defaults suit a
/// SaaS API with published limits; every value can be set per connector in configuration.
/// </summary>
public sealed class HttpResilienceOptions
{
    /// <summary>Retries after the first attempt of one request. Default 6.</summary>
    [Range(0, 100)]
    public int MaxRetryAttempts { get; set; } = 6;

    /// <summary>First retry delay; doubled per attempt, with jitter. Default 500 ms.</summary>
    [DurationRange("0", "1h")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Cap on one computed retry delay. Default 30 s.</summary>
    [DurationRange("0", "1h")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Cap on a delay the server asks for with <c>Retry-After</c>. Default 5 min.</summary>
    [DurationRange("0", "1h")]
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Timeout of one attempt (the HttpClient's own timeout should be infinite). Default 100 s.</summary>
    [DurationRange("1ms", "1h")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>Share of failed attempts in the sampling window that opens the circuit. Default 0.5.</summary>
    [Range(0.01, 1.0)]
    public double CircuitBreakerFailureRatio { get; set; } = 0.5;

    /// <summary>Attempts in the sampling window before the ratio counts. Default 10.</summary>
    [Range(2, int.MaxValue)]
    public int CircuitBreakerMinimumThroughput { get; set; } = 10;

    /// <summary>Window over which the failure ratio is measured. Default 30 s.</summary>
    [DurationRange("500ms", "1d")]
    public TimeSpan CircuitBreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the circuit stays open before one trial request. Default 15 s.</summary>
    [DurationRange("500ms", "1d")]
    public TimeSpan CircuitBreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Requests per second the connector stays under; 0 = no rate limit (only the adaptive pause). Default 0.</summary>
    [Range(0.0, 100_000.0)]
    public double PermitsPerSecond { get; set; }

    /// <summary>Requests in flight at once (e.g. NetSuite's per-account concurrency limit); 0 = unlimited. Default 0.</summary>
    [Range(0, 10_000)]
    public int MaxConcurrency { get; set; }

    /// <summary>Pause all requests for this long after a throttling response without <c>Retry-After</c>. Default 1 s.</summary>
    [DurationRange("0", "1h")]
    public TimeSpan ThrottlePause { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A copy to adjust per connector without touching the bound configuration.</summary>
    public HttpResilienceOptions Clone() => (HttpResilienceOptions)MemberwiseClone();
}
