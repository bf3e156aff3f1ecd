using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Avro;
using Avro.Generic;
using Avro.IO;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>The header of a change event (Change Data Capture Developer Guide, "ChangeEventHeader Fields").</summary>
internal sealed record ChangeEventHeader(
    string EntityName,
    IReadOnlyList<string> RecordIds,
    string ChangeType,
    string ChangeOrigin,
    string TransactionKey,
    int SequenceNumber,
    long CommitTimestamp,
    long CommitNumber,
    string CommitUser,
    IReadOnlyList<string> NulledFields,
    IReadOnlyList<string> DiffFields,
    IReadOnlyList<string> ChangedFields);

/// <summary>
/// The Avro schema of one object's change event (<c>AccountChangeEvent</c>): the
/// <c>ChangeEventHeader</c> record first, then the object's fields as optional values in the order
/// the object has them, compound fields (addresses, a contact's name) as nested records, dates as
/// days and date-times as milliseconds since the epoch. Id, IsDeleted and SystemModstamp are not
/// in change events (the record ids are in the header). The schema id is the MD5 fingerprint of the
/// schema's Avro parsing canonical form, base64url-encoded, so it changes exactly when the schema does.
/// </summary>
internal sealed class ChangeEventSchema
{
    public static readonly string[] ChangeTypes =
        ["CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW", "SNAPSHOT"];

    private static readonly HashSet<string> NotInEvents = new(StringComparer.Ordinal) { "Id", "IsDeleted", "SystemModstamp" };

    private readonly Dictionary<string, (int Position, int? Nested)> _positions = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Slot> _slots = [];

    private ChangeEventSchema(SObjectSchema sObject)
    {
        SObject = sObject;
        var fields = new JsonArray { new JsonObject { ["name"] = "ChangeEventHeader", ["type"] = HeaderSchema(), ["doc"] = "Data:ChangeEventHeader" } };
        var definedRecords = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in sObject.Fields.Where(f => !NotInEvents.Contains(f.Name)))
        {
            if (field.Compound is null)
            {
                _positions[field.Name] = (_slots.Count + 1, null);
                _slots.Add(new Slot(field.Name, [field]));
                fields.Add(new JsonObject { ["name"] = field.Name, ["type"] = new JsonArray("null", AvroType(field)), ["doc"] = "Data:" + field.DescribeType, ["default"] = null });
                continue;
            }

            if (_slots.Any(s => s.Name == field.Compound))
            {
                continue;
            }

            var parts = sObject.Fields.Where(f => f.Compound == field.Compound).ToList();
            var position = _slots.Count + 1;
            for (var i = 0; i < parts.Count; i++)
            {
                _positions[parts[i].Name] = (position, i);
            }

            _slots.Add(new Slot(field.Compound, parts));
            var recordName = field.Compound.EndsWith("Address", StringComparison.Ordinal) ? "Address" : "Switchable_PersonName";
            JsonNode recordType = definedRecords.Add(recordName)
                ? new JsonObject
                {
                    ["type"] = "record",
                    ["name"] = recordName,
                    ["fields"] = new JsonArray([.. parts.Select(p => (JsonNode)new JsonObject { ["name"] = p.Part, ["type"] = new JsonArray("null", AvroType(p)), ["default"] = null })]),
                }
                : recordName;
            fields.Add(new JsonObject { ["name"] = field.Compound, ["type"] = new JsonArray("null", recordType), ["doc"] = "Data:" + (recordName == "Address" ? "Address" : "Name"), ["default"] = null });
        }

        var json = new JsonObject
        {
            ["type"] = "record",
            ["name"] = EventName,
            ["namespace"] = "com.sforce.eventbus",
            ["fields"] = fields,
        };
        Json = json.ToJsonString();
        Avro = (RecordSchema)Schema.Parse(Json);
        SchemaId = Convert.ToBase64String(MD5.HashData(System.Text.Encoding.UTF8.GetBytes(SchemaNormalization.ToParsingForm(Avro))))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public SObjectSchema SObject { get; }

    public string EventName => SObject.Name + "ChangeEvent";

    public string TopicName => "/data/" + EventName;

    public string Json { get; }

    public RecordSchema Avro { get; }

    public string SchemaId { get; }

    public static ChangeEventSchema For(SObjectSchema sObject) => new(sObject);

    /// <summary>The sObject fields of a change event, by position (the header is position 0).</summary>
    public IEnumerable<string> EventFieldNames => _positions.Keys;

    /// <summary>The bitmap strings that name <paramref name="fieldNames"/> (sObject field names; others are ignored).</summary>
    public IReadOnlyList<string> Bitmap(IEnumerable<string> fieldNames)
    {
        var top = new SortedSet<int>();
        var nested = new Dictionary<int, IReadOnlyCollection<int>>();
        foreach (var name in fieldNames)
        {
            if (!_positions.TryGetValue(name, out var at))
            {
                continue;
            }

            if (at.Nested is { } child)
            {
                if (!nested.TryGetValue(at.Position, out var children))
                {
                    nested[at.Position] = children = new SortedSet<int>();
                }

                ((SortedSet<int>)children).Add(child);
            }
            else
            {
                top.Add(at.Position);
            }
        }

        return FieldBitmap.Encode(top, nested);
    }

