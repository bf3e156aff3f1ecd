using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Steering;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>A row SuiteQL can read: a column by its lower-case name.</summary>
internal interface ISuiteQlRow
{
    object? Column(string name);
}

/// <summary>One record as the record service holds it (REST field names, camelCase).</summary>
internal sealed class NsRecord(NsRecordType type, long id, JsonObject fields, DateTimeOffset dateCreated) : ISuiteQlRow
{
    public NsRecordType Type { get; } = type;

    public long Id { get; } = id;

    public JsonObject Fields { get; set; } = fields;

    public DateTimeOffset DateCreated { get; } = dateCreated;

    public DateTimeOffset LastModifiedDate { get; set; } = dateCreated;

    public string? ExternalId => Fields["externalId"]?.GetValue<string>();

    /// <summary>A column as SuiteQL sees it: references as their id, booleans as T/F, dates typed.</summary>
    public object? Column(string name)
    {
        switch (name)
        {
            case "id":
                return Id;
            case "datecreated" or "createddate":
                return DateCreated;
            case "lastmodifieddate":
                return LastModifiedDate;
            case "recordtype":
                return Type.Name;
            case "type" when Type.TransactionType is { } transactionType:
                return transactionType;
        }

        var field = Type.Column(name) ?? (name.StartsWith(Type.CustomFieldPrefix, StringComparison.Ordinal)
            ? Fields.FirstOrDefault(p => p.Key.Equals(name, StringComparison.OrdinalIgnoreCase)) is { Key: { } custom } ? new NsField(custom, NsFieldType.String, custom) : null
            : null);
        if (field is null)
        {
            throw new SuiteQlException($"Field '{name}' for record '{Type.Name}' was not found. Reason: UNKNOWN_FIELD");
        }

        var value = Fields[field.Name];
        return (field.Type, value) switch
        {
            (_, null) => null,
            (NsFieldType.Reference, _) => value["id"]?.ToString() is { } s && long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var refId) ? refId : value["id"]?.ToString(),
            (NsFieldType.Date, JsonValue v) when DateTimeOffset.TryParseExact(v.ToString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date) => date,
            (_, JsonValue v) when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            (_, JsonValue v) when v.GetValueKind() == JsonValueKind.Number => decimal.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture),
            (_, JsonValue v) when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            _ => value.ToJsonString(),
        };
    }
}

/// <summary>A row of SuiteQL's <c>deletedrecord</c> table: what was deleted, when, by which context.</summary>
internal sealed record DeletedRecord(long Id, string Type, long RecordId, string? Name, string? ExternalId, DateTimeOffset DeletedDate) : ISuiteQlRow
{
    public object? Column(string name) => name switch
    {
        "id" => Id,
        "type" or "recordtypeid" => Type,
        "recordid" => RecordId,
        "name" => Name,
        "externalid" => ExternalId,
        "deleteddate" => DeletedDate,
        "context" => "REST Web Services",
        "iscustomrecord" or "iscustomlist" or "iscustomtransaction" => false,
        _ => throw new SuiteQlException($"Field '{name}' for record 'deletedrecord' was not found. Reason: UNKNOWN_FIELD"),
    };
}

/// <summary>Validation failure of a record write: becomes a 400 with the error shape.</summary>
internal sealed class RecordValidationException(string code, string detail, string? path) : Exception(detail)
{
    public string Code { get; } = code;

    public string? Path { get; } = path;
}

/// <summary>The account's records of every type, in memory. Every write stamps lastModifiedDate (to the second, as NetSuite does).</summary>
internal sealed class RecordStore(NetSuiteSandboxOptions options)
{
    private static readonly HashSet<string> ReadOnlyFields = ["id", "links", "dateCreated", "lastModifiedDate", "refName"];

    private readonly Lock _lock = new();
    private readonly Dictionary<NsRecordType, Dictionary<long, NsRecord>> _byId = NsRecordType.All.Values.Distinct().ToDictionary(t => t, _ => new Dictionary<long, NsRecord>());
    private readonly Dictionary<(NsRecordType, string), long> _byExternalId = [];
    private readonly Dictionary<NsRecordType, long> _nextId = NsRecordType.All.Values.Distinct().ToDictionary(t => t, t => t.FirstId + options.InternalIdOffset);
    private readonly List<DeletedRecord> _deleted = [];

