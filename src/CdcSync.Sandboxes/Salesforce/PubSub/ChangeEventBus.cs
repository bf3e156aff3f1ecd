using System.Globalization;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// Change Data Capture in the sandbox: turns each committed change of a record into a change event
/// on <see cref="ChangeEventLog"/> (one per record, in commit order, a transaction's events sharing
/// its transactionKey and commitNumber), for the objects selected for change notifications. Also
/// the steering of the Pub/Sub side: gap and overflow events, dropping open streams.
/// </summary>
internal sealed class ChangeEventBus
{
    /// <summary>The standard channel carrying every selected object's change events.</summary>
    public const string AllChangeEventsTopic = "/data/ChangeEvents";

    private readonly Lock _lock = new();
    private readonly TimeProvider _timeProvider;
    private readonly string _commitUser;
    private HashSet<string> _enabled;
    private long _commitNumber = 10_000_000;
    private int _gapNext;
    private int _overflowThreshold = 100_000;
    private CancellationTokenSource _streams = new();
    private readonly List<PubSubSubscription> _subscriptions = [];

    public ChangeEventBus(TimeProvider timeProvider, string commitUser, IEnumerable<string>? enabledObjects)
    {
        _timeProvider = timeProvider;
        _commitUser = commitUser;
        Log = new ChangeEventLog(timeProvider);
        Schemas = SObjectSchema.All.Values.ToDictionary(s => s.Name, ChangeEventSchema.For, StringComparer.OrdinalIgnoreCase);
        _enabled = Enabled(enabledObjects);
    }

    public ChangeEventLog Log { get; }

    public IReadOnlyDictionary<string, ChangeEventSchema> Schemas { get; }

    /// <summary>Objects selected for change notifications (PlatformEventChannelMember of ChangeEvents), by name.</summary>
    public IReadOnlyList<string> EnabledObjects
    {
        get { lock (_lock) { return [.. _enabled.Order(StringComparer.Ordinal)]; } }
    }

    /// <summary>The newest Subscribe calls (at most <see cref="SubscriptionsKept"/>), oldest first.</summary>
    public IReadOnlyList<PubSubSubscription> Subscriptions
    {
        get { lock (_lock) { return [.. _subscriptions]; } }
    }

    public const int SubscriptionsKept = 100;

    /// <summary>Records a Subscribe call once its first FetchRequest is accepted.</summary>
    public PubSubSubscription Subscribed(string topic, string replayPreset, long? replayId)
    {
        var subscription = new PubSubSubscription(topic, replayPreset, replayId);
        lock (_lock)
        {
            _subscriptions.Add(subscription);
            if (_subscriptions.Count > SubscriptionsKept)
            {
                _subscriptions.RemoveAt(0);
            }
        }

        return subscription;
    }

    /// <summary>Cancelled when the open Subscribe streams are dropped (a knob); replaced after.</summary>
    public CancellationToken StreamsToken
    {
        get { lock (_lock) { return _streams.Token; } }
    }

    public void SetEnabledObjects(IEnumerable<string>? objects)
    {
        var enabled = Enabled(objects);
        lock (_lock)
        {
            _enabled = enabled;
        }
    }

    public bool IsEnabled(string sObject)
    {
        lock (_lock)
        {
            return _enabled.Contains(sObject);
        }
    }

    /// <summary>The schema behind a topic name, for topics of selected objects; null otherwise.</summary>
    public ChangeEventSchema? SchemaOfTopic(string topicName) =>
        Schemas.Values.FirstOrDefault(s => s.TopicName == topicName && IsEnabled(s.SObject.Name));

    public bool IsTopic(string topicName) => topicName == AllChangeEventsTopic || SchemaOfTopic(topicName) is not null;

    /// <summary>The next <paramref name="count"/> committed changes publish gap events (GAP_CREATE, ...) instead of change events.</summary>
    public void GapNext(int count)
    {
        lock (_lock)
        {
            _gapNext = count;
        }
    }

    /// <summary>Changes per transaction past which the rest become one GAP_OVERFLOW event per object (Salesforce: 100,000).</summary>
    public int OverflowThreshold
    {
        get { lock (_lock) { return _overflowThreshold; } }
        set { lock (_lock) { _overflowThreshold = value; } }
    }

    /// <summary>Back to Salesforce's behaviour: no pending gap events, the 100,000-change overflow threshold.</summary>
    public void ResetKnobs()
    {
        lock (_lock)
        {
            _gapNext = 0;
            _overflowThreshold = 100_000;
        }
    }

    /// <summary>Ends every open Subscribe stream with UNAVAILABLE, as a dropped connection.</summary>
    public void DropStreams()
    {
        CancellationTokenSource old;
        lock (_lock)
        {
            old = _streams;
            _streams = new CancellationTokenSource();
        }

        // Not disposed: a stream starting now may still link to its token.
        old.Cancel();
    }

