using System.Text;

namespace CdcSync.Replication;

/// <summary>
/// A table as written in config: <c>name</c>, <c>schema.name</c>, or with double quotes when a
/// part holds a dot or a quote: <c>"my.schema"."Quoted""Name"</c>.
/// </summary>
internal readonly record struct TableName(string Schema, string Name)
{
    public static TableName Parse(string text, string defaultSchema = "public")
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '"')
            {
                if (quoted && i + 1 < text.Length && text[i + 1] == '"')
                {
                    current.Append('"');
                    i++;
                }
                else
                {
                    quoted = !quoted;
                }
            }
            else if (c == '.' && !quoted)
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        parts.Add(current.ToString());
        if (quoted || parts.Count > 2 || parts.Any(p => p.Length == 0))
        {
            throw new FormatException($"'{text}' is not a table name; write schema.table, quoting a part that holds a dot or a quote: \"my.schema\".\"Quoted\"\"Name\".");
        }

        return parts.Count == 1 ? new TableName(defaultSchema, parts[0]) : new TableName(parts[0], parts[1]);
    }

    public string Quoted => $"{Quote(Schema)}.{Quote(Name)}";

    public override string ToString() => Quoted;

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