    /// <summary>Counts successful writes per record.</summary>
    public SandboxStats Stats { get; } = new();

    /// <summary>Rewrites the values received over HTTP (off by default).</summary>
    public ValueNormalizer Normalizer { get; } = new();

    public int Count(NsRecordType type)
    {
        lock (_lock)
        {
            return _byId[type].Count;
        }
    }

    /// <summary>Creates a record; <paramref name="viaApi"/> is true for writes that came over HTTP (normalized and counted in the stats).</summary>
    public long Create(NsRecordType type, JsonObject body, bool viaApi = true)
    {
        lock (_lock)
        {
            var externalId = body["externalId"]?.ToString();
            if (externalId is not null && _byExternalId.ContainsKey((type, externalId)))
            {
                throw new RecordValidationException("USER_ERROR", "Error while accessing resource: A record with this external ID already exists.", "externalId");
            }

            return Insert(type, body, viaApi);
        }
    }

    /// <summary>PUT by external id: updates the record that has it, or creates one. Returns the internal id.</summary>
    public (long Id, bool Created) Upsert(NsRecordType type, string externalId, JsonObject body, ISet<string> replace)
    {
        lock (_lock)
        {
            if (body["externalId"] is { } given && given.ToString() != externalId)
            {
                throw new RecordValidationException("INVALID_CONTENT", "Error while accessing resource: The externalId in the body does not match the one in the URL.", "externalId");
            }

            if (_byExternalId.TryGetValue((type, externalId), out var id))
            {
                Apply(_byId[type][id], body, replace, viaApi: true);
                return (id, false);
            }

            body["externalId"] = externalId;
            return (Insert(type, body, viaApi: true), true);
        }
    }

    public bool Update(NsRecordType type, long id, JsonObject body, ISet<string> replace, bool viaApi = true)
    {
        lock (_lock)
        {
            if (!_byId[type].TryGetValue(id, out var record))
            {
                return false;
            }

            if (body["externalId"]?.ToString() is { } ext && ext != record.ExternalId && _byExternalId.ContainsKey((type, ext)))
            {
                throw new RecordValidationException("USER_ERROR", "Error while accessing resource: A record with this external ID already exists.", "externalId");
            }

            Apply(record, body, replace, viaApi);
            return true;
        }
    }

    public long? ResolveExternalId(NsRecordType type, string externalId)
    {
        lock (_lock)
        {
            return _byExternalId.TryGetValue((type, externalId), out var id) ? id : null;
        }
    }

    public (JsonObject Fields, DateTimeOffset Created, DateTimeOffset Modified)? Get(NsRecordType type, long id)
    {
        lock (_lock)
        {
            return _byId[type].TryGetValue(id, out var c) ? ((JsonObject)c.Fields.DeepClone(), c.DateCreated, c.LastModifiedDate) : null;
        }
    }

    /// <summary>Deletes a record and notes it in <c>deletedrecord</c>. A customer that opportunities still reference cannot be deleted, as in NetSuite.</summary>
    public bool Delete(NsRecordType type, long id, bool viaApi = true)
    {
        lock (_lock)
        {
            if (!_byId[type].TryGetValue(id, out var record))
            {
                return false;
            }

            var referencing = _byId.Values.SelectMany(r => r.Values)
                .FirstOrDefault(r => r.Type.Fields.Any(f => f.References == type.Name && r.Fields[f.Name]?["id"]?.ToString() == id.ToString(CultureInfo.InvariantCulture)));
            if (referencing is not null)
            {
                throw new RecordValidationException("USER_ERROR", $"Error while accessing resource: This record cannot be deleted because it has dependent records ({referencing.Type.Name} {referencing.Id}).", null);
            }

            _byId[type].Remove(id);
            if (record.ExternalId is { } ext)
            {
                _byExternalId.Remove((type, ext));
            }

            var name = record.Fields["entityId"]?.ToString() ?? record.Fields["title"]?.ToString() ?? record.Fields["companyName"]?.ToString();
            _deleted.Add(new DeletedRecord(_deleted.Count + 1, type.Name, id, name, record.ExternalId, Now()));
            if (viaApi)
            {
                Stats.CountWrite(type.Name, id.ToString(CultureInfo.InvariantCulture));
            }

            return true;
        }
    }

