using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>Field kinds of the record service, as the metadata catalog's JSON schema describes them.</summary>
internal enum NsFieldType
{
    String,
    Phone,
    Email,
    Url,
    Boolean,
    Number,
    Date,
    Reference,
    Sublist,
}

/// <summary>One body field of a record type; <see cref="Name"/> is the REST name (exact camelCase).</summary>
internal sealed record NsField(string Name, NsFieldType Type, string Title, bool ReadOnly = false, int MaxLength = 0, string? References = null);

/// <summary>
/// A record type the sandbox serves: its REST name, body fields, the prefix of its custom fields and
/// the rules NetSuite applies on save. Adding a type here is all it takes for the record service,
/// SuiteQL and the metadata catalog to serve it.
/// </summary>
internal sealed class NsRecordType
{
    private readonly Dictionary<string, NsField> _fields;
    private readonly Dictionary<string, NsField> _columns;

    private NsRecordType(string name, string title, string customFieldPrefix, long firstId, NsField[] fields, Action<JsonObject, NsRecordType, Func<string, long, bool>> defaultsAndRules, string? transactionType = null)
    {
        Name = name;
        TransactionType = transactionType;
        Title = title;
        CustomFieldPrefix = customFieldPrefix;
        FirstId = firstId;
        Fields = [.. fields, .. Common];
        _fields = Fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
        _columns = Fields.ToDictionary(f => f.Name.ToLowerInvariant(), StringComparer.Ordinal);
        DefaultsAndRules = defaultsAndRules;
    }

    public string Name { get; }

    public string Title { get; }

    /// <summary>Custom body fields of this type start with it (custentity on entities, custbody on transactions).</summary>
    public string CustomFieldPrefix { get; }

    public long FirstId { get; }

    /// <summary>For a transaction record, its <c>type</c> in SuiteQL's transaction table (Opprtnty); null otherwise.</summary>
    public string? TransactionType { get; }

    public IReadOnlyList<NsField> Fields { get; }

    /// <summary>Fills defaults and throws <see cref="RecordValidationException"/> for what NetSuite rejects on save; the callback tells whether a record of a type exists.</summary>
    public Action<JsonObject, NsRecordType, Func<string, long, bool>> DefaultsAndRules { get; }

    public NsField? Field(string name) => _fields.GetValueOrDefault(name);

    /// <summary>SuiteQL sees the same fields under lower-case names.</summary>
    public NsField? Column(string lowerName) => _columns.GetValueOrDefault(lowerName);

    private static readonly NsField[] Common =
    [
        new("id", NsFieldType.String, "Internal ID", ReadOnly: true),
        new("externalId", NsFieldType.String, "External ID"),
        new("dateCreated", NsFieldType.Date, "Date Created", ReadOnly: true),
        new("lastModifiedDate", NsFieldType.Date, "Last Modified Date", ReadOnly: true),
    ];

    public static readonly NsRecordType Customer = new(
        "customer",
        "Customer",
        "custentity",
        100,
        [
            new("entityId", NsFieldType.String, "Customer ID"),
            new("companyName", NsFieldType.String, "Company Name", MaxLength: 83),
            new("isPerson", NsFieldType.Boolean, "Type"),
            new("firstName", NsFieldType.String, "First Name"),
            new("lastName", NsFieldType.String, "Last Name"),
            new("email", NsFieldType.Email, "Email"),
            new("phone", NsFieldType.Phone, "Phone"),
            new("url", NsFieldType.Url, "Web Address"),
            new("comments", NsFieldType.String, "Comments"),
            new("subsidiary", NsFieldType.Reference, "Primary Subsidiary", References: "subsidiary"),
            new("isInactive", NsFieldType.Boolean, "Inactive"),
            new("addressBook", NsFieldType.Sublist, "Address Book"),
        ],
        CustomerRules);

    /// <summary>Opportunity: a transaction whose <c>entity</c> references a customer. <c>entityStatus</c> sets <c>status</c> and the default probability.</summary>
    public static readonly NsRecordType Opportunity = new(
        "opportunity",
        "Opportunity",
        "custbody",
        5000,
        [
            new("tranId", NsFieldType.String, "Opportunity #", ReadOnly: true),
            new("entity", NsFieldType.Reference, "Customer", References: "customer"),
            new("title", NsFieldType.String, "Title", MaxLength: 100),
            new("entityStatus", NsFieldType.Reference, "Status", References: "customerstatus"),
            new("status", NsFieldType.Reference, "Opportunity Status", ReadOnly: true),
            new("probability", NsFieldType.Number, "Probability (%)"),
            new("projectedTotal", NsFieldType.Number, "Projected Total"),
            new("expectedCloseDate", NsFieldType.Date, "Expected Close"),
            new("tranDate", NsFieldType.Date, "Date"),
            new("memo", NsFieldType.String, "Memo"),
        ],
        OpportunityRules,
        "Opprtnty");

