namespace CdcSync.Inbound;

/// <summary>
/// What a change stream and its poller share: whether the stream is up (the poller slows to the
/// safety interval) and catch-up requests (the poller scans now, and the request completes when a
/// scan that began after it has read everything).
/// </summary>
public sealed class ChangeStreamLink(Action<bool>? onUpChanged = null)
{
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly List<(long Generation, TaskCompletionSource Done)> _waiting = [];
    private long _requested;
    private long _completed;
    private volatile bool _up;

    /// <summary>The stream is subscribed and applying events.</summary>
    public bool IsUp => _up;

    /// <summary>Catch-ups requested and not yet served by a completed scan.</summary>
    public bool CatchUpPending
    {
        get
        {
            lock (_lock)
            {
                return _requested > _completed;
            }
        }
    }

    public void SetUp(bool up)
    {
        if (_up == up)
        {
            return;
        }

        _up = up;
        onUpChanged?.Invoke(up);
        _wake.Release(); // the poller re-reads its interval: fast again when the stream went down
    }

    /// <summary>Asks the poller for a full scan and waits until one that began after this call has finished.</summary>
    public Task CatchUpAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _waiting.Add((++_requested, done));
        }

        _wake.Release();
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>The poller: a scan begins; returns the request generation it serves.</summary>
    public long BeginScan()
    {
        lock (_lock)
        {
            return _requested;
        }
    }

    /// <summary>The poller: the scan begun at <paramref name="generation"/> has read everything.</summary>
    public void EndScan(long generation)
    {
        List<TaskCompletionSource> done;
        lock (_lock)
        {
            _completed = Math.Max(_completed, generation);
            done = _waiting.Where(w => w.Generation <= _completed).Select(w => w.Done).ToList();
            _waiting.RemoveAll(w => w.Generation <= _completed);
        }

        foreach (var d in done)
        {
            d.TrySetResult();
        }
    }

    /// <summary>The poller's wait between polls, cut short by a catch-up request or the stream going up or down.</summary>
    public async Task WaitAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delayTask = Task.Delay(delay, time, linked.Token);
        var wakeTask = _wake.WaitAsync(linked.Token);
        await Task.WhenAny(delayTask, wakeTask);
        await linked.CancelAsync();
        cancellationToken.ThrowIfCancellationRequested();
        // Drain extra wake-ups: one look at the state serves them all.
        while (_wake.CurrentCount > 0 && _wake.Wait(0, CancellationToken.None))
        {
        }
    }
}
