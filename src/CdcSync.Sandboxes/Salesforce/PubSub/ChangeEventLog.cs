namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>One event on the bus: its position (replay id), its object, its schema and Avro payload.</summary>
internal sealed record BusEvent(long ReplayId, string EventName, string EventId, string SchemaId, byte[] Payload, DateTimeOffset PublishedAt);

/// <summary>
/// The sandbox's event bus, in memory: change events in commit order with replay ids that only go
/// up, kept for the retention window (72 hours by default, as Salesforce keeps change events) and
/// at most <see cref="Capacity"/> of them. Subscribers wait on it for new events.
/// </summary>
internal sealed class ChangeEventLog(TimeProvider timeProvider)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<BusEvent> _events = new();
    private readonly List<SemaphoreSlim> _waiters = [];
    private long _lastReplayId;
    private TimeSpan _retention = TimeSpan.FromHours(72);

    public int Capacity { get; init; } = 100_000;

    /// <summary>How long events stay replayable.</summary>
    public TimeSpan Retention
    {
        get { lock (_lock) { return _retention; } }
        set { lock (_lock) { _retention = value; Purge(); } }
    }

    /// <summary>The replay id of the newest event ever published (0 before the first).</summary>
    public long LastReplayId
    {
        get { lock (_lock) { return _lastReplayId; } }
    }

    /// <summary>Events still retained.</summary>
    public int Count
    {
        get { lock (_lock) { Purge(); return _events.Count; } }
    }

    public BusEvent Append(string eventName, string schemaId, byte[] payload)
    {
        BusEvent appended;
        SemaphoreSlim[] waiters;
        lock (_lock)
        {
            appended = new BusEvent(++_lastReplayId, eventName, Guid.NewGuid().ToString(), schemaId, payload, timeProvider.GetUtcNow());
            _events.AddLast(appended);
            Purge();
            waiters = [.. _waiters];
        }

        foreach (var waiter in waiters)
        {
            Wake(waiter);
        }

        return appended;
    }

    /// <summary>
    /// Whether a subscription may start after <paramref name="replayId"/>: the event it names is still
    /// retained, or it is the newest position (nothing after it can have been purged).
    /// </summary>
    public bool CanResumeAfter(long replayId)
    {
        lock (_lock)
        {
            Purge();
            if (replayId > _lastReplayId || replayId < 0)
            {
                return false;
            }

            return replayId == _lastReplayId || (_events.First is { } first && replayId >= first.Value.ReplayId);
        }
    }

    /// <summary>The position before the oldest retained event (where EARLIEST starts).</summary>
    public long EarliestPosition
    {
        get
        {
            lock (_lock)
            {
                Purge();
                return _events.First is { } first ? first.Value.ReplayId - 1 : _lastReplayId;
            }
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> retained events after <paramref name="after"/> that
    /// <paramref name="matches"/>, and the position reached: past the last returned event, or past
    /// every event looked at when fewer matched.
    /// </summary>
    public (IReadOnlyList<BusEvent> Events, long Position) Read(long after, int max, Func<BusEvent, bool> matches)
    {
        lock (_lock)
        {
            Purge();
            var found = new List<BusEvent>();
            var position = after;
            for (var node = _events.Last; node is not null && node.Value.ReplayId > after; node = node.Previous)
            {
                if (node.Previous is null || node.Previous.Value.ReplayId <= after)
                {
                    // node is the first event after the position; walk forward from here.
                    for (var current = node; current is not null && found.Count < max; current = current.Next)
                    {
                        position = current.Value.ReplayId;
                        if (matches(current.Value))
                        {
                            found.Add(current.Value);
                        }
                    }

                    break;
                }
            }

            if (found.Count < max)
            {
                position = Math.Max(position, _lastReplayId);
            }

            return (found, position);
        }
    }

    /// <summary>Registers a semaphore released on every append, until the returned handle is disposed.</summary>
    public IDisposable Watch(SemaphoreSlim waiter)
    {
        lock (_lock)
        {
            _waiters.Add(waiter);
        }

        return new Unwatch(this, waiter);
    }

    public void Clear()
    {
        lock (_lock)
        {
            _events.Clear();
        }
    }

    internal static void Wake(SemaphoreSlim waiter)
    {
        // At most one pending wake-up: the waiter rereads everything when it runs.
        if (waiter.CurrentCount == 0)
        {
            try
            {
                waiter.Release();
            }
            catch (SemaphoreFullException)
            {
                // Released concurrently: already awake.
            }
        }
    }

    private void Purge()
    {
        var oldest = timeProvider.GetUtcNow() - _retention;
        while (_events.First is { } first && (first.Value.PublishedAt < oldest || _events.Count > Capacity))
        {
            _events.RemoveFirst();
        }
    }

    private sealed class Unwatch(ChangeEventLog log, SemaphoreSlim waiter) : IDisposable
    {
        public void Dispose()
        {
            lock (log._lock)
            {
                log._waiters.Remove(waiter);
            }
        }
    }
}