    public static readonly IReadOnlyDictionary<string, NsRecordType> All =
        new Dictionary<string, NsRecordType>(StringComparer.OrdinalIgnoreCase) { ["customer"] = Customer, ["opportunity"] = Opportunity };

    /// <summary>The account's opportunity statuses (Setup > Sales > Customer Statuses): id, name, probability, resulting opportunity status.</summary>
    public static readonly IReadOnlyDictionary<string, (string Name, double Probability, string StatusId, string StatusName)> EntityStatuses =
        new Dictionary<string, (string, double, string, string)>(StringComparer.Ordinal)
        {
            ["8"] = ("In Discussion", 10, "inProgress", "In Progress"),
            ["9"] = ("Identified Decision Makers", 25, "inProgress", "In Progress"),
            ["10"] = ("Proposal", 50, "inProgress", "In Progress"),
            ["11"] = ("In Negotiation", 75, "inProgress", "In Progress"),
            ["13"] = ("Closed Won", 100, "closedWon", "Closed - Won"),
            ["14"] = ("Closed Lost", 0, "closedLost", "Closed - Lost"),
        };

    private static void CustomerRules(JsonObject c, NsRecordType type, Func<string, long, bool> exists)
    {
        var isPerson = c["isPerson"]?.GetValueKind() == JsonValueKind.True;
        var company = c["companyName"]?.GetValueKind() == JsonValueKind.String ? c["companyName"]!.GetValue<string>() : null;
        if (!isPerson && string.IsNullOrWhiteSpace(company))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: Company Name", "companyName");
        }

        if (isPerson && (string.IsNullOrWhiteSpace(c["firstName"]?.ToString()) || string.IsNullOrWhiteSpace(c["lastName"]?.ToString())))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: First Name, Last Name", "firstName");
        }

        if (c["email"]?.ToString() is { Length: > 0 } email && !email.Contains('@', StringComparison.Ordinal))
        {
            throw new RecordValidationException("USER_ERROR", $"Error while accessing resource: {email} is not a valid email address.", "email");
        }

        if (c["entityId"] is null)
        {
            c["entityId"] = company ?? $"{c["firstName"]?.GetValue<string>()} {c["lastName"]?.GetValue<string>()}".Trim();
        }

        c["isInactive"] ??= false;
        c["isPerson"] ??= false;
        c["subsidiary"] ??= new JsonObject { ["id"] = "1" };
        if (c["subsidiary"] is JsonObject sub)
        {
            sub["refName"] = sub["id"]?.ToString() == "1" ? "Parent Company" : "Subsidiary " + sub["id"];
        }
    }

    private static void OpportunityRules(JsonObject o, NsRecordType type, Func<string, long, bool> exists)
    {
        if (o["entity"] is not JsonObject entity || entity["id"]?.ToString() is not { Length: > 0 } entityId)
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: Customer", "entity");
        }

        if (!long.TryParse(entityId, NumberStyles.None, CultureInfo.InvariantCulture, out var customerId) || !exists("customer", customerId))
        {
            throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: You have entered an Invalid Field Value {entityId} for the following field: entity", "entity");
        }

        if (string.IsNullOrWhiteSpace(o["title"]?.ToString()))
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Please enter value(s) for: Title", "title");
        }

        o["entityStatus"] ??= new JsonObject { ["id"] = "8" };
        var statusId = o["entityStatus"]?["id"]?.ToString();
        if (statusId is null || !EntityStatuses.TryGetValue(statusId, out var status))
        {
            throw new RecordValidationException("INVALID_CONTENT", $"Error while accessing resource: You have entered an Invalid Field Value {statusId} for the following field: entityStatus", "entityStatus");
        }

        o["entityStatus"] = new JsonObject { ["id"] = statusId, ["refName"] = status.Name };
        o["status"] = new JsonObject { ["id"] = status.StatusId, ["refName"] = status.StatusName };
        o["probability"] ??= status.Probability;
        if (o["probability"]?.GetValue<double>() is < 0 or > 100)
        {
            throw new RecordValidationException("USER_ERROR", "Error while accessing resource: Invalid probability: it must be between 0 and 100.", "probability");
        }
    }
}
