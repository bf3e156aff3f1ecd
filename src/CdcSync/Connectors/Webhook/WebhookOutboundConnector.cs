using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;

namespace CdcSync.Connectors.Webhook;

/// <summary>
/// POSTs batches of change events as JSON to a receiver, signed with
/// <c>X-CdcSync-Signature: sha256=&lt;hex HMAC-SHA256 of the body&gt;</c>. Each event carries its
/// idempotency key as <c>id</c>; each batch carries an <c>Idempotency-Key</c> header derived from the
/// ids it holds, so a redelivered batch has the same key. The checkpoint is written to the hub after
/// the receiver answered 2xx for everything up to it. A batch the receiver permanently refuses
/// (4xx other than 408/429) is dead-lettered event by event and the stream moves on.
/// </summary>
internal sealed class WebhookOutboundConnector : IOutboundConnector, IHasCircuit
{
    public const string SignatureHeader = "X-CdcSync-Signature";
    public const string IdempotencyHeader = "Idempotency-Key";

    private static readonly byte[] Prefix = Encoding.UTF8.GetBytes("{\"events\":[");
    private static readonly byte[] Suffix = Encoding.UTF8.GetBytes("]}");

    private readonly WebhookOptions _options;
    private readonly HubGateway _hub;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly byte[] _secret;
    private readonly List<(ChangeEvent Change, byte[] Json)> _pending = [];

    public WebhookOutboundConnector(
        string name,
        WebhookOptions options,
        HubGateway hub,
        ILogger<WebhookOutboundConnector>? logger = null,
        TimeProvider? timeProvider = null,
        HttpMessageHandler? handler = null)
        : this(name, options, hub, new HttpClient(handler ?? new SocketsHttpHandler(), disposeHandler: handler is null) { Timeout = Timeout.InfiniteTimeSpan }, logger, timeProvider)
    {
    }

    /// <summary>With a client from <see cref="IHttpClientFactory"/> (<see cref="ConnectorHttpClients.Webhook"/>).</summary>
    internal WebhookOutboundConnector(string name, WebhookOptions options, HubGateway hub, HttpClient http, ILogger<WebhookOutboundConnector>? logger, TimeProvider? timeProvider)
    {
        Name = name;
        _options = options.Url is null
            ? throw new ArgumentException($"Webhook connector '{name}' has no Url; set it in the connector's configuration.", nameof(options))
            : options;
        _hub = hub;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _secret = Encoding.UTF8.GetBytes(options.Secret);
        _http = http;
        Resilience = HttpResilience.Create(name, options.Resilience, null, timeProvider, _logger);
    }

    public string Name { get; }

    public HttpResilience Resilience { get; }

    public Polly.CircuitBreaker.CircuitState CircuitState => Resilience.CircuitBreaker.CircuitState;

    /// <summary>The signature header value for a body: <c>sha256=</c> and the lower-case hex HMAC-SHA256.</summary>
    public static string Sign(ReadOnlySpan<byte> body, ReadOnlySpan<byte> secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, body));

    public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) =>
        _hub.ReadCheckpointAsync(Name, cancellationToken);

    public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        foreach (var change in changes)
        {
            _pending.Add((change, WebhookEventSerializer.Serialize(change)));
            if (_pending.Count >= _options.MaxBatchSize)
            {
                await FlushAsync(cancellationToken);
            }
        }
    }

    public async Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken);
        await _hub.WriteCheckpointAsync(Name, checkpoint, cancellationToken);
    }

    public Task AbortAsync(CancellationToken cancellationToken)
    {
        _pending.Clear();
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();

        return ValueTask.CompletedTask;
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_pending.Count == 0)
        {
            return;
        }

        var body = BuildBody();
        var signature = Sign(body, _secret);
        var idempotencyKey = BatchKey();
        using var response = await Resilience.SendAsync(
            _http,
            _ =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, _options.Url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                request.Headers.TryAddWithoutValidation(SignatureHeader, signature);
                request.Headers.TryAddWithoutValidation(IdempotencyHeader, idempotencyKey);
                return ValueTask.FromResult(request);
            },
            cancellationToken);

        var status = (int)response.StatusCode;
        if (status is >= 200 and < 300)
        {
            _logger.LogDebug("{Connector}: delivered {Count} events as {IdempotencyKey}", Name, _pending.Count, idempotencyKey);
            _pending.Clear();
            return;
        }

        var detail = await response.Content.ReadAsStringAsync(cancellationToken);
        detail = detail.Length > 500 ? detail[..500] : detail;
        if (status is >= 400 and < 500 and not (401 or 403 or 408 or 429))
        {
            var error = $"Webhook receiver refused the batch {idempotencyKey}: HTTP {status} {detail}";
            _logger.LogWarning("{Connector}: receiver refused batch {IdempotencyKey} with {Status}; {Count} events dead-lettered", Name, idempotencyKey, status, _pending.Count);
            foreach (var (change, json) in _pending)
            {
                await _hub.DeadLetterAsync(Name, new DeadLetter(change.Relation.Name, change.IdempotencyKey, Encoding.UTF8.GetString(json), error, change.Transaction.CommitLsn), cancellationToken);
            }

            _pending.Clear();
            return;
        }

        throw new HttpRequestException($"Webhook connector '{Name}' could not deliver batch {idempotencyKey} to {_options.Url}: HTTP {status} {detail}", null, response.StatusCode);
    }

    private byte[] BuildBody()
    {
        var length = Prefix.Length + Suffix.Length + _pending.Sum(p => p.Json.Length + 1);
        var body = new byte[length - (_pending.Count > 0 ? 1 : 0)];
        var span = body.AsSpan();
        Prefix.CopyTo(span);
        var pos = Prefix.Length;
        for (var i = 0; i < _pending.Count; i++)
        {
            if (i > 0)
            {
                body[pos++] = (byte)',';
            }

            _pending[i].Json.CopyTo(span[pos..]);
            pos += _pending[i].Json.Length;
        }

        Suffix.CopyTo(span[pos..]);
        return body;
    }

    /// <summary>Derived from the events' ids only, so the same events always travel under the same key.</summary>
    private string BatchKey()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (change, _) in _pending)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(change.IdempotencyKey));
            hash.AppendData("\n"u8);
        }

        return $"{_pending[0].Change.IdempotencyKey}+{_pending.Count}-{Convert.ToHexStringLower(hash.GetHashAndReset())[..16]}";
    }
}
