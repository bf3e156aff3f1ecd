using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CdcSync.Tests.Alerts;

/// <summary>
/// A webhook receiver on loopback that verifies each alert as docs/operations.md tells receivers
/// to: HMAC-SHA256 with the shared secret over "timestamp.body", compared in constant time, and a
/// timestamp within 5 minutes. A request that fails verification is answered 401 (so the sender
/// sees it fail) and recorded as invalid.
/// </summary>
internal sealed class AlertReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _failNext;

    private AlertReceiver(WebApplication app, string secret)
    {
        _app = app;
        Secret = secret;
    }

    public string Secret { get; }

    public Uri Url { get; private set; } = null!;

    /// <summary>Accepted (signature valid) deliveries, in arrival order.</summary>
    public ConcurrentQueue<JsonNode> Alerts { get; } = new();

    /// <summary>Requests refused because the signature or timestamp did not verify.</summary>
    public ConcurrentQueue<string> Refused { get; } = new();

    /// <summary>Answer the next N requests 503 (to exercise the sender's retries).</summary>
    public void FailNext(int count) => Volatile.Write(ref _failNext, count);

    public static async Task<AlertReceiver> StartAsync(string secret)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new AlertReceiver(app, secret);
        app.MapPost("/alerts/token-in-path", async (HttpContext context) =>
        {
            using var ms = new MemoryStream();
            await context.Request.Body.CopyToAsync(ms);
            var body = ms.ToArray();
            if (Interlocked.Decrement(ref receiver._failNext) >= 0)
            {
                return Results.StatusCode(503);
            }

            var timestamp = context.Request.Headers["X-CdcSync-Timestamp"].ToString();
            var signature = context.Request.Headers["X-CdcSync-Signature"].ToString();
            if (!Verify(secret, timestamp, body, signature))
            {
                receiver.Refused.Enqueue($"{timestamp} {signature}");
                return Results.StatusCode(401);
            }

            var alert = JsonNode.Parse(body)!;
            alert["idempotencyKey"] = context.Request.Headers["Idempotency-Key"].ToString();
            receiver.Alerts.Enqueue(alert);
            return Results.Ok();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Url = new Uri(address.TrimEnd('/') + "/alerts/token-in-path");
        return receiver;
    }

    /// <summary>What a receiver does: recompute the HMAC over timestamp + "." + raw body, compare in constant time, refuse old timestamps.</summary>
    public static bool Verify(string secret, string timestamp, byte[] body, string signature)
    {
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - seconds) > 300)
        {
            return false;
        }

        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(body).ToArray();
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
