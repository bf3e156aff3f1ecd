using System.Globalization;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>One error of a record, as in a SaveResult's <c>errors</c> array.</summary>
internal sealed record SfError(string StatusCode, string Message, IReadOnlyList<string> Fields)
{
    public JsonObject ToJson() => new()
    {
        ["statusCode"] = StatusCode,
        ["message"] = Message,
        ["fields"] = new JsonArray([.. Fields.Select(f => (JsonNode?)JsonValue.Create(f))]),
    };
}

/// <summary>A SaveResult / UpsertResult / DeleteResult.</summary>
internal sealed record SaveResult(string? Id, bool Success, IReadOnlyList<SfError> Errors, bool? Created = null)
{
    public static SaveResult Fail(string? id, string statusCode, string message, params string[] fields) => new(id, false, [new SfError(statusCode, message, fields)]);

    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["id"] = Id,
            ["success"] = Success,
            ["errors"] = new JsonArray([.. Errors.Select(e => (JsonNode)e.ToJson())]),
        };
        if (Created is { } created)
        {
            json["created"] = created;
        }

        return json;
    }
}

/// <summary>A failure of the whole request (HTTP 4xx with an error array), not of one record.</summary>
internal sealed class SandboxApiException(int status, string errorCode, string message, params string[] fields) : Exception(message)
{
    public int Status { get; } = status;

    public string ErrorCode { get; } = errorCode;

    public IReadOnlyList<string> Fields { get; } = fields;
}

/// <summary>One committed change of a record: its state before (null for a create) and after.</summary>
internal sealed record RecordChange(StoredRecord? Before, StoredRecord After);

internal sealed class StoredRecord(SObjectSchema schema, string id, JsonObject fields)
{
    public SObjectSchema Schema { get; } = schema;

    public string Id { get; } = id;

    public JsonObject Fields { get; } = fields;

    public DateTimeOffset Modstamp { get; set; }

    public bool IsDeleted { get; set; }

    public StoredRecord Clone() => new(Schema, Id, (JsonObject)Fields.DeepClone()) { Modstamp = Modstamp, IsDeleted = IsDeleted };
}

/// <summary>
/// The sandbox's data, in memory. Every method must be called under <see cref="Sync"/>: a request
/// runs as one unit, which is what lets allOrNone roll back.
/// </summary>
internal sealed class SalesforceStore(SalesforceSandboxOptions options)
{
    public const string DefaultOwnerId = "0055g00000CdcSyncAAA";

