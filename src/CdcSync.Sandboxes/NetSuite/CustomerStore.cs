using System.Text.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>One customer as the record service holds it (REST field names, camelCase).</summary>
internal sealed class Customer(long id, JsonObject fields, DateTimeOffset dateCreated)
{
    public long Id { get; } = id;

    public JsonObject Fields { get; set; } = fields;

    public DateTimeOffset DateCreated { get; } = dateCreated;

    public DateTimeOffset LastModifiedDate { get; set; } = dateCreated;

    public string? ExternalId => Fields["externalId"]?.GetValue<string>();

    /// <summary>A column as SuiteQL sees it (lower-case names, typed values).</summary>
    public object? Column(string name) => name switch
    {
        "id" => Id,
        "datecreated" => DateCreated,
        "lastmodifieddate" => LastModifiedDate,
        "subsidiary" => Fields["subsidiary"]?["id"]?.ToString() is { } s && long.TryParse(s, out var sub) ? sub : null,
        _ when CustomerStore.SuiteQlColumns.TryGetValue(name, out var field) => Fields[field] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            var n => n.ToJsonString(),
        },
        _ => throw new SuiteQlException($"Field '{name}' for record 'customer' was not found. Reason: UNKNOWN_FIELD"),
    };
}

/// <summary>Validation failure of a record write: becomes a 400 with the error shape.</summary>
internal sealed class RecordValidationException(string code, string detail, string? path) : Exception(detail)
{
    public string Code { get; } = code;

    public string? Path { get; } = path;
}

