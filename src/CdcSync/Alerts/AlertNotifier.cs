using CdcSync.Configuration;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace CdcSync.Alerts;

/// <summary>
/// Delivers alerts to Alerts:WebhookUrl: a signed POST (<see cref="AlertPayload"/>), retried with
/// capped exponential backoff and jitter on 5xx, 408, 429, timeouts and connection failures. A
/// delivery that fails for good is an <see cref="OperatorException"/> saying why, naming the
/// webhook by scheme, host and port only (a Slack URL's path is its token) and never the secret.
/// </summary>
internal sealed class AlertNotifier : IDisposable
{
    private readonly AlertsOptions _options;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private readonly byte[] _secret;
    private readonly ResiliencePipeline<HttpResponseMessage> _withRetries;
    private readonly ResiliencePipeline<HttpResponseMessage> _once;

    public AlertNotifier(AlertsOptions options, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        if (options.WebhookUrl is null)
        {
            throw new OperatorException("Alerts:WebhookUrl is not set; set it in the config's Alerts section (or CDCSYNC__Alerts__WebhookUrl) to send alerts.");
        }

        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _secret = Encoding.UTF8.GetBytes(options.Secret);
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("cdcsync", typeof(AlertNotifier).Assembly.GetName().Version?.ToString(3)));
        logger ??= NullLogger.Instance;
        _withRetries = Build(options, _time, options.MaxRetryAttempts, logger);
        _once = Build(options, _time, 0, logger);
    }

    public string Destination => _options.Destination;

    /// <param name="retry">False for one attempt only ('cdcsync alerts test': the operator wants the answer now).</param>
    public async Task SendAsync(AlertMessage message, bool retry, CancellationToken cancellationToken)
    {
        var pipeline = retry ? _withRetries : _once;
        HttpResponseMessage response;
        try
        {
            response = await pipeline.ExecuteAsync(
                async ct =>
                {
                    // Built per attempt: a request cannot be sent twice, and each attempt carries its own timestamp.
                    var now = _time.GetUtcNow();
                    var timestamp = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
                    var body = AlertPayload.Body(message, _options.Format, now);
                    using var request = new HttpRequestMessage(HttpMethod.Post, _options.WebhookUrl) { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                    request.Headers.TryAddWithoutValidation(AlertPayload.TimestampHeader, timestamp);
                    request.Headers.TryAddWithoutValidation(AlertPayload.IdempotencyHeader, message.IdempotencyKey);
                    if (_secret.Length > 0)
                    {
                        request.Headers.TryAddWithoutValidation(AlertPayload.SignatureHeader, AlertPayload.Sign(timestamp, body, _secret));
                    }

                    return await _http.SendAsync(request, ct);
                },
                cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new OperatorException($"Alerts:WebhookUrl {Destination} cannot be reached ({e.Message}); check the URL and that the receiver is up.", e);
        }
        catch (TimeoutRejectedException e)
        {
            throw new OperatorException($"Alerts:WebhookUrl {Destination} did not answer within {AlertText.Duration(_options.AttemptTimeout)} (Alerts:AttemptTimeout); check the receiver.", e);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            var detail = AlertText.Cap(await response.Content.ReadAsStringAsync(cancellationToken));
            throw new OperatorException($"Alerts:WebhookUrl {Destination} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}{(detail.Length > 0 ? $": {detail}" : string.Empty)}; check the URL{(_options.Format == AlertFormat.Json ? ", Alerts:Secret" : string.Empty)} and the receiver.");
        }
    }

    public void Dispose() => _http.Dispose();

    private static ResiliencePipeline<HttpResponseMessage> Build(AlertsOptions options, TimeProvider time, int retries, ILogger logger)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = "alerts", TimeProvider = time };
        if (retries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = retries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => (int)r.StatusCode >= 500 || r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests),
                OnRetry = args =>
                {
                    logger.LogWarning(
                        "Alert delivery to {Destination} failed ({Failure}); retry {Attempt} in {Delay}",
                        options.Destination,
                        args.Outcome.Exception?.GetType().Name ?? ((int)args.Outcome.Result!.StatusCode).ToString(CultureInfo.InvariantCulture),
                        args.AttemptNumber + 1,
                        args.RetryDelay);
                    return default;
                },
            });
        }

        builder.AddTimeout(options.AttemptTimeout);
        return builder.Build();
    }
}
