using CdcSync.Configuration;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CdcSync.Alerts;

/// <summary>
/// The body of an alert in Alerts:Format, and its signature: <c>X-CdcSync-Signature: sha256=HEX</c>,
/// the lower-case hex HMAC-SHA256 with Alerts:Secret over <c>TIMESTAMP + "." + BODY</c>, where
/// TIMESTAMP is the <c>X-CdcSync-Timestamp</c> header (Unix seconds) and BODY the raw bytes. The
/// timestamp is signed so a receiver can refuse an old request replayed.
/// </summary>
internal static class AlertPayload
{
    public const string TimestampHeader = "X-CdcSync-Timestamp";
    public const string SignatureHeader = "X-CdcSync-Signature";
    public const string IdempotencyHeader = "Idempotency-Key";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static byte[] Body(AlertMessage message, AlertFormat format, DateTimeOffset sentAt) => format == AlertFormat.Slack
        ? JsonSerializer.SerializeToUtf8Bytes(new { text = SlackText(message) }, Json)
        : JsonSerializer.SerializeToUtf8Bytes(new
        {
            status = message.Status.ToString().ToLowerInvariant(),
            key = message.Key,
            source = message.Source,
            severity = message.Severity,
            text = message.Text,
            alertId = message.Id,
            openedAt = message.OpenedAt,
            resolvedAt = message.ResolvedAt,
            sentAt,
        }, Json);

    /// <summary>The signature header's value for a body sent at <paramref name="timestamp"/> (Unix seconds).</summary>
    public static string Sign(string timestamp, ReadOnlySpan<byte> body, ReadOnlySpan<byte> secret)
    {
        var signed = new byte[timestamp.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(timestamp, signed);
        signed[timestamp.Length] = (byte)'.';
        body.CopyTo(signed.AsSpan(timestamp.Length + 1));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, signed));
    }

    private static string SlackText(AlertMessage message) => message.Status switch
    {
        AlertStatus.Resolved => $"[RESOLVED] {message.Text}",
        AlertStatus.Test => $"[TEST] {message.Text}",
        _ => $"[{message.Severity.ToUpperInvariant()}] {message.Text}",
    };
}
