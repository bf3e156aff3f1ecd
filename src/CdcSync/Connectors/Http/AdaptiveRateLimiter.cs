using System.Threading.RateLimiting;

namespace CdcSync.Connectors.Http;

/// <summary>
/// Spaces requests to stay under a rate and slows down when the server throttles: a throttling
/// response pauses every caller until its <c>Retry-After</c> and halves the rate, which then climbs
/// back by a twentieth of the maximum per success (additive increase, multiplicative decrease).
/// </summary>
internal sealed class AdaptiveRateLimiter : RateLimiter
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _timeProvider;
    private readonly double _maxRate;
    private readonly TimeSpan _defaultPause;
    private double _rate;
    private long _nextFree;
    private long _pausedUntil;
    private long _idleSince;

    public AdaptiveRateLimiter(double permitsPerSecond, TimeSpan defaultPause, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitsPerSecond);
        _maxRate = permitsPerSecond;
        _rate = permitsPerSecond;
        _defaultPause = defaultPause;
        _timeProvider = timeProvider;
        _idleSince = timeProvider.GetTimestamp();
    }

    /// <summary>The current rate in permits per second (0 = unlimited).</summary>
    public double CurrentRate
    {
        get
        {
            lock (_lock)
            {
                return _rate;
            }
        }
    }

    /// <summary>How many throttling responses were reported.</summary>
    public long ThrottleCount { get; private set; }

    public override TimeSpan? IdleDuration => _timeProvider.GetElapsedTime(Interlocked.Read(ref _idleSince));

    public void OnThrottled(TimeSpan? retryAfter)
    {
        lock (_lock)
        {
            ThrottleCount++;
            var until = _timeProvider.GetTimestamp() + ToTicks(retryAfter ?? _defaultPause);
            _pausedUntil = Math.Max(_pausedUntil, until);
            if (_maxRate > 0)
            {
                _rate = Math.Max(_maxRate / 64, _rate / 2);
            }
        }
    }

    public void OnSuccess()
    {
        if (_maxRate <= 0)
        {
            return;
        }

        lock (_lock)
        {
            _rate = Math.Min(_maxRate, _rate + (_maxRate / 20));
        }
    }

    public override RateLimiterStatistics? GetStatistics() => null;

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_lock)
        {
            var now = _timeProvider.GetTimestamp();
            if (Math.Max(_nextFree, _pausedUntil) > now)
            {
                return Lease.Rejected;
            }

            Reserve(now, permitCount);
            return Lease.Acquired;
        }
    }

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        long start;
        long now;
        lock (_lock)
        {
            now = _timeProvider.GetTimestamp();
            start = Reserve(now, permitCount);
        }

        if (start > now)
        {
            await Task.Delay(_timeProvider.GetElapsedTime(now, start), _timeProvider, cancellationToken);
        }

        Interlocked.Exchange(ref _idleSince, _timeProvider.GetTimestamp());
        return Lease.Acquired;
    }

    private long Reserve(long now, int permitCount)
    {
        var start = Math.Max(now, Math.Max(_nextFree, _pausedUntil));
        _nextFree = _rate > 0 ? start + ToTicks(TimeSpan.FromSeconds(permitCount / _rate)) : start;
        return start;
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _timeProvider.TimestampFrequency);

    private sealed class Lease(bool acquired) : RateLimitLease
    {
        public static readonly Lease Acquired = new(true);
        public static readonly Lease Rejected = new(false);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
