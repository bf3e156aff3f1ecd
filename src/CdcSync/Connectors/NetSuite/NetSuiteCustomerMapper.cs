using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Replication;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Maps a row of the customer staging table (SuiteTalk field names, lower-cased) to the record
/// service's JSON (camelCase, references as <c>{"id": ...}</c>, sublists as <c>{"items": [...]}</c>).
/// </summary>
internal static class NetSuiteCustomerMapper
{
    private static readonly (string Column, string Field)[] Scalars =
    [
        ("externalid", "externalId"),
        ("entityid", "entityId"),
        ("companyname", "companyName"),
        ("isperson", "isPerson"),
        ("firstname", "firstName"),
        ("lastname", "lastName"),
        ("email", "email"),
        ("phone", "phone"),
        ("url", "url"),
        ("isinactive", "isInactive"),
    ];

    /// <summary>The record body for a row; columns the stream did not send (unchanged TOAST) are left out.</summary>
    public static JsonObject ToRecord(RelationInfo relation, RowValues row)
    {
        var body = new JsonObject();
        foreach (var (column, field) in Scalars)
        {
            if (relation.TryGetOrdinal(column, out var i) && !row.IsUnchanged(i))
            {
                body[field] = ToNode(row.GetValue(relation, i));
            }
        }

        if (relation.TryGetOrdinal("subsidiary", out var s) && !row.IsUnchanged(s) && row.GetValue(relation, s) is { } subsidiary)
        {
            body["subsidiary"] = new JsonObject { ["id"] = Convert.ToString(subsidiary, CultureInfo.InvariantCulture) };
        }

        if (relation.TryGetOrdinal("addressbook", out var a) && !row.IsUnchanged(a))
        {
            var items = row.GetValue(relation, a) is string json ? JsonNode.Parse(json) as JsonArray : null;
            body["addressBook"] = new JsonObject { ["items"] = items ?? [] };
        }

        return body;
    }

    /// <summary>True when an update changed nothing NetSuite holds (e.g. only the internal id write-back or a timestamp).</summary>
    public static bool SameRecord(RelationInfo relation, RowValues oldRow, RowValues newRow) =>
        JsonNode.DeepEquals(ToRecord(relation, oldRow), ToRecord(relation, newRow));

    public static string? Text(RelationInfo relation, RowValues? row, string column) =>
        row is not null && relation.TryGetOrdinal(column, out var i) && !row.IsUnchanged(i) && row.GetValue(relation, i) is { } value
            ? Convert.ToString(value, CultureInfo.InvariantCulture)
            : null;

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        bool b => JsonValue.Create(b),
        string s => JsonValue.Create(s),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };
}
