namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>
/// A clock the test moves: timers fire only when the test advances to them, so a poller's waits
/// (hours of simulated idling) take no wall-clock time and nothing depends on the machine's speed.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    /// <summary>Timers armed and not yet fired.</summary>
    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _timers.Count(t => t.Due is not null);
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock to the earliest armed timer and fires it; returns how far the clock moved.</summary>
    public TimeSpan AdvanceToNextTimer()
    {
        ManualTimer next;
        TimeSpan step;
        lock (_gate)
        {
            next = _timers.Where(t => t.Due is not null).MinBy(t => t.Due) ?? throw new InvalidOperationException("No timer is armed.");
            step = next.Due!.Value > _now ? next.Due.Value - _now : TimeSpan.Zero;
            _now += step;
            next.Due = null;
        }

        next.Fire();
        return step;
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + dueTime;
                if (!owner._timers.Contains(this))
                {
                    owner._timers.Add(this);
                }
            }

            return true;
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