    /// <summary>
    /// A change behind the API's change tracking (<c>/_sandbox/silent-edit</c>): merges <paramref name="fields"/>
    /// (checked like an API write, not normalized, lastModifiedDate untouched), or with null removes
    /// the record without a <c>deletedrecord</c> entry. False when there is no such record.
    /// </summary>
    public bool SilentEdit(NsRecordType type, long id, JsonObject? fields)
    {
        lock (_lock)
        {
            if (!_byId[type].TryGetValue(id, out var record))
            {
                return false;
            }

            if (fields is null)
            {
                _byId[type].Remove(id);
                if (record.ExternalId is { } gone)
                {
                    _byExternalId.Remove((type, gone));
                }

                return true;
            }

            foreach (var (name, _) in fields)
            {
                if (type.Field(name) is null or { ReadOnly: true } && !name.StartsWith(type.CustomFieldPrefix, StringComparison.Ordinal))
                {
                    throw new RecordValidationException("INVALID_CONTENT", $"fields.{name}: the {type.Name} record has no writable field '{name}'.", name);
                }
            }

            var merged = (JsonObject)record.Fields.DeepClone();
            Merge(type, merged, (JsonObject)fields.DeepClone(), new HashSet<string>(), normalize: false);
            Validate(type, merged);
            if (record.ExternalId is { } oldExt && merged["externalId"]?.ToString() != oldExt)
            {
                _byExternalId.Remove((type, oldExt));
            }

            record.Fields = merged;
            if (record.ExternalId is { } ext)
            {
                _byExternalId[(type, ext)] = id;
            }

            return true;
        }
    }

    /// <summary>Forgets every record (ids keep counting up, so a later record never reuses an id a client may still hold).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            foreach (var table in _byId.Values)
            {
                table.Clear();
            }

