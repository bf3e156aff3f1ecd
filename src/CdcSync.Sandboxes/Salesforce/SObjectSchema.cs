namespace CdcSync.Sandboxes.Salesforce;

internal enum SFieldType
{
    Id,
    Reference,
    String,
    Boolean,
    Double,
    Int,
    DateTime,
    Date,
}

/// <summary>
/// One field. <see cref="Type"/> is how the value is stored and compared; <see cref="Display"/> is the
/// describe type when it differs (phone, url, email, textarea, picklist, currency, percent).
/// </summary>
internal sealed record SField(
    string Name,
    SFieldType Type,
    bool ReadOnly = false,
    bool Required = false,
    bool ExternalId = false,
    int Length = 255,
    string? Display = null,
    string? ReferenceTo = null,
    string? RelationshipName = null,
    string[]? Picklist = null,
    string? Compound = null)
{
    /// <summary>
    /// The compound field this one is part of (BillingStreet of BillingAddress, FirstName of Name), as
    /// change events nest them; its name there is <see cref="Part"/>.
    /// </summary>
    public string? Part => Compound is null ? null
        : Compound.EndsWith("Address", StringComparison.Ordinal) && Name.StartsWith(Compound[..^"Address".Length], StringComparison.Ordinal) ? Name[(Compound.Length - "Address".Length)..]
        : Name;

    public bool IsPhone => Display == "phone";

    /// <summary>The describe type: Salesforce's name for the field's type.</summary>
    public string DescribeType => Display ?? Type switch
    {
        SFieldType.Id => "id",
        SFieldType.Reference => "reference",
        SFieldType.Boolean => "boolean",
        SFieldType.Double => "double",
        SFieldType.Int => "int",
        SFieldType.DateTime => "datetime",
        SFieldType.Date => "date",
        _ => "string",
    };
}

/// <summary>The fields of one sObject type the sandbox serves. Field names are case-insensitive, as in the API.</summary>
internal sealed class SObjectSchema
{
    private readonly Dictionary<string, SField> _fields;

    private SObjectSchema(string name, string keyPrefix, string labelPlural, IEnumerable<SField> fields)
    {
        Name = name;
        KeyPrefix = keyPrefix;
        LabelPlural = labelPlural;
        Fields = [.. Common.Concat(fields)];
        _fields = Fields.ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
    }

    public string Name { get; }

    public string KeyPrefix { get; }

    public string LabelPlural { get; }

    public IReadOnlyList<SField> Fields { get; }

    public SField? Find(string name) => _fields.GetValueOrDefault(name);

    /// <summary>The field that must not be blank (Account.Name, Contact.LastName); checked against <see cref="SalesforceSandboxOptions.RejectedName"/>.</summary>
    public string NameField => Name == "Contact" ? "LastName" : "Name";

    public string Label => Name;

    private static readonly SField[] Common =
    [
        new("Id", SFieldType.Id, ReadOnly: true),
        new("IsDeleted", SFieldType.Boolean, ReadOnly: true),
        new("CreatedDate", SFieldType.DateTime, ReadOnly: true),
        new("LastModifiedDate", SFieldType.DateTime, ReadOnly: true),
        new("SystemModstamp", SFieldType.DateTime, ReadOnly: true),
        new("OwnerId", SFieldType.Reference),
        new("CdcSync_Id__c", SFieldType.String, ExternalId: true),
    ];

