using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Steering;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>The Pub/Sub knobs of <c>POST /_sandbox/pubsub</c>: validated first, then applied, so a bad request changes nothing.</summary>
internal static class PubSubSteering
{
    public static void Apply(SalesforceSandbox sandbox, JsonObject body)
    {
        SteeringKnobs.RejectUnknown(body, "", "gap", "gapNext", "overflow", "overflowThreshold", "dropStreams", "retentionSeconds", "changeDataCapture");
        (List<string> Ids, string ChangeType)? gap = null;
        if (body["gap"] is { } g)
        {
            if (g is not JsonObject gapKnob || gapKnob["recordIds"] is not JsonArray { Count: > 0 } ids)
            {
                throw new SteeringException("gap: expected an object {\"recordIds\": [\"001...\"], \"changeType\": \"GAP_UPDATE\"}.");
            }

            SteeringKnobs.RejectUnknown(gapKnob, "gap.", "recordIds", "changeType");
            var recordIds = ids.Select((id, i) => SteeringKnobs.Text(id, $"gap.recordIds[{i}]") ?? throw new SteeringException($"gap.recordIds[{i}]: expected an Id.")).ToList();
            if (recordIds.Select(id => SObjectSchema.ForId(id)).Distinct().ToList() is not [{ }])
            {
                throw new SteeringException("gap.recordIds: expected Ids of one object the sandbox holds (Account 001, Contact 003, Opportunity 006).");
            }

            var changeType = SteeringKnobs.Text(gapKnob["changeType"], "gap.changeType") ?? "GAP_UPDATE";
            if (!changeType.StartsWith("GAP_", StringComparison.Ordinal) || changeType == "GAP_OVERFLOW" || !ChangeEventSchema.ChangeTypes.Contains(changeType))
            {
                throw new SteeringException($"gap.changeType: '{changeType}' is not one of GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE.");
            }

            gap = (recordIds, changeType);
        }

        var gapNext = body["gapNext"] is { } gn ? (int)SteeringKnobs.Number(gn, "gapNext", 0, 1_000_000) : (int?)null;
        string? overflow = null;
        if (body["overflow"] is { } o)
        {
            if (o is not JsonObject overflowKnob)
            {
                throw new SteeringException("overflow: expected an object {\"object\": \"Account\"}.");
            }

            SteeringKnobs.RejectUnknown(overflowKnob, "overflow.", "object");
            var name = SteeringKnobs.Text(overflowKnob["object"], "overflow.object");
            overflow = (name is null ? null : SObjectSchema.All.GetValueOrDefault(name))?.Name
                ?? throw new SteeringException($"overflow.object: expected one of {string.Join(", ", SObjectSchema.All.Keys)}.");
        }

        var threshold = body["overflowThreshold"] is { } ot ? (int)SteeringKnobs.Number(ot, "overflowThreshold", 1, 100_000) : (int?)null;
        var drop = body["dropStreams"] is { } d && SteeringKnobs.Bool(d, "dropStreams");
        var retention = body["retentionSeconds"] is { } r ? TimeSpan.FromSeconds(SteeringKnobs.Number(r, "retentionSeconds", 0, 30 * 86_400)) : (TimeSpan?)null;
        List<string>? enabled = null;
        var setEnabled = body.ContainsKey("changeDataCapture");
        if (body["changeDataCapture"] is { } c)
        {
            if (c is not JsonArray objects)
            {
                throw new SteeringException("changeDataCapture: expected an array of object names, or null for all.");
            }

            enabled = [.. objects.Select((n, i) => SteeringKnobs.Text(n, $"changeDataCapture[{i}]") ?? throw new SteeringException($"changeDataCapture[{i}]: expected an object name."))];
            foreach (var name in enabled.Where(n => !SObjectSchema.All.ContainsKey(n)))
            {
                throw new SteeringException($"changeDataCapture: '{name}' is not one of {string.Join(", ", SObjectSchema.All.Keys)}.");
            }
        }

        var bus = sandbox.ChangeEvents;
        if (setEnabled)
        {
            bus.SetEnabledObjects(enabled);
        }

        if (retention is { } retentionValue)
        {
            bus.Log.Retention = retentionValue;
        }

        if (threshold is { } thresholdValue)
        {
            bus.OverflowThreshold = thresholdValue;
        }

        if (gapNext is { } next)
        {
            bus.GapNext(next);
        }

        if (gap is { } gapValue)
        {
            sandbox.EmitGapEvent(gapValue.Ids, gapValue.ChangeType);
        }

        if (overflow is not null)
        {
            bus.PublishOverflow(overflow);
        }

        if (drop)
        {
            bus.DropStreams();
        }
    }

    public static JsonObject State(SalesforceSandbox sandbox)
    {
        var bus = sandbox.ChangeEvents;
        return new JsonObject
        {
            ["endpoint"] = sandbox.PubSubEndpoint,
            ["certificate"] = sandbox.PubSubCertificatePath,
            ["lastReplayId"] = bus.Log.LastReplayId,
            ["retainedEvents"] = bus.Log.Count,
            ["retentionSeconds"] = bus.Log.Retention.TotalSeconds,
            ["overflowThreshold"] = bus.OverflowThreshold,
            ["changeDataCapture"] = new JsonArray([.. bus.EnabledObjects.Select(n => (JsonNode?)JsonValue.Create(n))]),
            ["subscriptions"] = new JsonArray([.. bus.Subscriptions.TakeLast(20).Select(s => (JsonNode?)new JsonObject
            {
                ["topic"] = s.Topic,
                ["replayPreset"] = s.ReplayPreset,
                ["replayId"] = s.ReplayId,
                ["eventsDelivered"] = s.EventsDelivered,
            })]),
        };
    }
}
