using System.Collections.Concurrent;
using Avro;
using Avro.Generic;
using Avro.IO;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// Decodes change event payloads (Avro binary) with the writer's schema, fetched once per schema id
/// (<c>GetSchema</c>) and cached: schemas change only when an object's fields do, and then carry a new id.
/// </summary>
internal sealed class ChangeEventDecoder(Func<string, CancellationToken, Task<string>> fetchSchemaAsync)
{
    private readonly ConcurrentDictionary<string, RecordSchema> _schemas = new(StringComparer.Ordinal);

    public async Task<SalesforceChangeEvent> DecodeAsync(string schemaId, byte[] payload, CancellationToken cancellationToken)
    {
        if (!_schemas.TryGetValue(schemaId, out var schema))
        {
            var json = await fetchSchemaAsync(schemaId, cancellationToken);
            schema = Avro.Schema.Parse(json) as RecordSchema
                ?? throw new FormatException($"Schema {schemaId} of a change event is not an Avro record schema.");
            _schemas[schemaId] = schema;
        }

        return Decode(schema, payload);
    }

    internal static SalesforceChangeEvent Decode(RecordSchema schema, byte[] payload)
    {
        var reader = new GenericDatumReader<GenericRecord>(schema, schema);
        using var stream = new MemoryStream(payload, writable: false);
        var record = reader.Read(null!, new BinaryDecoder(stream));
        if (!record.TryGetValue("ChangeEventHeader", out var headerValue) || headerValue is not GenericRecord header)
        {
            throw new FormatException($"Event of schema {schema.Fullname} has no ChangeEventHeader; is the topic a change event channel (/data/...ChangeEvent)?");
        }

        var changeType = Text(header, "changeType") ?? throw new FormatException("A ChangeEventHeader without changeType.");
        var changed = ChangeEventBitmap.Decode(Strings(header, "changedFields"));
        var nulled = ChangeEventBitmap.Decode(Strings(header, "nulledFields"));
        var all = changeType is "CREATE" or "UNDELETE";
        var fields = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        if (changeType is "CREATE" or "UNDELETE" or "UPDATE")
        {
            foreach (var field in schema.Fields)
            {
                if (field.Name == "ChangeEventHeader")
                {
                    continue;
                }

                record.TryGetValue(field.Name, out var value);
                if (value is GenericRecord compound)
                {
                    // Components: all of them when the compound field is named as a whole, else those its own bitmap names.
                    var whole = changed.Fields.Contains(field.Pos) || nulled.Fields.Contains(field.Pos);
                    var parts = new HashSet<int>();
                    parts.UnionWith(changed.Nested.GetValueOrDefault(field.Pos) ?? []);
                    parts.UnionWith(nulled.Nested.GetValueOrDefault(field.Pos) ?? []);
                    foreach (var component in compound.Schema.Fields)
                    {
                        compound.TryGetValue(component.Name, out var part);
                        if (all ? part is not null : whole || parts.Contains(component.Pos))
                        {
                            fields[ComponentName(field.Name, component.Name)] = Plain(part);
                        }
                    }
                }
                else if (all ? value is not null : changed.Fields.Contains(field.Pos) || nulled.Fields.Contains(field.Pos) || changed.Nested.ContainsKey(field.Pos))
                {
                    // A compound field set to null as a whole arrives as null: its components are nulled.
                    if (value is null && Compound(field.Schema) is { } nullSchema)
                    {
                        foreach (var component in nullSchema.Fields)
                        {
                            fields[ComponentName(field.Name, component.Name)] = null;
                        }
                    }
                    else
                    {
                        fields[field.Name] = Plain(value);
                    }
                }
            }
        }

        return new SalesforceChangeEvent(
            Text(header, "entityName") ?? throw new FormatException("A ChangeEventHeader without entityName."),
            Strings(header, "recordIds").ToList(),
            changeType,
            Text(header, "changeOrigin"),
            header.TryGetValue("commitTimestamp", out var ts) && ts is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.MinValue,
            header.TryGetValue("commitNumber", out var cn) && cn is long n ? n : 0,
            Text(header, "transactionKey"),
            header.TryGetValue("sequenceNumber", out var sn) && sn is int s ? s : 0,
            fields);
    }

    /// <summary>The API name of a compound field's component: BillingAddress.Street is BillingStreet, Name.FirstName is FirstName.</summary>
    internal static string ComponentName(string compound, string component) =>
        compound.EndsWith("Address", StringComparison.Ordinal) ? compound[..^"Address".Length] + component : component;

    private static RecordSchema? Compound(Avro.Schema schema) => schema switch
    {
        RecordSchema r => r,
        UnionSchema u => u.Schemas.OfType<RecordSchema>().FirstOrDefault(),
        _ => null,
    };

    private static object? Plain(object? value) => value switch
    {
        GenericEnum e => e.Value,
        _ => value,
    };

    private static string? Text(GenericRecord record, string name) =>
        record.TryGetValue(name, out var value) ? value switch
        {
            null => null,
            GenericEnum e => e.Value,
            _ => value.ToString(),
        } : null;

    private static IEnumerable<string> Strings(GenericRecord record, string name) =>
        record.TryGetValue(name, out var value) && value is System.Collections.IEnumerable items and not string
            ? items.Cast<object?>().Where(i => i is not null).Select(i => i!.ToString()!)
            : [];
}
