using System.Text.Json.Nodes;
using CdcSync.Hub;
using Prometheus;

namespace CdcSync.Connectors.Http;

/// <summary>
/// The outbound precondition: before an update writes fields of a record the system already knows,
/// the connector reads what the system holds now and the hub names the fields whose current value
/// differs from the sync base (<c>cdc.outbound_held_fields</c>). Such a field was edited in the system
/// since it was last read from or written to it; writing it would overwrite that edit before the hub
/// ever saw it. It is held back and decided at once (<see cref="HubGateway.DecideHeldFieldsAsync"/>): the system's value
/// goes through the inbound path, the triggers detect the conflict and the policy decides; if the
/// hub's value wins, it is written in the same batch, against the base the decision set.
/// </summary>
internal static class OutboundPreconditions
{
    private static readonly Counter Held = Metrics.CreateCounter(
        "cdcsync_outbound_fields_held_total",
        "Fields an outbound update did not write because the system changed them since the last sync (the inbound poll brings the edit in and the conflict policy decides).",
        "connector", "table");

    private static readonly Counter Superseded = Metrics.CreateCounter(
        "cdcsync_outbound_fields_superseded_total",
        "Fields an outbound update did not write because the hub no longer held the value (a newer change of the field, or the system's own newer edit, had arrived since).",
        "connector", "table");

    /// <summary>
    /// The fields not to write (<c>cdc.outbound_skipped_fields</c>), as (hub key, column):
    /// <c>Superseded</c>, the hub no longer holds the value being written (never write an older value
    /// over a newer one); <c>Held</c>, the system changed the field since the last sync (to decide
    /// with <see cref="HubGateway.DecideHeldFieldsAsync"/>). <paramref name="written"/>: per hub key, the columns about to be
    /// written with their values (the "after" of the write's changes); <paramref name="current"/>: per
    /// hub key, the values the system holds now for those columns, as the system returned them.
    /// </summary>
    public static async Task<(HashSet<(string Key, string Column)> Held, HashSet<(string Key, string Column)> Superseded)> CheckAsync(
        HubGateway hub, string connector, string table, IReadOnlyDictionary<string, JsonObject> written, IReadOnlyDictionary<string, JsonObject> current, CancellationToken cancellationToken)
    {
        var held = new HashSet<(string, string)>();
        var superseded = new HashSet<(string, string)>();
        foreach (var (key, column, reason) in await hub.SkippedFieldsAsync(connector, table, written, current, cancellationToken))
        {
            (reason == "superseded" ? superseded : held).Add((key, column));
        }

        if (held.Count > 0)
        {
            Held.WithLabels(connector, table).Inc(held.Count);
        }

        if (superseded.Count > 0)
        {
            Superseded.WithLabels(connector, table).Inc(superseded.Count);
        }

        return (held, superseded);
    }

    /// <summary>The "after" values of a write's changes document, per column.</summary>
    public static JsonObject Written(JsonObject changes)
    {
        var values = new JsonObject();
        foreach (var (column, change) in changes)
        {
            values[column] = change?["after"]?.DeepClone();
        }

        return values;
    }
}
