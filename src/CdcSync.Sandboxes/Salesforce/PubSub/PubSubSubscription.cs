namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// One Subscribe call as the sandbox took it: the topic, the replay preset and replay id of its first
/// FetchRequest, and how many events it delivered, so a test (or an operator at
/// <c>POST /_sandbox/pubsub</c>) can see where a client resumed and what it read again.
/// </summary>
public sealed class PubSubSubscription(string topic, string replayPreset, long? replayId)
{
    private long _eventsDelivered;
    private long _firstDelivered;

    public string Topic { get; } = topic;

    /// <summary>LATEST, EARLIEST or CUSTOM.</summary>
    public string ReplayPreset { get; } = replayPreset;

    /// <summary>The replay id a CUSTOM subscription resumed after (the sandbox's replay ids are 8-byte big-endian counters); null otherwise.</summary>
    public long? ReplayId { get; } = replayId;

    /// <summary>Events sent on this subscription so far.</summary>
    public long EventsDelivered => Interlocked.Read(ref _eventsDelivered);

    /// <summary>The replay id of the first event sent on this subscription; null before any.</summary>
    public long? FirstDeliveredReplayId => Interlocked.Read(ref _firstDelivered) is var first and > 0 ? first : null;

    internal void Delivered(long firstReplayId, int count)
    {
        Interlocked.CompareExchange(ref _firstDelivered, firstReplayId, 0);
        Interlocked.Add(ref _eventsDelivered, count);
    }
}