    public static readonly SObjectSchema Account = new("Account", "001", "Accounts",
    [
        new("Name", SFieldType.String, Required: true),
        new("AccountNumber", SFieldType.String, Length: 40),
        new("Type", SFieldType.String, Length: 40, Display: "picklist", Picklist: ["Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller", "Installation Partner", "Technology Partner", "Other"]),
        new("Industry", SFieldType.String, Length: 40, Display: "picklist", Picklist: ["Agriculture", "Banking", "Construction", "Education", "Electronics", "Energy", "Finance", "Healthcare", "Manufacturing", "Retail", "Technology", "Other"]),
        new("Phone", SFieldType.String, Length: 40, Display: "phone"),
        new("Website", SFieldType.String, Display: "url"),
        new("Description", SFieldType.String, Length: 32000, Display: "textarea"),
        new("BillingStreet", SFieldType.String, Compound: "BillingAddress"),
        new("BillingCity", SFieldType.String, Length: 40, Compound: "BillingAddress"),
        new("BillingState", SFieldType.String, Length: 80, Compound: "BillingAddress"),
        new("BillingPostalCode", SFieldType.String, Length: 20, Compound: "BillingAddress"),
        new("BillingCountry", SFieldType.String, Length: 80, Compound: "BillingAddress"),
        new("ShippingStreet", SFieldType.String, Compound: "ShippingAddress"),
        new("ShippingCity", SFieldType.String, Length: 40, Compound: "ShippingAddress"),
        new("ShippingState", SFieldType.String, Length: 80, Compound: "ShippingAddress"),
        new("ShippingPostalCode", SFieldType.String, Length: 20, Compound: "ShippingAddress"),
        new("ShippingCountry", SFieldType.String, Length: 80, Compound: "ShippingAddress"),
        new("AnnualRevenue", SFieldType.Double, Display: "currency"),
        new("NumberOfEmployees", SFieldType.Int),
        new("NetSuite_Id__c", SFieldType.String, Length: 40),
    ]);

    public static readonly SObjectSchema Contact = new("Contact", "003", "Contacts",
    [
        new("AccountId", SFieldType.Reference, ReferenceTo: "Account", RelationshipName: "Account"),
        new("FirstName", SFieldType.String, Length: 40, Compound: "Name"),
        new("LastName", SFieldType.String, Required: true, Length: 80, Compound: "Name"),
        new("Email", SFieldType.String, Length: 80, Display: "email"),
        new("Phone", SFieldType.String, Length: 40, Display: "phone"),
        new("Title", SFieldType.String, Length: 128),
    ]);

    /// <summary>Stage names and the probability Salesforce fills in when a write does not set one.</summary>
    public static readonly IReadOnlyDictionary<string, double> StageProbabilities = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase)
    {
        ["Prospecting"] = 10,
        ["Qualification"] = 10,
        ["Needs Analysis"] = 20,
        ["Value Proposition"] = 50,
        ["Id. Decision Makers"] = 60,
        ["Perception Analysis"] = 70,
        ["Proposal/Price Quote"] = 75,
        ["Negotiation/Review"] = 90,
        ["Closed Won"] = 100,
        ["Closed Lost"] = 0,
    };

    public static readonly SObjectSchema Opportunity = new("Opportunity", "006", "Opportunities",
    [
        new("AccountId", SFieldType.Reference, ReferenceTo: "Account", RelationshipName: "Account"),
        new("Name", SFieldType.String, Required: true, Length: 120),
        new("StageName", SFieldType.String, Required: true, Length: 40, Display: "picklist", Picklist: [.. StageProbabilities.Keys]),
        new("Amount", SFieldType.Double, Display: "currency"),
        new("CloseDate", SFieldType.Date, Required: true),
        new("Probability", SFieldType.Double, Display: "percent"),
        new("Description", SFieldType.String, Length: 32000, Display: "textarea"),
        new("IsClosed", SFieldType.Boolean, ReadOnly: true),
        new("IsWon", SFieldType.Boolean, ReadOnly: true),
        new("NetSuite_Id__c", SFieldType.String, Length: 40),
    ]);

    public static readonly IReadOnlyDictionary<string, SObjectSchema> All =
        new Dictionary<string, SObjectSchema>(StringComparer.OrdinalIgnoreCase) { ["Account"] = Account, ["Contact"] = Contact, ["Opportunity"] = Opportunity };

    /// <summary>Child relationships: (child type, reference field, relationship name) of the types whose references point here.</summary>
    public IEnumerable<(SObjectSchema Child, SField Field, string RelationshipName)> Children =>
        All.Values.SelectMany(child => child.Fields.Where(f => f.ReferenceTo == Name).Select(f => (child, f, child.LabelPlural)));

    /// <summary>The reference field whose relationship name is <paramref name="relationship"/> (Account in Contact.Account.Name).</summary>
    public SField? FindRelationship(string relationship) =>
        Fields.FirstOrDefault(f => f.RelationshipName is not null && f.RelationshipName.Equals(relationship, StringComparison.OrdinalIgnoreCase));

    public static SObjectSchema? ForId(string id) => All.Values.FirstOrDefault(s => id.StartsWith(s.KeyPrefix, StringComparison.Ordinal));
}
