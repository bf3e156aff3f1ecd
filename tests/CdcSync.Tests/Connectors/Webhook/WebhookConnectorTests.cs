using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.Webhook;
using CdcSync.Replication;
using CdcSync.Tests.Connectors.NetSuite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NpgsqlTypes;

namespace CdcSync.Tests.Connectors.Webhook;

public sealed class WebhookConnectorTests
{
    private const string Connector = "webhook";
    private const string Secret = "whsec-SECRET-0123456789abcdef";

    private static readonly RelationInfo Orders = new(
        20000,
        "public",
        "orders",
        'f',
        [new("id", 23, -1, true), new("name", 25, -1, false), new("data", 3802, -1, false)]);

    [Fact]
    public async Task Batches_SignedVerifiablyAndRedeliveredWithTheSameIdempotencyKeys()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var tx = new TransactionInfo(7, new NpgsqlLogSequenceNumber(0x16B3748), new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc), "cdcsync:salesforce");
        var events = Enumerable.Range(0, 5).Select(i => Insert(i, tx)).ToList();

        await using (var connector = Create(receiver, hub, maxBatch: 3))
        {
            await connector.WriteAsync(events, CancellationToken.None);
            await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
            Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));
        }

        // A crash before the checkpoint: a new worker delivers the same changes again.
        await using (var again = Create(receiver, hub, maxBatch: 3))
        {
            await again.WriteAsync(events, CancellationToken.None);
            await again.CommitAsync(tx.CommitLsn, CancellationToken.None);
        }

        var deliveries = receiver.Deliveries.ToList();
        Assert.Equal(4, deliveries.Count);
        Assert.All(deliveries, d => Assert.True(d.SignatureValid, "signature did not verify"));
        Assert.Equal(deliveries[0].IdempotencyKey, deliveries[2].IdempotencyKey);
        Assert.Equal(deliveries[1].IdempotencyKey, deliveries[3].IdempotencyKey);
        Assert.NotEqual(deliveries[0].IdempotencyKey, deliveries[1].IdempotencyKey);

        var first = deliveries[0].Body["events"]!.AsArray();
        Assert.Equal(3, first.Count);
        var e0 = first[0]!;
        Assert.Equal(events[0].IdempotencyKey, e0["id"]!.GetValue<string>());
        Assert.Equal("public.orders", e0["table"]!.GetValue<string>());
        Assert.Equal("insert", e0["operation"]!.GetValue<string>());
        Assert.Equal(0, e0["key"]!["id"]!.GetValue<int>());
        Assert.Equal("order 0", e0["new"]!["name"]!.GetValue<string>());
        Assert.Equal(0, e0["new"]!["data"]!["n"]!.GetValue<int>());
        Assert.Equal("0/16B3748", e0["commitLsn"]!.GetValue<string>());
        Assert.Equal("cdcsync:salesforce", e0["origin"]!.GetValue<string>());
        var allIds = deliveries.Take(2).SelectMany(d => d.Body["events"]!.AsArray().Select(x => x!["id"]!.GetValue<string>())).ToList();
        Assert.Equal(events.Select(e => e.IdempotencyKey), allIds);
    }

    [Fact]
    public async Task ReceiverRefusesBatch_EventsDeadLetteredAndCheckpointAdvances()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Status = 422;
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var tx = new TransactionInfo(8, new NpgsqlLogSequenceNumber(0x2000000), DateTime.UnixEpoch, null);
        await using var connector = Create(receiver, hub, maxBatch: 10);

        await connector.WriteAsync([Insert(1, tx), Insert(2, tx)], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        var dead = await hub.DeadLettersAsync(Connector);
        Assert.Equal(2, dead.Count);
        Assert.Contains("422", dead[0].Error, StringComparison.Ordinal);
        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(CancellationToken.None));
    }

    [Fact]
    public async Task ReceiverFailsTransiently_RetriedUntilDelivered()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.FailNext = 2;
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var tx = new TransactionInfo(9, new NpgsqlLogSequenceNumber(0x3000000), DateTime.UnixEpoch, null);
        await using var connector = Create(receiver, hub, maxBatch: 10);

        await connector.WriteAsync([Insert(1, tx)], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);

        Assert.Equal(3, receiver.Attempts);
        Assert.Single(receiver.Deliveries);
    }

    [Fact]
    public async Task FailingRun_NeverLogsOrThrowsTheSecret()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Status = 500;
        await using var hub = await NetSuiteTestHub.CreateAsync(Name());
        var logs = new CapturingLoggerProvider();
        var tx = new TransactionInfo(10, new NpgsqlLogSequenceNumber(0x4000000), DateTime.UnixEpoch, null);
        var options = Options(receiver, 10);
        options.Resilience.MaxRetryAttempts = 2;
        await using var connector = new WebhookOutboundConnector(Connector, options, hub.Gateway, logs.CreateLogger<WebhookOutboundConnector>());

        await connector.WriteAsync([Insert(1, tx)], CancellationToken.None);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => connector.CommitAsync(tx.CommitLsn, CancellationToken.None));

        Assert.NotEmpty(logs.Lines);
        var text = string.Join("\n", logs.Lines) + "\n" + e + "\n" + options;
        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
        Assert.Equal(default, await connector.ReadCheckpointAsync(CancellationToken.None));
    }

    private static ChangeEvent Insert(int id, TransactionInfo tx)
    {
        var builder = new RowValues.Builder();
        builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes(id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes($"order {id}"));
        builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes($$"""{"n": {{id}}}"""));
        return new ChangeEvent(Orders, ChangeKind.Insert, builder.Build(), null, tx, id);
    }

    private static WebhookOutboundConnector Create(Receiver receiver, NetSuiteTestHub hub, int maxBatch) =>
        new(Connector, Options(receiver, maxBatch), hub.Gateway);

    private static WebhookOptions Options(Receiver receiver, int maxBatch) => new()
    {
        Url = receiver.Url,
        Secret = Secret,
        MaxBatchSize = maxBatch,
        Resilience = new HttpResilienceOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(50) },
    };

    private static string Name([CallerMemberName] string name = "") => "wh_" + name;

    /// <summary>A receiver as a user would write one: verifies the signature, records what it got.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _attempts;

        private Receiver(WebApplication app) => _app = app;

        public Uri Url { get; private set; } = null!;

        public int Status { get; set; } = 200;

        public int FailNext { get; set; }

        public int Attempts => Volatile.Read(ref _attempts);

        public ConcurrentQueue<(JsonNode Body, string IdempotencyKey, bool SignatureValid)> Deliveries { get; } = new();

        public static async Task<Receiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            var receiver = new Receiver(app);
            app.MapPost("/hook", async (HttpContext context) =>
            {
                Interlocked.Increment(ref receiver._attempts);
                using var ms = new MemoryStream();
                await context.Request.Body.CopyToAsync(ms);
                var body = ms.ToArray();
                if (receiver.FailNext > 0)
                {
                    receiver.FailNext--;
                    return Results.StatusCode(503);
                }

                if (receiver.Status != 200)
                {
                    return Results.Text("{\"error\":\"refused\"}", "application/json", statusCode: receiver.Status);
                }

                var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), body));
                var given = context.Request.Headers[WebhookOutboundConnector.SignatureHeader].ToString();
                var valid = CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(given));
                receiver.Deliveries.Enqueue((JsonNode.Parse(body)!, context.Request.Headers[WebhookOutboundConnector.IdempotencyHeader].ToString(), valid));
                return valid ? Results.Ok() : Results.StatusCode(401);
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            receiver.Url = new Uri(address.TrimEnd('/') + "/hook");
            return receiver;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
