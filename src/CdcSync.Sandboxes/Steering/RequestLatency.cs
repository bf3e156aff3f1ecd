using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace CdcSync.Sandboxes.Steering;

/// <summary>
/// Per-request latency injection for benchmarks: a request may carry <c>X-Sandbox-Latency-Ms: n</c>
/// (0..600000) and is answered n ms later, on top of the sandbox-wide <c>latencyMs</c> knob.
/// </summary>
internal static class RequestLatency
{
    public const string Header = "X-Sandbox-Latency-Ms";

    /// <summary>The requested extra latency, zero without the header.</summary>
    /// <exception cref="SteeringException">The header is not a number from 0 to 600000.</exception>
    public static TimeSpan Of(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(Header, out var value))
        {
            return TimeSpan.Zero;
        }

        return double.TryParse(value.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms is >= 0 and <= 600_000
            ? TimeSpan.FromMilliseconds(ms)
            : throw new SteeringException($"Header {Header}: '{value}' is not a number of milliseconds from 0 to 600000.");
    }
}