            _byExternalId.Clear();
            _deleted.Clear();
        }
    }

    /// <summary>Runs <paramref name="query"/> against a consistent view of a SuiteQL table (a record type or <c>deletedrecord</c>).</summary>
    public T Read<T>(string table, Func<IEnumerable<ISuiteQlRow>, T> query)
    {
        lock (_lock)
        {
            if (table.Equals("deletedrecord", StringComparison.OrdinalIgnoreCase))
            {
                return query(_deleted);
            }

            // SuiteQL also shows transactions (opportunities here) in the transaction table, told apart by type.
            if (table.Equals("transaction", StringComparison.OrdinalIgnoreCase))
            {
                return query(_byId.Where(t => t.Key.TransactionType is not null).SelectMany(t => t.Value.Values));
            }

            return NsRecordType.All.TryGetValue(table, out var type)
                ? query(_byId[type].Values)
                : throw new SuiteQlException($"Record '{table}' was not found. Reason: the sandbox serves {string.Join(", ", NsRecordType.All.Keys)} and deletedrecord.");
        }
    }

    /// <summary>Internal ids of a type in id order, for the record service's list.</summary>
    public List<long> Ids(NsRecordType type)
    {
        lock (_lock)
        {
            return [.. _byId[type].Keys.Order()];
        }
    }

    private bool Exists(string typeName, long id) =>
        NsRecordType.All.TryGetValue(typeName, out var type) && _byId[type].ContainsKey(id);

    private long Insert(NsRecordType type, JsonObject body, bool viaApi)
    {
        var merged = new JsonObject();
        Merge(type, merged, body, new HashSet<string>(), viaApi);
        Validate(type, merged);
        var id = _nextId[type]++;
        var record = new NsRecord(type, id, merged, Now());
        if (type == NsRecordType.Opportunity)
        {
            merged["tranId"] ??= "OPP" + id.ToString(CultureInfo.InvariantCulture);
            merged["tranDate"] ??= record.DateCreated.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        _byId[type][id] = record;
        if (record.ExternalId is { } ext)
        {
            _byExternalId[(type, ext)] = id;
        }

        if (viaApi)
        {
            Stats.CountWrite(type.Name, id.ToString(CultureInfo.InvariantCulture));
        }

        return id;
    }

    private void Apply(NsRecord record, JsonObject body, ISet<string> replace, bool viaApi)
    {
        var merged = (JsonObject)record.Fields.DeepClone();
        Merge(record.Type, merged, body, replace, viaApi);
        Validate(record.Type, merged);
        if (record.ExternalId is { } oldExt && merged["externalId"]?.ToString() != oldExt)
        {
            _byExternalId.Remove((record.Type, oldExt));
        }

        record.Fields = merged;
        if (record.ExternalId is { } ext)
        {
            _byExternalId[(record.Type, ext)] = record.Id;
        }

        record.LastModifiedDate = Now();
        if (viaApi)
        {
            Stats.CountWrite(record.Type.Name, record.Id.ToString(CultureInfo.InvariantCulture));
        }
    }

    private void Merge(NsRecordType type, JsonObject target, JsonObject body, ISet<string> replace, bool normalize)
    {
        foreach (var (name, value) in body)
        {
            if (ReadOnlyFields.Contains(name))
            {
                continue;
            }

            var field = type.Field(name);
            if (field is null && !name.StartsWith(type.CustomFieldPrefix, StringComparison.Ordinal))
            {
                throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: Invalid field name: {name}. The {type.Name} record has no such field; see /services/rest/record/v1/metadata-catalog/{type.Name}.", name);
            }

            if (field is { ReadOnly: true })
            {
                continue;
            }

            if (field is { Type: NsFieldType.Sublist })
            {
                var items = value?["items"] as JsonArray;
                if (value is not null && items is null)
                {
                    throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: {name} must be an object with an items array.", name);
                }

                // Sublists merge line by line unless the request names them in ?replace=.
                var lines = replace.Contains(name) || target[name] is not JsonObject existing
                    ? new JsonArray()
                    : (JsonArray)existing["items"]!.DeepClone();
                foreach (var item in items ?? [])
                {
                    lines.Add(item?.DeepClone());
                }

                target[name] = new JsonObject { ["items"] = lines };
                continue;
            }

            if (field is not null)
            {
                CheckType(field, value);
            }

            target[name] = normalize
                ? Normalizer.Normalize(name, value?.DeepClone(), field?.Type == NsFieldType.Phone)
                : value?.DeepClone();
        }
    }

    private static void CheckType(NsField field, JsonNode? value)
    {
        if (value is null)
        {
            return;
        }

        var kind = value.GetValueKind();
        var ok = field.Type switch
        {
            NsFieldType.Boolean => kind is JsonValueKind.True or JsonValueKind.False,
            NsFieldType.Number => kind == JsonValueKind.Number,
            NsFieldType.Reference => value is JsonObject o && o["id"]?.ToString() is { Length: > 0 },
            NsFieldType.Date => kind == JsonValueKind.String
                && DateTime.TryParseExact(value.GetValue<string>(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
            _ => kind == JsonValueKind.String,
        };
        if (!ok)
        {
            var expected = field.Type switch
            {
                NsFieldType.Boolean => "true or false",
                NsFieldType.Number => "a number",
                NsFieldType.Reference => "an object {\"id\": \"...\"}",
                NsFieldType.Date => "a date yyyy-MM-dd",
                _ => "a string",
            };
            throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: You have entered an Invalid Field Value {value.ToJsonString()} for the following field: {field.Name} (expected {expected}).", field.Name);
        }
    }

    private void Validate(NsRecordType type, JsonObject record)
    {
        type.DefaultsAndRules(record, type, Exists);
        foreach (var field in type.Fields.Where(f => f.MaxLength > 0))
        {
            if (record[field.Name]?.ToString() is { } text && text.Length > field.MaxLength)
            {
                throw new RecordValidationException("USER_ERROR", $"Error while accessing resource: The field {field.Name} contained more than the maximum number ( {field.MaxLength} ) of characters allowed.", field.Name);
            }
        }

        if (record["subsidiary"] is { } sub && (sub["id"]?.ToString() is not { } subId || !long.TryParse(subId, out _)))
        {
            throw new RecordValidationException("INVALID_CONTENT", "Error while accessing resource: You have entered an Invalid Field Value for the following field: subsidiary", "subsidiary");
        }

        var company = record["companyName"]?.ToString() ?? record["title"]?.ToString();
        if ((record["externalId"]?.ToString() is { } ext && options.RejectedExternalIds.ContainsKey(ext))
            || (company is not null && options.RejectedCompanyNames.ContainsKey(company)))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: This record was rejected by a validation rule of the account (sandbox fault knob).", null);
        }
    }

    private DateTimeOffset Now()
    {
        var now = options.TimeProvider.GetUtcNow();
        return new DateTimeOffset(now.UtcTicks - (now.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
    }
}
