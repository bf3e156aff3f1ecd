using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.NetSuite;

/// <summary>A response the caller has to interpret: status, <c>Location</c> and body.</summary>
internal sealed record NetSuiteResponse(int StatusCode, Uri? Location, string Body);

/// <summary>
/// SuiteTalk REST calls through the connector's resilience pipeline: each attempt is signed anew,
/// at most <see cref="NetSuiteOptions.ConcurrencyLimit"/> are in flight.
/// </summary>
internal sealed class NetSuiteClient : IDisposable
{
    private static readonly MediaTypeHeaderValue Json = new("application/json") { CharSet = "utf-8" };

    private readonly HttpClient _http;
    private readonly TbaSigner _signer;
    private readonly Uri _baseUrl;

    public NetSuiteClient(string connector, NetSuiteOptions options, HttpMessageHandler? handler, TimeProvider timeProvider, ILogger logger)
        : this(
            connector,
            options,
            new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: handler is null) { Timeout = Timeout.InfiniteTimeSpan },
            timeProvider,
            logger)
    {
    }

    /// <summary>With a client from <see cref="IHttpClientFactory"/> (<see cref="ConnectorHttpClients.NetSuite"/>).</summary>
    public NetSuiteClient(string connector, NetSuiteOptions options, HttpClient http, TimeProvider timeProvider, ILogger logger)
    {
        _http = http;
        _signer = new TbaSigner(options, timeProvider);
        _baseUrl = options.EffectiveBaseUrl;
        var resilience = options.Resilience.Clone();
        resilience.MaxConcurrency = options.ConcurrencyLimit;
        Resilience = HttpResilience.Create(connector, resilience, ClassifyAsync, timeProvider, logger);
    }

    public HttpResilience Resilience { get; }

    public async Task<NetSuiteResponse> SendAsync(HttpMethod method, string relativeUrl, JsonNode? body, bool transient, CancellationToken cancellationToken) =>
        await SendAsync(method, relativeUrl, body, transient, "application/json", cancellationToken);

    public async Task<NetSuiteResponse> SendAsync(HttpMethod method, string relativeUrl, JsonNode? body, bool transient, string accept, CancellationToken cancellationToken)
    {
        var uri = new Uri(_baseUrl, relativeUrl);
        var payload = body?.ToJsonString();
        using var response = await Resilience.SendAsync(
            _http,
            _ =>
            {
                var request = new HttpRequestMessage(method, uri);
                request.Headers.TryAddWithoutValidation("Authorization", _signer.CreateHeader(method, uri));
                request.Headers.Accept.ParseAdd(accept);
                if (transient)
                {
                    request.Headers.Add("Prefer", "transient");
                }

                if (payload is not null)
                {
                    request.Content = new StringContent(payload, Encoding.UTF8);
                    request.Content.Headers.ContentType = Json;
                }

                return ValueTask.FromResult(request);
            },
            cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return new NetSuiteResponse((int)response.StatusCode, response.Headers.Location, text);
    }

    /// <summary>Throws <see cref="NetSuiteApiException"/> with NetSuite's error code and detail unless 2xx.</summary>
    public static NetSuiteResponse EnsureSuccess(NetSuiteResponse response, string operation)
    {
        if (response.StatusCode is >= 200 and < 300)
        {
            return response;
        }

        string? code = null;
        string? detail = null;
        string? path = null;
        try
        {
            if (JsonNode.Parse(response.Body)?["o:errorDetails"]?[0] is JsonObject first)
            {
                code = first["o:errorCode"]?.GetValue<string>();
                detail = first["detail"]?.GetValue<string>();
                path = first["o:errorPath"]?.GetValue<string>();
            }
        }
        catch (JsonException)
        {
            detail = response.Body.Length > 200 ? response.Body[..200] : response.Body;
        }

        throw new NetSuiteApiException(operation, response.StatusCode, code, detail, path);
    }

    public void Dispose() => _http.Dispose();

    // NetSuite signals its concurrency limit with 429 (CONCURRENCY_LIMIT_EXCEEDED); 5xx are transient.
    private static ValueTask<HttpFailureKind> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        HttpResilience.ClassifyDefault(response, cancellationToken);
}
