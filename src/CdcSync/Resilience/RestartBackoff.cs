namespace CdcSync.Resilience;

/// <summary>
/// Capped exponential backoff with full jitter that starts over once the worker has been healthy
/// for a while: a short restart long after an earlier one waits the initial delay, not the cap.
/// </summary>
internal sealed class RestartBackoff(TimeSpan initial, TimeSpan max, TimeSpan healthyPeriod, TimeProvider time, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private DateTimeOffset? _healthySince;

    /// <summary>Failures since the last healthy period.</summary>
    public int Attempt { get; private set; }

    /// <summary>The worker is running normally from now; enough of that resets the backoff.</summary>
    public void MarkHealthy() => _healthySince ??= time.GetUtcNow();

    /// <summary>A failure: the delay before the next attempt.</summary>
    public TimeSpan Next()
    {
        if (_healthySince is { } since && time.GetUtcNow() - since >= healthyPeriod)
        {
            Attempt = 0;
        }

        _healthySince = null;
        var ceiling = Ceiling(Attempt);
        Attempt++;
        // Jitter between half the ceiling and the ceiling: workers restarted by the same outage spread out, none waits longer than the cap.
        return TimeSpan.FromTicks(ceiling.Ticks / 2 + (long)(_random.NextDouble() * (ceiling.Ticks / 2)));
    }

    private TimeSpan Ceiling(int attempt)
    {
        var ticks = initial.Ticks;
        for (var i = 0; i < attempt && ticks < max.Ticks; i++)
        {
            ticks *= 2;
        }

        return TimeSpan.FromTicks(Math.Min(ticks, max.Ticks));
    }
}