    private readonly Dictionary<string, StoredRecord> _records = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Type, string Value), string> _externalIds = new(ExternalKeyComparer.Instance);
    private List<(string Id, StoredRecord? Previous)>? _undo;
    private List<RecordChange>? _journal;
    private int _journalMark;
    private long _sequence = options.FirstIdSequence;
    private DateTimeOffset _lastStamp = DateTimeOffset.MinValue;

    public Lock Sync { get; } = new();

    public int Count => _records.Count;

    public static string FormatDateTime(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture);

    public StoredRecord? Get(string id) => _records.GetValueOrDefault(id);

    public IEnumerable<StoredRecord> All(SObjectSchema schema) => _records.Values.Where(r => r.Schema == schema);

    /// <summary>Forgets every record; the Id counter keeps counting up, so no Id is ever handed out twice.</summary>
    public void Clear()
    {
        _records.Clear();
        _externalIds.Clear();
        _undo = null;
    }

    /// <summary>Starts recording changes so that <see cref="Rollback"/> can undo them (allOrNone).</summary>
    public void Begin()
    {
        _undo = [];
        _journalMark = _journal?.Count ?? 0;
    }

    /// <summary>
    /// Starts noting every change made until <see cref="EndJournal"/>, for the change events of a
    /// commit. Changes made outside a journal (a silent edit) produce no events.
    /// </summary>
    public void BeginJournal()
    {
        _journal = [];
        _journalMark = 0;
    }

    /// <summary>The changes noted since <see cref="BeginJournal"/>, those rolled back left out; stops noting.</summary>
    public IReadOnlyList<RecordChange> EndJournal()
    {
        var changes = _journal ?? [];
        _journal = null;
        return changes;
    }

    public void Complete() => _undo = null;

    public void Rollback()
    {
        if (_undo is null)
        {
            return;
        }

        for (var i = _undo.Count - 1; i >= 0; i--)
        {
            var (id, previous) = _undo[i];
            RemoveIndex(_records.GetValueOrDefault(id));
            if (previous is null)
            {
                _records.Remove(id);
            }
            else
            {
                _records[id] = previous;
                AddIndex(previous);
            }
        }

        _undo = null;
        if (_journal is not null && _journal.Count > _journalMark)
        {
            _journal.RemoveRange(_journalMark, _journal.Count - _journalMark);
        }
    }

    public SaveResult Create(SObjectSchema schema, JsonObject body)
    {
        var values = ReadBody(schema, body, out var error);
        if (error is not null)
        {
            return error;
        }

        var record = new StoredRecord(schema, SalesforceIds.Create(schema.KeyPrefix, ++_sequence), []);
        foreach (var (name, value) in values)
        {
            record.Fields[name] = value?.DeepClone();
        }

        var validation = Validate(record, null);
        if (validation is not null)
        {
            return validation;
        }

        var now = Stamp();
        record.Fields["Id"] = record.Id;
        record.Fields["IsDeleted"] = false;
        record.Fields["CreatedDate"] = FormatDateTime(now);
        record.Fields["OwnerId"] ??= DefaultOwnerId;
        Touch(record, now);
        Put(record, null);
        return new SaveResult(record.Id, true, [], Created: true);
    }

    public SaveResult Update(SObjectSchema? expected, string rawId, JsonObject body)
    {
        var id = SalesforceIds.Normalize(rawId);
        if (id is null)
        {
            return SaveResult.Fail(rawId, "MALFORMED_ID", $"malformed id {rawId}", "Id");
        }

        if (!_records.TryGetValue(id, out var existing) || (expected is not null && existing.Schema != expected))
        {
            return SaveResult.Fail(id, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id");
        }

        if (existing.IsDeleted)
        {
            return SaveResult.Fail(id, "ENTITY_IS_DELETED", "entity is deleted");
        }

        var values = ReadBody(existing.Schema, body, out var error);
        if (error is not null)
        {
            return error with { Id = id };
        }

        var updated = existing.Clone();
        foreach (var (name, value) in values)
        {
            updated.Fields[name] = value?.DeepClone();
        }

        var validation = Validate(updated, existing.Id);
        if (validation is not null)
        {
            return validation with { Id = id };
        }

        Touch(updated, Stamp());
        Put(updated, existing);
        return new SaveResult(id, true, []);
    }

    public SaveResult Upsert(SObjectSchema schema, string externalIdField, JsonObject body)
    {
        var field = schema.Find(externalIdField);
        if (field is null)
        {
            throw new SandboxApiException(404, "NOT_FOUND", $"Provided external ID field does not exist or is not accessible: {externalIdField}");
        }

        if (!field.ExternalId && field.Type != SFieldType.Id)
        {
            throw new SandboxApiException(400, "INVALID_FIELD", $"Field {field.Name} is not an external id field on sobject {schema.Name}");
        }

        var key = body.FirstOrDefault(p => string.Equals(p.Key, field.Name, StringComparison.OrdinalIgnoreCase)).Value?.ToString();
        if (string.IsNullOrEmpty(key))
        {
            return SaveResult.Fail(null, "MISSING_ARGUMENT", $"{field.Name} not specified", field.Name);
        }

        if (_externalIds.TryGetValue((schema.Name, key), out var id))
        {
            var result = Update(schema, id, body);
            return result with { Created = result.Success ? false : null };
        }

        return Create(schema, body);
    }

    public SaveResult Delete(string rawId)
    {
        var id = SalesforceIds.Normalize(rawId);
        if (id is null)
        {
            return SaveResult.Fail(rawId, "MALFORMED_ID", $"malformed id {rawId}");
        }

        if (!_records.TryGetValue(id, out var existing))
        {
            return SaveResult.Fail(id, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id");
        }

        if (existing.IsDeleted)
        {
            return SaveResult.Fail(id, "ENTITY_IS_DELETED", "entity is deleted");
        }

        var now = Stamp();
        MarkDeleted(existing, now);

        // Deleting an account deletes its contacts and opportunities too (they go to the recycle bin with it).
        foreach (var (child, field, _) in existing.Schema.Children)
        {
            foreach (var record in _records.Values.Where(r => r.Schema == child && !r.IsDeleted && r.Fields[field.Name]?.ToString() == id).ToList())
            {
                MarkDeleted(record, now);
            }
        }

        return new SaveResult(id, true, []);
    }

    private void MarkDeleted(StoredRecord existing, DateTimeOffset now)
    {
        var deleted = existing.Clone();
        deleted.IsDeleted = true;
        deleted.Fields["IsDeleted"] = true;
        Touch(deleted, now);
        Put(deleted, existing);
    }

    private Dictionary<string, JsonNode?> ReadBody(SObjectSchema schema, JsonObject body, out SaveResult? error)
    {
        error = null;
        var values = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        var readOnly = new List<string>();
        foreach (var (name, value) in body)
        {
            if (name == "attributes")
            {
                continue;
            }

            var field = schema.Find(name)
                ?? throw new SandboxApiException(400, "INVALID_FIELD", $"No such column '{name}' on sobject of type {schema.Name}");
            if (field.ReadOnly)
            {
                readOnly.Add(field.Name);
                continue;
            }

            values[field.Name] = Coerce(schema, field, value);
        }

        if (readOnly.Count > 0)
        {
            error = SaveResult.Fail(null, "INVALID_FIELD_FOR_INSERT_UPDATE",
                $"Unable to create/update fields: {string.Join(", ", readOnly)}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                [.. readOnly]);
        }

        return values;
    }

    private static JsonNode? Coerce(SObjectSchema schema, SField field, JsonNode? value)
    {
        if (value is null)
        {
            return null;
        }

        if (value is not JsonValue scalar)
        {
            throw new SandboxApiException(400, "JSON_PARSER_ERROR", $"Cannot deserialize instance of {field.Type.ToString().ToLowerInvariant()} from START_OBJECT value for field {field.Name} of {schema.Name}");
        }

        var kind = scalar.GetValueKind();
        var text = kind == System.Text.Json.JsonValueKind.String ? scalar.GetValue<string>() : scalar.ToJsonString();
        switch (field.Type)
        {
            case SFieldType.Double when kind is System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.String:
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                {
                    return JsonValue.Create(d);
                }

                break;
            case SFieldType.Int when kind is System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.String:
                if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l))
                {
                    return JsonValue.Create(l);
                }

                break;
            case SFieldType.Boolean when kind is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False:
                return JsonValue.Create(kind == System.Text.Json.JsonValueKind.True);
            case SFieldType.Date when kind == System.Text.Json.JsonValueKind.String:
                if (DateTime.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
                {
                    return JsonValue.Create(text);
                }

                break;
            case SFieldType.Double or SFieldType.Int or SFieldType.Boolean or SFieldType.Date:
                break;
            default:
                return JsonValue.Create(text);
        }

        throw new SandboxApiException(400, "JSON_PARSER_ERROR", $"Cannot deserialize instance of {field.Type.ToString().ToLowerInvariant()} from VALUE_STRING value {scalar.ToJsonString()} for field {field.Name} of {schema.Name}");
    }

    private SaveResult? Validate(StoredRecord record, string? selfId)
    {
        var schema = record.Schema;
        var missing = schema.Fields.Where(f => f.Required && string.IsNullOrWhiteSpace(record.Fields[f.Name]?.ToString())).Select(f => f.Name).ToArray();
        if (missing.Length > 0)
        {
            return SaveResult.Fail(null, "REQUIRED_FIELD_MISSING", $"Required fields are missing: [{string.Join(", ", missing)}]", missing);
        }

        foreach (var field in schema.Fields.Where(f => f.Type == SFieldType.String))
        {
            if (record.Fields[field.Name]?.ToString() is { } text && text.Length > field.Length)
            {
                return SaveResult.Fail(null, "STRING_TOO_LONG", $"{field.Name}: data value too large: {text[..Math.Min(text.Length, 40)]} (max length={field.Length})", field.Name);
            }
        }

        var rejected = options.RejectedName;
        if (rejected is not null && string.Equals(record.Fields[schema.NameField]?.ToString(), rejected, StringComparison.Ordinal))
        {
            return SaveResult.Fail(null, "FIELD_CUSTOM_VALIDATION_EXCEPTION", $"Records named '{rejected}' are not allowed (validation rule CdcSync_Sandbox_Reject).");
        }

        foreach (var field in schema.Fields.Where(f => f.ExternalId))
        {
            if (record.Fields[field.Name]?.ToString() is { Length: > 0 } value
                && _externalIds.TryGetValue((schema.Name, value), out var other) && other != selfId)
            {
                return SaveResult.Fail(null, "DUPLICATE_VALUE", $"duplicate value found: {field.Name} duplicates value on record with id: {other}", field.Name);
            }
        }

        foreach (var field in schema.Fields.Where(f => f.ReferenceTo is not null))
        {
            if (record.Fields[field.Name]?.ToString() is not { Length: > 0 } referenced)
            {
                continue;
            }

            var target = SObjectSchema.All[field.ReferenceTo!];
            var normalized = SalesforceIds.Normalize(referenced);
            if (normalized is null || !normalized.StartsWith(target.KeyPrefix, StringComparison.Ordinal))
            {
                return SaveResult.Fail(null, "FIELD_INTEGRITY_EXCEPTION", $"{target.Name} ID: id value of incorrect type: {referenced}", field.Name);
            }

            if (!_records.TryGetValue(normalized, out var parent) || parent.IsDeleted)
            {
                return SaveResult.Fail(null, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", field.Name);
            }

            record.Fields[field.Name] = normalized;
        }

        if (schema == SObjectSchema.Opportunity && record.Fields["StageName"]?.ToString() is { } stage)
        {
            // Salesforce fills the probability from the stage when a write leaves it empty, and derives IsClosed/IsWon.
            if (record.Fields["Probability"] is null && SObjectSchema.StageProbabilities.TryGetValue(stage, out var probability))
            {
                record.Fields["Probability"] = probability;
            }

            record.Fields["IsClosed"] = stage.StartsWith("Closed", StringComparison.OrdinalIgnoreCase);
            record.Fields["IsWon"] = stage.Equals("Closed Won", StringComparison.OrdinalIgnoreCase);
        }

        if (record.Fields["Probability"]?.GetValue<double>() is < 0 or > 100)
        {
            return SaveResult.Fail(null, "NUMBER_OUTSIDE_VALID_RANGE", "Probability: value outside of valid range on numeric field: " + record.Fields["Probability"]!.ToJsonString(), "Probability");
        }

        return null;
    }

    private static void Touch(StoredRecord record, DateTimeOffset now)
    {
        record.Modstamp = now;
        record.Fields["LastModifiedDate"] = FormatDateTime(now);
        record.Fields["SystemModstamp"] = FormatDateTime(now);
    }

    /// <summary>Server time of a write, in milliseconds like Salesforce's, and never going backwards.</summary>
    private DateTimeOffset Stamp()
    {
        var now = options.TimeProvider.GetUtcNow();
        now = new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerMillisecond), TimeSpan.Zero);
        if (now < _lastStamp)
        {
            now = _lastStamp;
        }

        _lastStamp = now;
        return now;
    }

    private void Put(StoredRecord record, StoredRecord? previous)
    {
        _undo?.Add((record.Id, previous));
        _journal?.Add(new RecordChange(previous, record));
        RemoveIndex(previous);
        _records[record.Id] = record;
        AddIndex(record);
    }

    private void AddIndex(StoredRecord? record)
    {
        if (record is null || record.IsDeleted)
        {
            return;
        }

        foreach (var field in record.Schema.Fields.Where(f => f.ExternalId))
        {
            if (record.Fields[field.Name]?.ToString() is { Length: > 0 } value)
            {
                _externalIds[(record.Schema.Name, value)] = record.Id;
            }
        }
    }

    private void RemoveIndex(StoredRecord? record)
    {
        if (record is null)
        {
            return;
        }

        foreach (var field in record.Schema.Fields.Where(f => f.ExternalId))
        {
            if (record.Fields[field.Name]?.ToString() is { Length: > 0 } value
                && _externalIds.TryGetValue((record.Schema.Name, value), out var owner) && owner == record.Id)
            {
                _externalIds.Remove((record.Schema.Name, value));
            }
        }
    }

    private sealed class ExternalKeyComparer : IEqualityComparer<(string Type, string Value)>
    {
        public static readonly ExternalKeyComparer Instance = new();

        // External ids match case-insensitively unless the field is marked case-sensitive.
        public bool Equals((string Type, string Value) x, (string Type, string Value) y) =>
            x.Type == y.Type && string.Equals(x.Value, y.Value, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode((string Type, string Value) obj) =>
            HashCode.Combine(obj.Type, StringComparer.OrdinalIgnoreCase.GetHashCode(obj.Value));
    }
}