/// <summary>The account's customers, in memory. Every write stamps lastModifiedDate (to the second, as NetSuite does).</summary>
internal sealed class CustomerStore(NetSuiteSandboxOptions options)
{
    public static readonly IReadOnlyDictionary<string, string> SuiteQlColumns = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["externalid"] = "externalId",
        ["entityid"] = "entityId",
        ["companyname"] = "companyName",
        ["isperson"] = "isPerson",
        ["firstname"] = "firstName",
        ["lastname"] = "lastName",
        ["email"] = "email",
        ["phone"] = "phone",
        ["url"] = "url",
        ["isinactive"] = "isInactive",
        ["comments"] = "comments",
    };

    private static readonly HashSet<string> WritableFields =
    [
        "externalId", "entityId", "companyName", "isPerson", "firstName", "lastName", "email", "phone", "url",
        "subsidiary", "isInactive", "addressBook", "comments",
    ];

    private static readonly HashSet<string> ReadOnlyFields = ["id", "links", "dateCreated", "lastModifiedDate"];

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Customer> _byId = [];
    private readonly Dictionary<string, long> _byExternalId = new(StringComparer.Ordinal);
    private long _nextId = 100;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    public long Create(JsonObject body)
    {
        lock (_lock)
        {
            var externalId = body["externalId"]?.GetValue<string>();
            if (externalId is not null && _byExternalId.ContainsKey(externalId))
            {
                throw new RecordValidationException("USER_ERROR", "Error while accessing resource: A record with this external ID already exists.", "externalId");
            }

            return Insert(body);
        }
    }

    /// <summary>PUT by external id: updates the record that has it, or creates one. Returns the internal id.</summary>
    public (long Id, bool Created) Upsert(string externalId, JsonObject body, ISet<string> replace)
    {
        lock (_lock)
        {
            if (body["externalId"] is { } given && given.GetValue<string>() != externalId)
            {
                throw new RecordValidationException("INVALID_CONTENT", "Error while accessing resource: The externalId in the body does not match the one in the URL.", "externalId");
            }

            if (_byExternalId.TryGetValue(externalId, out var id))
            {
                Apply(_byId[id], body, replace);
                return (id, false);
            }

            body["externalId"] = externalId;
            return (Insert(body), true);
        }
    }

    public bool Update(long id, JsonObject body, ISet<string> replace)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(id, out var customer))
            {
                return false;
            }

            if (body["externalId"]?.GetValue<string>() is { } ext && ext != customer.ExternalId && _byExternalId.ContainsKey(ext))
            {
                throw new RecordValidationException("USER_ERROR", "Error while accessing resource: A record with this external ID already exists.", "externalId");
            }

            Apply(customer, body, replace);
            return true;
        }
    }

    public long? ResolveExternalId(string externalId)
    {
        lock (_lock)
        {
            return _byExternalId.TryGetValue(externalId, out var id) ? id : null;
        }
    }

    public (JsonObject Fields, DateTimeOffset Created, DateTimeOffset Modified)? Get(long id)
    {
        lock (_lock)
        {
            return _byId.TryGetValue(id, out var c) ? ((JsonObject)c.Fields.DeepClone(), c.DateCreated, c.LastModifiedDate) : null;
        }
    }

    public bool Delete(long id)
    {
        lock (_lock)
        {
            if (!_byId.Remove(id, out var customer))
            {
                return false;
            }

            if (customer.ExternalId is { } ext)
            {
                _byExternalId.Remove(ext);
            }

            return true;
        }
    }

    /// <summary>Runs <paramref name="query"/> against a consistent view of the table.</summary>
    public T Read<T>(Func<IEnumerable<Customer>, T> query)
    {
        lock (_lock)
        {
            return query(_byId.Values);
        }
    }

    private long Insert(JsonObject body)
    {
        var merged = new JsonObject();
        Merge(merged, body, new HashSet<string>());
        Validate(merged);
        var id = _nextId++;
        if (merged["entityId"] is null)
        {
            merged["entityId"] = merged["companyName"]?.GetValue<string>()
                ?? $"{merged["firstName"]?.GetValue<string>()} {merged["lastName"]?.GetValue<string>()}".Trim();
        }

        merged["isInactive"] ??= false;
        merged["isPerson"] ??= false;
        merged["subsidiary"] ??= new JsonObject { ["id"] = "1" };
        var customer = new Customer(id, merged, Now());
        _byId[id] = customer;
        if (customer.ExternalId is { } ext)
        {
            _byExternalId[ext] = id;
        }

        return id;
    }

    private void Apply(Customer customer, JsonObject body, ISet<string> replace)
    {
        var merged = (JsonObject)customer.Fields.DeepClone();
        Merge(merged, body, replace);
        Validate(merged);
        if (customer.ExternalId is { } oldExt && merged["externalId"]?.GetValue<string>() != oldExt)
        {
            _byExternalId.Remove(oldExt);
        }

        customer.Fields = merged;
        if (customer.ExternalId is { } ext)
        {
            _byExternalId[ext] = customer.Id;
        }

        customer.LastModifiedDate = Now();
    }

    private static void Merge(JsonObject target, JsonObject body, ISet<string> replace)
    {
        foreach (var (name, value) in body)
        {
            if (ReadOnlyFields.Contains(name))
            {
                continue;
            }

            if (!WritableFields.Contains(name) && !name.StartsWith("custentity", StringComparison.Ordinal))
            {
                throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: Invalid field name: {name}.", name);
            }

            if (name == "addressBook")
            {
                var items = value?["items"] as JsonArray;
                if (value is not null && items is null)
                {
                    throw new RecordValidationException("INVALID_CONTENT", "Error while accessing resource: addressBook must be an object with an items array.", "addressBook");
                }

                // Sublists merge line by line unless the request names them in ?replace=.
                var lines = replace.Contains("addressBook") || target["addressBook"] is not JsonObject existing
                    ? new JsonArray()
                    : (JsonArray)existing["items"]!.DeepClone();
                foreach (var item in items ?? [])
                {
                    lines.Add(item?.DeepClone());
                }

                target["addressBook"] = new JsonObject { ["items"] = lines };
                continue;
            }

            target[name] = value?.DeepClone();
        }
    }

    private void Validate(JsonObject c)
    {
        var isPerson = c["isPerson"]?.GetValueKind() == JsonValueKind.True;
        var company = c["companyName"]?.GetValueKind() == JsonValueKind.String ? c["companyName"]!.GetValue<string>() : null;
        if (!isPerson && string.IsNullOrWhiteSpace(company))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: Company Name", "companyName");
        }

        if (company is { Length: > 83 })
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: The field companyName contained more than the maximum number ( 83 ) of characters allowed.", "companyName");
        }

        if (isPerson && (string.IsNullOrWhiteSpace(c["firstName"]?.ToString()) || string.IsNullOrWhiteSpace(c["lastName"]?.ToString())))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: First Name, Last Name", isPerson ? "firstName" : null);
        }

        if (c["email"]?.ToString() is { Length: > 0 } email && !email.Contains('@', StringComparison.Ordinal))
        {
            throw new RecordValidationException("USER_ERROR", $"Error while accessing resource: {email} is not a valid email address.", "email");
        }

        if (c["subsidiary"] is { } sub && (sub["id"]?.ToString() is not { } subId || !long.TryParse(subId, out _)))
        {
            throw new RecordValidationException("INVALID_CONTENT", "Error while accessing resource: You have entered an Invalid Field Value for the following field: subsidiary", "subsidiary");
        }

        if ((c["externalId"]?.ToString() is { } ext && options.RejectedExternalIds.ContainsKey(ext))
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
