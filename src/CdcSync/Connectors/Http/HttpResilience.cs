using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace CdcSync.Connectors.Http;

/// <summary>
/// One connector's HTTP resilience: retry (exponential backoff with jitter, honoring
/// <c>Retry-After</c>) → circuit breaker → concurrency limit → adaptive rate limit → attempt
/// timeout. Requests are built per attempt (a signed request cannot be re-sent: NetSuite rejects a
/// reused nonce), so callers go through <see cref="SendAsync"/>.
/// </summary>
internal sealed class HttpResilience
{
    private static readonly ResiliencePropertyKey<HttpFailureKind> KindKey = new("cdcsync.http.failure-kind");

    private readonly HttpFailureClassifier _classify;
    private readonly TimeProvider _timeProvider;

    private HttpResilience(
        ResiliencePipeline<HttpResponseMessage> pipeline,
        CircuitBreakerStateProvider circuitBreaker,
        AdaptiveRateLimiter rateLimiter,
        HttpFailureClassifier classify,
        TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        Pipeline = pipeline;
        CircuitBreaker = circuitBreaker;
        RateLimiter = rateLimiter;
        _classify = classify;
    }

    public ResiliencePipeline<HttpResponseMessage> Pipeline { get; }

    /// <summary>The breaker's state, for health checks and <c>cdcsync status</c>.</summary>
    public CircuitBreakerStateProvider CircuitBreaker { get; }

    public AdaptiveRateLimiter RateLimiter { get; }

    /// <summary>5xx and 408 are transient, 429 is throttling, everything else goes back to the caller.</summary>
    public static ValueTask<HttpFailureKind> ClassifyDefault(HttpResponseMessage response, CancellationToken cancellationToken) =>
        ValueTask.FromResult(response.StatusCode switch
        {
            HttpStatusCode.TooManyRequests => HttpFailureKind.Throttled,
            HttpStatusCode.RequestTimeout => HttpFailureKind.Transient,
            >= HttpStatusCode.InternalServerError and not HttpStatusCode.NotImplemented and not HttpStatusCode.HttpVersionNotSupported => HttpFailureKind.Transient,
            _ => HttpFailureKind.None,
        });

    /// <param name="name">Connector name, used in log templates and as the pipeline's instance name.</param>
    /// <param name="classify">Classifies responses; <see cref="ClassifyDefault"/> when null.</param>
    public static HttpResilience Create(
        string name,
        HttpResilienceOptions options,
        HttpFailureClassifier? classify = null,
        TimeProvider? timeProvider = null,
        ILogger? logger = null)
    {
        timeProvider ??= TimeProvider.System;
        logger ??= NullLogger.Instance;
        var stateProvider = new CircuitBreakerStateProvider();
        var rateLimiter = new AdaptiveRateLimiter(options.PermitsPerSecond, options.ThrottlePause, timeProvider);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = "http", InstanceName = name, TimeProvider = timeProvider };

        builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
        {
            MaxRetryAttempts = Math.Max(options.MaxRetryAttempts, 0),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.RetryBaseDelay,
            MaxDelay = options.RetryMaxDelay,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception switch
            {
                null => args.Context.Properties.GetValue(KindKey, HttpFailureKind.None) != HttpFailureKind.None,
                IsolatedCircuitException => false,
                BrokenCircuitException or HttpRequestException or TimeoutRejectedException => true,
                OperationCanceledException => !args.Context.CancellationToken.IsCancellationRequested,
                _ => false,
            }),
            DelayGenerator = args =>
            {
                TimeSpan? delay = args.Outcome.Exception is BrokenCircuitException broken
                    ? broken.RetryAfter ?? options.CircuitBreakerBreakDuration
                    : RetryAfter(args.Outcome.Result, timeProvider);
                return ValueTask.FromResult(delay is { } d ? (TimeSpan?)TimeSpan.FromTicks(Math.Min(d.Ticks, options.MaxRetryAfter.Ticks)) : null);
            },
            OnRetry = args =>
            {
                logger.LogWarning(
                    "{Connector}: HTTP attempt {Attempt} failed ({Failure}); retrying in {Delay}",
                    name,
                    args.AttemptNumber + 1,
                    args.Outcome.Exception is { } e ? e.GetType().Name : ((int)args.Outcome.Result!.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    args.RetryDelay);
                return default;
            },
        });

        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
        {
            FailureRatio = options.CircuitBreakerFailureRatio,
            MinimumThroughput = options.CircuitBreakerMinimumThroughput,
            SamplingDuration = options.CircuitBreakerSamplingDuration,
            BreakDuration = options.CircuitBreakerBreakDuration,
            StateProvider = stateProvider,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception switch
            {
                null => args.Context.Properties.GetValue(KindKey, HttpFailureKind.None) == HttpFailureKind.Transient,
                HttpRequestException or TimeoutRejectedException => true,
                OperationCanceledException => !args.Context.CancellationToken.IsCancellationRequested,
                _ => false,
            }),
            OnOpened = args =>
            {
                logger.LogError("{Connector}: circuit opened for {BreakDuration} after repeated failures", name, args.BreakDuration);
                return default;
            },
            OnClosed = _ =>
            {
                logger.LogInformation("{Connector}: circuit closed", name);
                return default;
            },
        });

        if (options.MaxConcurrency > 0)
        {
            builder.AddConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = options.MaxConcurrency,
                QueueLimit = int.MaxValue,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            });
        }

        builder.AddRateLimiter(rateLimiter);
        builder.AddTimeout(options.AttemptTimeout);
        return new HttpResilience(builder.Build(), stateProvider, rateLimiter, classify ?? ClassifyDefault, timeProvider);
    }

    /// <summary>
    /// Sends a request built fresh for each attempt. Returns the last response, which may be a
    /// failure after retries ran out or a permanent rejection: the caller decides what it means.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(
        HttpClient client,
        Func<CancellationToken, ValueTask<HttpRequestMessage>> createRequest,
        CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            return await Pipeline.ExecuteAsync(
                static async (ctx, state) =>
                {
                    ctx.Properties.Set(KindKey, HttpFailureKind.None);
                    using var request = await state.createRequest(ctx.CancellationToken);
                    var response = await state.client.SendAsync(request, ctx.CancellationToken);
                    var kind = await state.self._classify(response, ctx.CancellationToken);
                    ctx.Properties.Set(KindKey, kind);
                    if (kind == HttpFailureKind.Throttled)
                    {
                        state.self.RateLimiter.OnThrottled(RetryAfter(response, state.self._timeProvider));
                    }
                    else if (kind == HttpFailureKind.None)
                    {
                        state.self.RateLimiter.OnSuccess();
                    }

                    return response;
                },
                context,
                (self: this, client, createRequest));
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>The delay a <c>Retry-After</c> header asks for (seconds or an HTTP date), if any.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeProvider timeProvider)
    {
        var header = response?.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (header?.Date is { } date)
        {
            var d = date - timeProvider.GetUtcNow();
            return d < TimeSpan.Zero ? TimeSpan.Zero : d;
        }

        return null;
    }
}
