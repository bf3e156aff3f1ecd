using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Prometheus;

namespace CdcSync.Connectors.Http;

/// <summary>
/// The outbound precondition: before an update writes fields of a record the system already knows,
/// the connector reads what the system holds now and the hub names the fields whose current value
/// differs from the sync base (<c>cdc.outbound_held_fields</c>). Such a field was edited in the system
/// since it was last read from or written to it; writing it would overwrite that edit before the hub
/// ever saw it. It is held back: the next inbound poll reads the edit (its value differs from the
/// base, so the poll cannot drop it as already applied), the triggers detect the conflict and the
/// policy decides; if the hub's value wins, the decision flows out again against a matching base.
/// </summary>
internal static class OutboundPreconditions
{
    private static readonly Counter Held = Metrics.CreateCounter(
        "cdcsync_outbound_fields_held_total",
        "Fields an outbound update did not write because the system changed them since the last sync (the inbound poll brings the edit in and the conflict policy decides).",
        "connector", "table");

    /// <summary>
    /// The fields not to write, as (hub key, column). <paramref name="current"/>: per hub key, the
    /// columns about to be written with the values the system holds now, as the system returned them.
    /// </summary>
    public static async Task<HashSet<(string Key, string Column)>> HeldAsync(
        NpgsqlDataSource hub, string connector, string table, IReadOnlyDictionary<string, JsonObject> current, CancellationToken cancellationToken)
    {
        var held = new HashSet<(string, string)>();
        if (current.Count == 0)
        {
            return held;
        }

        var document = new JsonObject();
        foreach (var (key, values) in current)
        {
            document[key] = values.DeepClone();
        }

        await using var cmd = hub.CreateCommand("SELECT record_key, field FROM cdc.outbound_held_fields($1, $2)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        cmd.Parameters.Add(new NpgsqlParameter { Value = document.ToJsonString(), NpgsqlDbType = NpgsqlDbType.Jsonb });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            held.Add((reader.GetString(0), reader.GetString(1)));
        }

        if (held.Count > 0)
        {
            Held.WithLabels(connector, table).Inc(held.Count);
        }

        return held;
    }
}
