using CdcSync.Connectors.Http;

namespace CdcSync.Tests.Resilience;

/// <summary>Additive increase, multiplicative decrease, and a pause every caller honours after a throttling answer.</summary>
public sealed class AdaptiveRateLimiterTests
{
    [Fact]
    public void Throttled_HalvesTheRate_NotBelowASixtyFourth_SuccessesClimbBackByATwentieth()
    {
        using var limiter = new AdaptiveRateLimiter(64, TimeSpan.FromSeconds(1), TimeProvider.System);

        limiter.OnThrottled(TimeSpan.Zero);
        Assert.Equal(32, limiter.CurrentRate);
        for (var i = 0; i < 10; i++)
        {
            limiter.OnThrottled(TimeSpan.Zero);
        }

        Assert.Equal(1, limiter.CurrentRate);
        Assert.Equal(11, limiter.ThrottleCount);

        limiter.OnSuccess();
        Assert.Equal(1 + 3.2, limiter.CurrentRate, 6);
        for (var i = 0; i < 100; i++)
        {
            limiter.OnSuccess();
        }

        Assert.Equal(64, limiter.CurrentRate);
    }

    [Fact]
    public void RetryAfter_PausesEveryCaller_UntilItPasses()
    {
        using var limiter = new AdaptiveRateLimiter(0, TimeSpan.FromSeconds(1), TimeProvider.System);
        using (var first = limiter.AttemptAcquire())
        {
            Assert.True(first.IsAcquired);      // rate 0 = unlimited
        }

        limiter.OnThrottled(TimeSpan.FromHours(1));
        using var paused = limiter.AttemptAcquire();
        Assert.False(paused.IsAcquired);
        Assert.Equal(0, limiter.CurrentRate);   // an unlimited limiter stays unlimited, but pauses
    }
}
