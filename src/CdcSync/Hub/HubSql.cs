using System.Globalization;
using System.Text.Json;
using NpgsqlTypes;

namespace CdcSync.Hub;

/// <summary>How the hub's SQL is spelled from C#: identifiers quoted, values as text cast by the server.</summary>
internal static class HubSql
{
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Values travel as text and are cast by the server to the column's type.</summary>
    public static string? ToText(object? value) => value switch
    {
        null => null,
        DBNull => null,
        string s => s,
        bool b => b ? "true" : "false",
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        JsonElement { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } => null,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        JsonElement e => e.GetRawText(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value),
    };
}
