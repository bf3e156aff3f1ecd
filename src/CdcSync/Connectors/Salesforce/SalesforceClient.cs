using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Inbound;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly.CircuitBreaker;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Talks to one Salesforce org: OAuth 2.0 (client credentials, refresh token or JWT bearer, see
/// <see cref="SalesforceTokenEndpoint"/>),
/// one refresh-and-retry on 401 <c>INVALID_SESSION_ID</c>, and every call through the connector's
/// resilience pipeline. Share one instance between the inbound and outbound connector of an org:
/// the token, the rate limit and the circuit breaker belong to the org.
/// </summary>
internal sealed class SalesforceClient
{
    private readonly HttpClient _http;
    private readonly SalesforceOptions _options;
    private readonly ILogger _logger;
    private readonly SalesforceTokenEndpoint _tokenEndpoint;
    private readonly SemaphoreSlim _tokenGate = new(1, 1);
    private SalesforceSession? _session;
    private long _usageUsed;
    private long _usageMax;

    public SalesforceClient(SalesforceOptions options, HttpClient http, ILogger<SalesforceClient>? logger = null, TimeProvider? timeProvider = null, SalesforceClientId? clientId = null)
    {
        ClientId = clientId;
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _http = http;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _tokenEndpoint = new SalesforceTokenEndpoint(options, $"Connectors:{options.Name}", timeProvider ?? TimeProvider.System);
        Resilience = HttpResilience.Create(options.Name, options.Resilience, ClassifyAsync, timeProvider, _logger);
    }

    public string Name => _options.Name;

    /// <summary>This hub's client id, sent with every call so that change events name our writes; null in tests that need none.</summary>
    public SalesforceClientId? ClientId { get; }

    public SalesforceOptions Options => _options;

    /// <summary>Retry, circuit breaker and rate limiter of this org's calls.</summary>
    public HttpResilience Resilience { get; }

    /// <summary>Closed when healthy; Open/HalfOpen while Salesforce is failing (for health checks and status).</summary>
    public CircuitState CircuitState => Resilience.CircuitBreaker.CircuitState;

    /// <summary>Path of the REST API root, e.g. <c>/services/data/v61.0</c>.</summary>
    public string ApiPath => $"/services/data/v{_options.ApiVersion}";

    /// <summary>
    /// Sends a request to the org's instance (<paramref name="path"/> starts with <c>/services</c>) and
    /// returns the parsed JSON body (null for 204). Throws <see cref="SalesforceApiException"/> when
    /// Salesforce refuses the request as a whole; per-record results are the caller's to read.
    /// </summary>
    public async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, IReadOnlyDictionary<string, string>? headers, CancellationToken cancellationToken)
    {
        var text = (await SendForTextAsync(method, path, body, headers, "application/json", cancellationToken)).Text;
        return string.IsNullOrWhiteSpace(text) ? null : JsonNode.Parse(text);
    }

    /// <summary>
    /// Like <see cref="SendAsync"/>, for responses that are not JSON (Bulk API 2.0 results are CSV):
    /// the body as text and the response headers (e.g. <c>Sforce-Locator</c>).
    /// </summary>
    public async Task<SalesforceTextResponse> SendForTextAsync(HttpMethod method, string path, JsonNode? body, IReadOnlyDictionary<string, string>? headers, string accept, CancellationToken cancellationToken)
    {
        var refreshed = false;
        while (true)
        {
            var session = await SessionAsync(cancellationToken);
            var client = ClientId is null ? null : await ClientId.GetAsync(cancellationToken);
            using var response = await Resilience.SendAsync(_http, _ => ValueTask.FromResult(Build(session, method, path, body, headers, accept, client)), cancellationToken);
            TrackUsage(response);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                return new SalesforceTextResponse(text, response.Headers);
            }

            var (code, message) = ReadError(text);
            if (response.StatusCode == HttpStatusCode.Unauthorized && !refreshed)
            {
                // Sessions expire or get revoked; one fresh token is worth one more try, not a loop.
                _logger.LogInformation("{Connector}: session rejected ({ErrorCode}); requesting a new access token", Name, code);
                await InvalidateAsync(session, cancellationToken);
                refreshed = true;
                continue;
            }

            var kind = await ClassifyAsync(response, cancellationToken);
            throw new SalesforceApiException(
                $"Salesforce {method} {Describe(path)} failed: HTTP {(int)response.StatusCode} {code}: {message}",
                response.StatusCode,
                code,
                isTransient: kind != HttpFailureKind.None,
                isAuthentication: response.StatusCode == HttpStatusCode.Unauthorized);
        }
    }

    /// <summary>
    /// The current access token and instance, for calls that do not go through REST (the Pub/Sub
    /// API's metadata). <paramref name="stale"/>: the token a call just had refused, dropped first.
    /// </summary>
    public async Task<SalesforceSession> GetSessionAsync(SalesforceSession? stale, CancellationToken cancellationToken)
    {
        if (stale is not null)
        {
            await InvalidateAsync(stale, cancellationToken);
        }

        return await SessionAsync(cancellationToken);
    }

    /// <summary>A Salesforce dateTime as the API returns it (<c>2026-03-01T10:00:00.000+0000</c>), in UTC; null when it is not one.</summary>
    public static DateTimeOffset? ParseDateTime(string? text)
    {
        if (text is null || text.Length != 28 || text[10] != 'T')
        {
            return null;
        }

        var normalized = text[..26] + ":" + text[26..];
        return DateTimeOffset.TryParseExact(normalized, "yyyy-MM-dd'T'HH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var value)
            ? value.ToUniversalTime()
            : null;
    }

    /// <summary>The org's daily API usage as the last response reported it (<c>Sforce-Limit-Info: api-usage=used/max</c>), or null before any.</summary>
    public (long Used, long Max)? Usage
    {
        get
        {
            var max = Interlocked.Read(ref _usageMax);
            return max > 0 ? (Interlocked.Read(ref _usageUsed), max) : null;
        }
    }

    /// <summary>The allowance as a capability reports it: usage, and the calls one poll of the inbound objects makes.</summary>
    public ApiBudget? Budget => Usage is { } usage
        ? new ApiBudget(usage.Used, usage.Max, Math.Max(1, Options.Objects.Count(o => o.Inbound)))
        : null;

    /// <summary>
    /// Reads the org's daily allowance from <c>/limits</c> (DailyApiRequests), for orgs or proxies
    /// whose responses carry no <c>Sforce-Limit-Info</c> header.
    /// </summary>
    public async Task RefreshUsageAsync(CancellationToken cancellationToken)
    {
        var limits = await SendAsync(HttpMethod.Get, $"{ApiPath}/limits", null, null, cancellationToken);
        if (limits?["DailyApiRequests"] is JsonObject daily
            && daily["Max"]?.GetValue<long>() is { } max and > 0
            && daily["Remaining"]?.GetValue<long>() is { } remaining)
        {
            Interlocked.Exchange(ref _usageUsed, max - remaining);
            Interlocked.Exchange(ref _usageMax, max);
        }
    }

    private void TrackUsage(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Sforce-Limit-Info", out var values))
        {
            return;
        }

        foreach (var part in values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)))
        {
            if (part.StartsWith("api-usage=", StringComparison.OrdinalIgnoreCase)
                && part["api-usage=".Length..].Split('/') is [var used, var max]
                && long.TryParse(used, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var u)
                && long.TryParse(max, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var m))
            {
                Interlocked.Exchange(ref _usageUsed, u);
                Interlocked.Exchange(ref _usageMax, m);
            }
        }
    }

    /// <summary>5xx are transient; 429 and 403 <c>REQUEST_LIMIT_EXCEEDED</c> are throttling.</summary>
    internal static async ValueTask<HttpFailureKind> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var kind = await HttpResilience.ClassifyDefault(response, cancellationToken);
        if (kind != HttpFailureKind.None || response.StatusCode != HttpStatusCode.Forbidden)
        {
            return kind;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return ReadError(text).Code == "REQUEST_LIMIT_EXCEEDED" ? HttpFailureKind.Throttled : HttpFailureKind.None;
    }

    private HttpRequestMessage Build(SalesforceSession session, HttpMethod method, string path, JsonNode? body, IReadOnlyDictionary<string, string>? headers, string accept, string? clientId)
    {
        var request = new HttpRequestMessage(method, new Uri(session.InstanceUrl, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", session.AccessToken);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        if (clientId is not null)
        {
            // Change events carry it back as changeOrigin: how the stream tells our writes from users' edits.
            request.Headers.TryAddWithoutValidation("Sforce-Call-Options", $"client={clientId}");
        }

        if (headers is not null)
        {
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        return request;
    }

    private async Task<SalesforceSession> SessionAsync(CancellationToken cancellationToken)
    {
        var current = Volatile.Read(ref _session);
        if (current is not null)
        {
            return current;
        }

        await _tokenGate.WaitAsync(cancellationToken);
        try
        {
            return _session ??= await RequestTokenAsync(cancellationToken);
        }
        finally
        {
            _tokenGate.Release();
        }
    }

    private async Task InvalidateAsync(SalesforceSession stale, CancellationToken cancellationToken)
    {
        await _tokenGate.WaitAsync(cancellationToken);
        try
        {
            if (ReferenceEquals(_session, stale))
            {
                _session = null;
            }
        }
        finally
        {
            _tokenGate.Release();
        }
    }

    private async Task<SalesforceSession> RequestTokenAsync(CancellationToken cancellationToken)
    {
        using var response = await Resilience.SendAsync(_http, _ => ValueTask.FromResult(_tokenEndpoint.CreateRequest()), cancellationToken);
        SalesforceSession session;
        try
        {
            session = await _tokenEndpoint.ReadAsync(response, cancellationToken);
        }
        catch (SalesforceApiException e)
        {
            _logger.LogError("{Connector}: token request to {TokenUrl} ({Grant} grant) failed with HTTP {Status} {OAuthError}", Name, _tokenEndpoint.Url, _tokenEndpoint.Grant, (int)response.StatusCode, e.ErrorCode);
            throw;
        }

        _logger.LogInformation("{Connector}: authenticated at {InstanceUrl} ({Grant} grant)", Name, session.InstanceUrl, _tokenEndpoint.Grant);
        return session;
    }

    /// <summary>Salesforce's error body is an array of {message, errorCode}; OAuth's is {error, error_description}.</summary>
    internal static (string? Code, string? Message) ReadError(string text)
    {
        try
        {
            var json = JsonNode.Parse(text);
            var first = json is JsonArray array && array.Count > 0 ? array[0] : json;
            return (first?["errorCode"]?.ToString() ?? first?["error"]?.ToString(),
                    first?["message"]?.ToString() ?? first?["error_description"]?.ToString());
        }
        catch (JsonException)
        {
            return (null, text.Length > 200 ? text[..200] : text);
        }
    }

    /// <summary>A path for messages: the query string can be a long SOQL statement.</summary>
    private static string Describe(string path)
    {
        var q = path.IndexOf('?', StringComparison.Ordinal);
        return q < 0 ? path : path[..q];
    }

}

/// <summary>A successful response's body as text, and its headers.</summary>
internal sealed record SalesforceTextResponse(string Text, HttpResponseHeaders Headers)
{
    public string? Header(string name) => Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