    /// <summary>
    /// Publishes the events of one committed transaction. <paramref name="changeOrigin"/> is empty for
    /// a user's edit, else <c>com/salesforce/api/rest/61.0[;client=id]</c>. Call under the store's lock,
    /// so events are in commit order.
    /// </summary>
    public void Publish(IReadOnlyList<RecordChange> changes, string changeOrigin)
    {
        var selected = changes.Where(c => IsEnabled(c.After.Schema.Name)).ToList();
        if (selected.Count == 0)
        {
            return;
        }

        long commitNumber;
        int overflowThreshold;
        lock (_lock)
        {
            commitNumber = ++_commitNumber;
            overflowThreshold = _overflowThreshold;
        }

        var transactionKey = Guid.NewGuid().ToString("D").ToLowerInvariant();
        var sequence = 0;
        foreach (var change in selected.Take(overflowThreshold))
        {
            bool gap;
            lock (_lock)
            {
                gap = _gapNext > 0;
                if (gap)
                {
                    _gapNext--;
                }
            }

            PublishChange(change, changeOrigin, transactionKey, ++sequence, commitNumber, gap);
        }

        foreach (var entity in selected.Skip(overflowThreshold).Select(c => c.After.Schema.Name).Distinct())
        {
            PublishHeaderOnly(entity, [], "GAP_OVERFLOW", changeOrigin, transactionKey, ++sequence, commitNumber, _timeProvider.GetUtcNow());
        }
    }

    /// <summary>Publishes a gap event for records now (a knob), as when Salesforce cannot build a change's event.</summary>
    public void PublishGap(string sObject, IReadOnlyList<string> recordIds, string changeType)
    {
        lock (_lock)
        {
            ++_commitNumber;
        }

        PublishHeaderOnly(sObject, recordIds, changeType, string.Empty, Guid.NewGuid().ToString("D"), 1, CommitNumber, _timeProvider.GetUtcNow());
    }

    /// <summary>Publishes an overflow event for an object now (a knob).</summary>
    public void PublishOverflow(string sObject)
    {
        lock (_lock)
        {
            ++_commitNumber;
        }

        PublishHeaderOnly(sObject, [], "GAP_OVERFLOW", string.Empty, Guid.NewGuid().ToString("D"), 1, CommitNumber, _timeProvider.GetUtcNow());
    }

    private long CommitNumber
    {
        get { lock (_lock) { return _commitNumber; } }
    }

    private void PublishChange(RecordChange change, string changeOrigin, string transactionKey, int sequence, long commitNumber, bool gap)
    {
        var after = change.After;
        var before = change.Before;
        var changeType = before is null ? "CREATE"
            : after.IsDeleted && !before.IsDeleted ? "DELETE"
            : !after.IsDeleted && before.IsDeleted ? "UNDELETE"
            : "UPDATE";
        var committed = after.Modstamp == default ? _timeProvider.GetUtcNow() : after.Modstamp;
        if (gap)
        {
            PublishHeaderOnly(after.Schema.Name, [after.Id], "GAP_" + changeType, changeOrigin, transactionKey, sequence, commitNumber, committed);
            return;
        }

        var schema = Schemas[after.Schema.Name];
        var values = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        IReadOnlyList<string> changedFields = [];
        IReadOnlyList<string> nulledFields = [];
        switch (changeType)
        {
            case "CREATE" or "UNDELETE":
                // Every field with a value; the rest stay null.
                foreach (var name in schema.EventFieldNames)
                {
                    if (after.Fields[name] is { } value)
                    {
                        values[name] = value;
                    }
                }

                break;
            case "UPDATE":
                // Only the changed fields carry values; changedFields names them, nulledFields those now null.
                // As Salesforce does, every update names LastModifiedDate, even one made in the same millisecond as the last.
                var changed = schema.EventFieldNames.Where(n => n == "LastModifiedDate" || !JsonNode.DeepEquals(before!.Fields[n], after.Fields[n])).ToList();
                foreach (var name in changed)
                {
                    values[name] = after.Fields[name];
                }

                changedFields = schema.Bitmap(changed);
                nulledFields = schema.Bitmap(changed.Where(n => after.Fields[n] is null));
                break;
        }

        var header = new ChangeEventHeader(after.Schema.Name, [after.Id], changeType, changeOrigin, transactionKey, sequence,
            committed.ToUnixTimeMilliseconds(), commitNumber, _commitUser, nulledFields, [], changedFields);
        Log.Append(schema.EventName, schema.SchemaId, schema.Encode(header, values));
    }

    private void PublishHeaderOnly(string sObject, IReadOnlyList<string> recordIds, string changeType, string changeOrigin, string transactionKey, int sequence, long commitNumber, DateTimeOffset committed)
    {
        var schema = Schemas[sObject];
        var header = new ChangeEventHeader(schema.SObject.Name, recordIds, changeType, changeOrigin, transactionKey, sequence,
            committed.ToUnixTimeMilliseconds(), commitNumber, _commitUser, [], [], []);
        Log.Append(schema.EventName, schema.SchemaId, schema.Encode(header, new Dictionary<string, JsonNode?>()));
    }

    private static HashSet<string> Enabled(IEnumerable<string>? objects)
    {
        if (objects is null)
        {
            return new HashSet<string>(SObjectSchema.All.Values.Select(s => s.Name), StringComparer.OrdinalIgnoreCase);
        }

        var enabled = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in objects)
        {
            var schema = SObjectSchema.All.GetValueOrDefault(name)
                ?? throw new Steering.SteeringException(string.Create(CultureInfo.InvariantCulture, $"changeDataCapture: '{name}' is not an object the sandbox holds ({string.Join(", ", SObjectSchema.All.Keys)})."));
            enabled.Add(schema.Name);
        }

        return enabled;
    }
}
