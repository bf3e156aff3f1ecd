using System.Collections.Concurrent;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>
/// Credentials, limits and fault knobs of the NetSuite sandbox. The knobs can be changed while the
/// sandbox runs (tests flip them between steps); counters are read the same way.
/// The default credentials are sandbox-only and documented so the demo needs no setup.
/// </summary>
public sealed class NetSuiteSandboxOptions
{
    public const string DefaultAccountId = "TSTDRV1234567";
    public const string DefaultConsumerKey = "sandbox-consumer-key";
    public const string DefaultConsumerSecret = "sandbox-consumer-secret";
    public const string DefaultTokenId = "sandbox-token-id";
    public const string DefaultTokenSecret = "sandbox-token-secret";

    private long _outageUntilTicks;
    private int _throttleBurst;
    private long _retryAfterTicks;
    private long _requestCount;
    private int _maxConcurrentSeen;
    private long _concurrencyRejections;
    private long _authFailures;

    /// <summary>TCP port on 127.0.0.1; 0 picks a free one.</summary>
    public int Port { get; set; }

    /// <summary>The account id: the OAuth realm the sandbox expects.</summary>
    public string AccountId { get; set; } = DefaultAccountId;

    public string ConsumerKey { get; set; } = DefaultConsumerKey;

    public string ConsumerSecret { get; set; } = DefaultConsumerSecret;

    public string TokenId { get; set; } = DefaultTokenId;

    public string TokenSecret { get; set; } = DefaultTokenSecret;

    /// <summary>
    /// Added to every record type's first internal id (customer 100, opportunity 5000). Default 0.
    /// NetSuite never reuses an internal id; give each run a different offset when a hub or a client
    /// may still hold ids from an earlier run.
    /// </summary>
    public long InternalIdOffset { get; set; }

    /// <summary>Requests the account may have in flight; past it NetSuite answers 429 CONCURRENCY_LIMIT_EXCEEDED. Default 5.</summary>
    public int ConcurrencyLimit { get; set; } = 5;

    /// <summary>How far an oauth_timestamp may be from the sandbox clock. Default 5 min.</summary>
    public TimeSpan TimestampTolerance { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Clock for lastModifiedDate, timestamps and outage windows.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Added to every admitted request (inside the concurrency window). Default none.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Share of admitted requests answered with 500 UNEXPECTED_ERROR, 0..1. Default 0.</summary>
    public double ErrorRate { get; set; }

    /// <summary>Seed of the error-rate dice, for repeatable runs.</summary>
    public int RandomSeed { get; set; } = 4;

    /// <summary>External ids the sandbox always rejects with a 400 (a record a target refuses).</summary>
    public ConcurrentDictionary<string, bool> RejectedExternalIds { get; } = new(StringComparer.Ordinal);

    /// <summary>Company names the sandbox always rejects with a 400.</summary>
    public ConcurrentDictionary<string, bool> RejectedCompanyNames { get; } = new(StringComparer.Ordinal);

    public long RequestCount => Interlocked.Read(ref _requestCount);

    /// <summary>Most requests the sandbox ever had admitted at once.</summary>
    public int MaxConcurrentRequests => Volatile.Read(ref _maxConcurrentSeen);

    public long ConcurrencyRejections => Interlocked.Read(ref _concurrencyRejections);

    public long AuthenticationFailures => Interlocked.Read(ref _authFailures);

    /// <summary>The next <paramref name="count"/> requests get 429 with <c>Retry-After</c>.</summary>
    public void ThrottleNext(int count, TimeSpan retryAfter)
    {
        Interlocked.Exchange(ref _retryAfterTicks, retryAfter.Ticks);
        Interlocked.Exchange(ref _throttleBurst, count);
    }

    /// <summary>Every request gets 503 until the window ends (by <see cref="TimeProvider"/>).</summary>
    public void StartOutage(TimeSpan duration) =>
        Interlocked.Exchange(ref _outageUntilTicks, (TimeProvider.GetUtcNow() + duration).UtcTicks);

    public void EndOutage() => Interlocked.Exchange(ref _outageUntilTicks, 0);

    /// <summary>Clears latency, error rate, throttling, outage and the rejection lists; the concurrency limit stays.</summary>
    public void ResetFaults()
    {
        Latency = TimeSpan.Zero;
        ErrorRate = 0;
        Interlocked.Exchange(ref _throttleBurst, 0);
        EndOutage();
        RejectedExternalIds.Clear();
        RejectedCompanyNames.Clear();
    }

    public void ResetCounters()
    {
        Interlocked.Exchange(ref _requestCount, 0);
        Interlocked.Exchange(ref _maxConcurrentSeen, 0);
        Interlocked.Exchange(ref _concurrencyRejections, 0);
        Interlocked.Exchange(ref _authFailures, 0);
    }

    internal bool InOutage => TimeProvider.GetUtcNow().UtcTicks < Interlocked.Read(ref _outageUntilTicks);

    internal TimeSpan? TakeThrottle()
    {
        while (true)
        {
            var left = Volatile.Read(ref _throttleBurst);
            if (left <= 0)
            {
                return null;
            }

            if (Interlocked.CompareExchange(ref _throttleBurst, left - 1, left) == left)
            {
                return TimeSpan.FromTicks(Interlocked.Read(ref _retryAfterTicks));
            }
        }
    }

    internal void CountRequest() => Interlocked.Increment(ref _requestCount);

    internal void CountConcurrencyRejection() => Interlocked.Increment(ref _concurrencyRejections);

    internal void CountAuthFailure() => Interlocked.Increment(ref _authFailures);

    internal void ObserveConcurrency(int current)
    {
        var seen = Volatile.Read(ref _maxConcurrentSeen);
        while (current > seen)
        {
            var prev = Interlocked.CompareExchange(ref _maxConcurrentSeen, current, seen);
            if (prev == seen)
            {
                return;
            }

            seen = prev;
        }
    }
}
