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
}

internal sealed record SField(string Name, SFieldType Type, bool ReadOnly = false, bool Required = false, bool ExternalId = false, int Length = 255);

/// <summary>The fields of one sObject type the sandbox serves. Field names are case-insensitive, as in the API.</summary>
internal sealed class SObjectSchema
{
    private readonly Dictionary<string, SField> _fields;

    private SObjectSchema(string name, string keyPrefix, IEnumerable<SField> fields)
    {
        Name = name;
        KeyPrefix = keyPrefix;
        Fields = [.. Common.Concat(fields)];
        _fields = Fields.ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
    }

    public string Name { get; }

    public string KeyPrefix { get; }

    public IReadOnlyList<SField> Fields { get; }

    public SField? Find(string name) => _fields.GetValueOrDefault(name);

    /// <summary>The field that must not be blank (Account.Name, Contact.LastName); checked against <see cref="SalesforceSandboxOptions.RejectedName"/>.</summary>
    public string NameField => Name == "Contact" ? "LastName" : "Name";

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

    public static readonly SObjectSchema Account = new("Account", "001",
    [
        new("Name", SFieldType.String, Required: true),
        new("AccountNumber", SFieldType.String, Length: 40),
        new("Type", SFieldType.String, Length: 40),
        new("Industry", SFieldType.String, Length: 40),
        new("Phone", SFieldType.String, Length: 40),
        new("Website", SFieldType.String),
        new("BillingStreet", SFieldType.String),
        new("BillingCity", SFieldType.String, Length: 40),
        new("BillingState", SFieldType.String, Length: 80),
        new("BillingPostalCode", SFieldType.String, Length: 20),
        new("BillingCountry", SFieldType.String, Length: 80),
        new("ShippingStreet", SFieldType.String),
        new("ShippingCity", SFieldType.String, Length: 40),
        new("ShippingState", SFieldType.String, Length: 80),
        new("ShippingPostalCode", SFieldType.String, Length: 20),
        new("ShippingCountry", SFieldType.String, Length: 80),
        new("AnnualRevenue", SFieldType.Double),
        new("NumberOfEmployees", SFieldType.Int),
        new("NetSuite_Id__c", SFieldType.String, Length: 40),
    ]);

    public static readonly SObjectSchema Contact = new("Contact", "003",
    [
        new("AccountId", SFieldType.Reference),
        new("FirstName", SFieldType.String, Length: 40),
        new("LastName", SFieldType.String, Required: true, Length: 80),
        new("Email", SFieldType.String, Length: 80),
        new("Phone", SFieldType.String, Length: 40),
        new("Title", SFieldType.String, Length: 128),
    ]);

    public static readonly IReadOnlyDictionary<string, SObjectSchema> All =
        new Dictionary<string, SObjectSchema>(StringComparer.OrdinalIgnoreCase) { ["Account"] = Account, ["Contact"] = Contact };

    public static SObjectSchema? ForId(string id) => All.Values.FirstOrDefault(s => id.StartsWith(s.KeyPrefix, StringComparison.Ordinal));
}
