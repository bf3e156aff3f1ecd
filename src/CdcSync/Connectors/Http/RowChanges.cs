using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Hub;
using CdcSync.Replication;

namespace CdcSync.Connectors.Http;

/// <summary>
/// What an outbound change actually changed. Staging tables are REPLICA IDENTITY FULL, so an update
/// carries the old row: comparing it with the new one column by column (in the wire format, both
/// rows come in the same format) tells which fields the system has to be sent. Sending only those
/// keeps a stale hub value from overwriting a newer edit made meanwhile in the target system.
/// </summary>
internal static class RowChanges
{
    /// <summary>Columns to send: the changed ones for an update, every non-null one for an insert, none for a delete.</summary>
    public static HashSet<string> ChangedColumns(ChangeEvent change)
    {
        var relation = change.Relation;
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (change.New is not { } row || change.Kind == ChangeKind.Delete)
        {
            return result;
        }

        for (var i = 0; i < relation.Columns.Count; i++)
        {
            if (row.IsUnchanged(i))
            {
                continue; // an untouched TOASTed value
            }

            if (change.Kind == ChangeKind.Insert)
            {
                if (!row.IsNull(i))
                {
                    result.Add(relation.Columns[i].Name);
                }

                continue;
            }

            // Without the old row (REPLICA IDENTITY DEFAULT) every sent column counts as changed.
            if (change.Old is not { } old || i >= old.Count || old.IsUnchanged(i)
                || old.KindAt(i) != row.KindAt(i) || !old.RawAt(i).SequenceEqual(row.RawAt(i)))
            {
                result.Add(relation.Columns[i].Name);
            }
        }

        return result;
    }

    /// <summary>A column's value in the row (falling back to the old row for unchanged TOAST), or null when absent.</summary>
    public static object? Value(ChangeEvent change, string column)
    {
        var relation = change.Relation;
        if (!relation.TryGetOrdinal(column, out var ordinal))
        {
            return null;
        }

        foreach (var row in change.Kind == ChangeKind.Delete ? [change.Old, change.New] : new[] { change.New, change.Old })
        {
            if (row is not null && ordinal < row.Count && !row.IsUnchanged(ordinal))
            {
                return row.GetValue(relation, ordinal);
            }
        }

        return null;
    }

    /// <summary>A column's value in the old row, or null when there is none.</summary>
    public static object? OldValue(ChangeEvent change, string column) =>
        change.Old is { } old && change.Relation.TryGetOrdinal(column, out var i) && i < old.Count && !old.IsUnchanged(i)
            ? old.GetValue(change.Relation, i)
            : null;

    public static string? Text(ChangeEvent change, string column) => HubSql.ToText(Value(change, column));

    /// <summary>
    /// A hub value as JSON the way <c>to_jsonb</c> renders it (what <c>cdc.sync_base</c> stores): json
    /// and jsonb columns as their document, numbers as numbers, timestamps as ISO strings.
    /// </summary>
    public static JsonNode? ToJson(ChangeEvent change, string column, object? value)
    {
        if (value is null)
        {
            return null;
        }

        if (change.Relation.TryGetOrdinal(column, out var i) && change.Relation.Columns[i].TypeOid is 114 or 3802 && value is string json)
        {
            return JsonNode.Parse(json);
        }

        return value switch
        {
            string s => JsonValue.Create(s),
            bool b => JsonValue.Create(b),
            short or int or long => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
            decimal d => JsonValue.Create(d),
            float or double => JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            DateTime dt => JsonValue.Create(dt.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture) + (dt.Kind == DateTimeKind.Utc ? "+00:00" : string.Empty)),
            DateTimeOffset dto => JsonValue.Create(dto.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFzzz", CultureInfo.InvariantCulture)),
            DateOnly d => JsonValue.Create(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            _ => JsonValue.Create(HubSql.ToText(value)),
        };
    }

    /// <summary>The <c>{"field": {"before": .., "after": ..}}</c> document <c>cdc.record_outbound</c> takes, for the given columns.</summary>
    public static JsonObject Changes(ChangeEvent change, IEnumerable<string> columns)
    {
        var result = new JsonObject();
        foreach (var column in columns)
        {
            result[column] = new JsonObject
            {
                ["before"] = ToJson(change, column, OldValue(change, column)),
                ["after"] = ToJson(change, column, Value(change, column)),
            };
        }

        return result;
    }
}
