using System.Buffers;
using System.Globalization;
using System.Text.Json;
using CdcSync.Replication;

namespace CdcSync.Connectors.Webhook;

/// <summary>
/// One change event as the receiver sees it:
/// <c>{"id", "table", "operation", "key", "new", "old", "commitLsn", "commitTime", "origin"}</c>.
/// <c>id</c> is <see cref="ChangeEvent.IdempotencyKey"/> (commit LSN / position), stable across redeliveries.
/// </summary>
internal static class WebhookEventSerializer
{
    public static byte[] Serialize(ChangeEvent change)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", change.IdempotencyKey);
            w.WriteString("table", change.Relation.QualifiedName);
            w.WriteString("operation", change.Kind.ToString().ToLowerInvariant());
            w.WritePropertyName("key");
            WriteRow(w, change.Relation, change.Key, keyOnly: true);
            w.WritePropertyName("new");
            WriteRow(w, change.Relation, change.New, keyOnly: false);
            w.WritePropertyName("old");
            WriteRow(w, change.Relation, change.Old, keyOnly: false);
            w.WriteString("commitLsn", change.Transaction.CommitLsn.ToString());
            w.WriteString("commitTime", change.Transaction.CommitTimeUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
            if (change.Transaction.Origin is { } origin)
            {
                w.WriteString("origin", origin);
            }
            else
            {
                w.WriteNull("origin");
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteRow(Utf8JsonWriter w, RelationInfo relation, RowValues? row, bool keyOnly)
    {
        if (row is null)
        {
            w.WriteNullValue();
            return;
        }

        var anyKey = relation.Columns.Any(c => c.IsKey);
        w.WriteStartObject();
        for (var i = 0; i < relation.Columns.Count && i < row.Count; i++)
        {
            var column = relation.Columns[i];
            if ((keyOnly && anyKey && !column.IsKey) || row.IsUnchanged(i))
            {
                continue; // An unchanged TOAST value was not sent; leaving it out says "not changed".
            }

            w.WritePropertyName(column.Name);
            WriteValue(w, relation, row, i);
        }

        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, RelationInfo relation, RowValues row, int ordinal)
    {
        object? value;
        try
        {
            value = row.GetValue(relation, ordinal);
        }
        catch (NotSupportedException)
        {
            // A type the decoder does not know: hand over its bytes rather than stall the stream.
            w.WriteBase64StringValue(row.RawAt(ordinal));
            return;
        }

        switch (value)
        {
            case null:
                w.WriteNullValue();
                break;
            case string s when relation.Columns[ordinal].TypeOid is 114 or 3802:
                using (var doc = JsonDocument.Parse(s))
                {
                    doc.WriteTo(w);
                }

                break;
            case DateTime d:
                w.WriteStringValue(d.Kind == DateTimeKind.Utc
                    ? d.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture)
                    : d.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff", CultureInfo.InvariantCulture));
                break;
            case double or float when !double.IsFinite(Convert.ToDouble(value, CultureInfo.InvariantCulture)):
                w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
            default:
                JsonSerializer.Serialize(w, value, value.GetType());
                break;
        }
    }
}