    /// <summary>The event's Avro binary encoding: the header, and the given sObject field values (null for the rest).</summary>
    public byte[] Encode(ChangeEventHeader header, IReadOnlyDictionary<string, JsonNode?> values)
    {
        var record = new GenericRecord(Avro);
        var headerSchema = (RecordSchema)Avro.Fields[0].Schema;
        var headerRecord = new GenericRecord(headerSchema);
        headerRecord.Add("entityName", header.EntityName);
        headerRecord.Add("recordIds", header.RecordIds.ToArray());
        headerRecord.Add("changeType", new GenericEnum((EnumSchema)headerSchema["changeType"].Schema, header.ChangeType));
        headerRecord.Add("changeOrigin", header.ChangeOrigin);
        headerRecord.Add("transactionKey", header.TransactionKey);
        headerRecord.Add("sequenceNumber", header.SequenceNumber);
        headerRecord.Add("commitTimestamp", header.CommitTimestamp);
        headerRecord.Add("commitNumber", header.CommitNumber);
        headerRecord.Add("commitUser", header.CommitUser);
        headerRecord.Add("nulledFields", header.NulledFields.ToArray());
        headerRecord.Add("diffFields", header.DiffFields.ToArray());
        headerRecord.Add("changedFields", header.ChangedFields.ToArray());
        record.Add("ChangeEventHeader", headerRecord);
        for (var i = 0; i < _slots.Count; i++)
        {
            var slot = _slots[i];
            if (slot.Parts.Count == 1 && slot.Parts[0].Compound is null)
            {
                record.Add(slot.Name, values.TryGetValue(slot.Name, out var value) ? AvroValue(slot.Parts[0], value) : null);
                continue;
            }

            if (!slot.Parts.Any(p => values.ContainsKey(p.Name)))
            {
                record.Add(slot.Name, null);
                continue;
            }

            var nestedSchema = (RecordSchema)((UnionSchema)Avro[slot.Name].Schema).Schemas[1];
            var nested = new GenericRecord(nestedSchema);
            foreach (var part in slot.Parts)
            {
                nested.Add(part.Part!, values.TryGetValue(part.Name, out var value) ? AvroValue(part, value) : null);
            }

            record.Add(slot.Name, nested);
        }

        using var stream = new MemoryStream();
        new GenericDatumWriter<GenericRecord>(Avro).Write(record, new BinaryEncoder(stream));
        return stream.ToArray();
    }

    private static JsonObject HeaderSchema()
    {
        static JsonObject Strings() => new() { ["type"] = "array", ["items"] = "string" };
        return new JsonObject
        {
            ["type"] = "record",
            ["name"] = "ChangeEventHeader",
            ["fields"] = new JsonArray(
                new JsonObject { ["name"] = "entityName", ["type"] = "string" },
                new JsonObject { ["name"] = "recordIds", ["type"] = Strings() },
                new JsonObject
                {
                    ["name"] = "changeType",
                    ["type"] = new JsonObject { ["type"] = "enum", ["name"] = "ChangeType", ["symbols"] = new JsonArray([.. ChangeTypes.Select(t => (JsonNode?)JsonValue.Create(t))]) },
                },
                new JsonObject { ["name"] = "changeOrigin", ["type"] = "string" },
                new JsonObject { ["name"] = "transactionKey", ["type"] = "string" },
                new JsonObject { ["name"] = "sequenceNumber", ["type"] = "int" },
                new JsonObject { ["name"] = "commitTimestamp", ["type"] = "long" },
                new JsonObject { ["name"] = "commitNumber", ["type"] = "long" },
                new JsonObject { ["name"] = "commitUser", ["type"] = "string" },
                new JsonObject { ["name"] = "nulledFields", ["type"] = Strings() },
                new JsonObject { ["name"] = "diffFields", ["type"] = Strings() },
                new JsonObject { ["name"] = "changedFields", ["type"] = Strings() }),
        };
    }

    private static string AvroType(SField field) => field.Type switch
    {
        SFieldType.Boolean => "boolean",
        SFieldType.Double => "double",
        SFieldType.Int => "int",
        SFieldType.DateTime => "long",
        SFieldType.Date => "int",
        _ => "string",
    };

    private static object? AvroValue(SField field, JsonNode? value)
    {
        if (value is null)
        {
            return null;
        }

        return field.Type switch
        {
            SFieldType.Boolean => value.GetValue<bool>(),
            SFieldType.Double => value.GetValue<double>(),
            SFieldType.Int => checked((int)value.GetValue<long>()),
            SFieldType.DateTime => DateTimeOffset.Parse(value.GetValue<string>().Replace("+0000", "Z", StringComparison.Ordinal), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal).ToUnixTimeMilliseconds(),
            SFieldType.Date => DateOnly.ParseExact(value.GetValue<string>(), "yyyy-MM-dd", CultureInfo.InvariantCulture).DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber,
            _ => value.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : value.ToJsonString(),
        };
    }

    private sealed record Slot(string Name, IReadOnlyList<SField> Parts);
}
