using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// The SOQL subset the sandbox understands:
/// <c>SELECT f1, f2 FROM Object [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]</c>,
/// where cond combines <c>field op literal</c> (=, !=, &lt;&gt;, &lt;, &lt;=, &gt;, &gt;=), <c>field [NOT] IN (...)</c>,
/// AND, OR, NOT and parentheses; literals are 'strings', numbers, true/false, null, dates and
/// datetimes (<c>2024-01-31T10:00:00Z</c>, <c>2024-01-31T10:00:00.000+02:00</c>).
/// </summary>
internal sealed class SoqlQuery
{
    public required SObjectSchema Schema { get; init; }

    public required IReadOnlyList<SField> Select { get; init; }

    public SoqlCondition? Where { get; init; }

    public IReadOnlyList<(SField Field, bool Descending, bool NullsLast)> OrderBy { get; init; } = [];

    public int? Limit { get; init; }

    public int Offset { get; init; }

    public static SoqlQuery Parse(string text) => new SoqlParser(text).ParseQuery();

    public List<StoredRecord> Run(IEnumerable<StoredRecord> records, bool includeDeleted)
    {
        var rows = records.Where(r => (includeDeleted || !r.IsDeleted) && (Where is null || Where.Matches(r))).ToList();
        if (OrderBy.Count > 0)
        {
            rows.Sort((a, b) =>
            {
                foreach (var (field, descending, nullsLast) in OrderBy)
                {
                    var x = a.Fields[field.Name];
                    var y = b.Fields[field.Name];
                    int c;
                    if (x is null || y is null)
                    {
                        c = x is null && y is null ? 0 : (x is null ? -1 : 1) * (nullsLast ? -1 : 1);
                        if (c != 0)
                        {
                            return c;
                        }

                        continue;
                    }

                    c = SoqlCompare.Compare(field, x, SoqlCompare.Literal(field, y)) * (descending ? -1 : 1);
                    if (c != 0)
                    {
                        return c;
                    }
                }

                return 0;
            });
        }

        IEnumerable<StoredRecord> result = rows.Skip(Offset);
        if (Limit is { } limit)
        {
            result = result.Take(limit);
        }

        return [.. result];
    }

    public JsonObject Project(StoredRecord record, string apiVersion)
    {
        var json = new JsonObject
        {
            ["attributes"] = new JsonObject { ["type"] = Schema.Name, ["url"] = $"/services/data/v{apiVersion}/sobjects/{Schema.Name}/{record.Id}" },
        };
        foreach (var field in Select)
        {
            json[field.Name] = record.Fields[field.Name]?.DeepClone();
        }

        return json;
    }
}

internal abstract class SoqlCondition
{
    public abstract bool Matches(StoredRecord record);
}

internal sealed class SoqlAnd(IReadOnlyList<SoqlCondition> parts) : SoqlCondition
{
    public override bool Matches(StoredRecord record) => parts.All(p => p.Matches(record));
}

internal sealed class SoqlOr(IReadOnlyList<SoqlCondition> parts) : SoqlCondition
{
    public override bool Matches(StoredRecord record) => parts.Any(p => p.Matches(record));
}

internal sealed class SoqlNot(SoqlCondition inner) : SoqlCondition
{
    public override bool Matches(StoredRecord record) => !inner.Matches(record);
}

internal sealed class SoqlComparison(SField field, string op, object? literal) : SoqlCondition
{
    public override bool Matches(StoredRecord record)
    {
        var value = record.Fields[field.Name];
        if (literal is null || value is null)
        {
            // SOQL: null only equals null; ordering comparisons with null match nothing.
            return op switch
            {
                "=" => literal is null && value is null,
                "!=" => (literal is null) != (value is null),
                _ => false,
            };
        }

        var c = field.Type == SFieldType.DateTime
            ? SoqlCompare.WholeSeconds((DateTimeOffset)SoqlCompare.Literal(field, value)).CompareTo(SoqlCompare.WholeSeconds((DateTimeOffset)literal))
            : SoqlCompare.Compare(field, value, literal);
        return op switch
        {
            "=" => c == 0,
            "!=" => c != 0,
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            ">=" => c >= 0,
            _ => false,
        };
    }
}

internal sealed class SoqlIn(SField field, IReadOnlyList<object?> literals, bool negated) : SoqlCondition
{
    public override bool Matches(StoredRecord record)
    {
        var value = record.Fields[field.Name];
        var found = literals.Any(l => (l is null && value is null) || (l is not null && value is not null && SoqlCompare.Compare(field, value, l) == 0));
        return found != negated;
    }
}

internal static class SoqlCompare
{
    public static int Compare(SField field, JsonNode value, object literal)
    {
        var left = Literal(field, value);
        return (left, literal) switch
        {
            (DateTimeOffset a, DateTimeOffset b) => a.CompareTo(b),
            (double a, double b) => a.CompareTo(b),
            (bool a, bool b) => a.CompareTo(b),
            // Ids compare by their 15-character case-sensitive form; text compares case-insensitively, as in SOQL.
            (string a, string b) when field.Type is SFieldType.Id or SFieldType.Reference =>
                string.CompareOrdinal(a[..Math.Min(15, a.Length)], b[..Math.Min(15, b.Length)]),
            (string a, string b) => string.Compare(a, b, StringComparison.OrdinalIgnoreCase),
            _ => throw new SandboxApiException(400, "INVALID_QUERY_FILTER_OPERATOR", $"invalid operator on field '{field.Name}' for a value of type {literal.GetType().Name}"),
        };
    }

    /// <summary>
    /// Salesforce stores datetimes to the millisecond but filters ignore the milliseconds: a record
    /// stamped 10:00:00.900 matches <c>SystemModstamp = 10:00:00Z</c> and not <c>&gt; 10:00:00.500Z</c>.
    /// </summary>
    public static DateTimeOffset WholeSeconds(DateTimeOffset value) => new(value.Ticks - (value.Ticks % TimeSpan.TicksPerSecond), value.Offset);

    /// <summary>Converts a stored JSON value to the comparable CLR value of its field type.</summary>
    public static object Literal(SField field, JsonNode value) => field.Type switch
    {
        SFieldType.DateTime => DateTimeOffset.Parse(value.ToString().Replace("+0000", "+00:00", StringComparison.Ordinal), CultureInfo.InvariantCulture),
        SFieldType.Double or SFieldType.Int => double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture),
        SFieldType.Boolean => value.GetValueKind() == System.Text.Json.JsonValueKind.True,
        _ => value.ToString(),
    };
}

internal sealed class SoqlParser(string text)
{
    private readonly List<string> _tokens = Tokenize(text);
    private int _pos;
    private SObjectSchema? _schema;

    public SoqlQuery ParseQuery()
    {
        Expect("SELECT");
        var selected = new List<string>();
        do
        {
            selected.Add(Next("a field name"));
        }
        while (TryTake(","));

        Expect("FROM");
        var objectName = Next("an object name");
        _schema = SObjectSchema.All.GetValueOrDefault(objectName)
            ?? throw new SandboxApiException(400, "INVALID_TYPE", $"sObject type '{objectName}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.");
        var select = selected.Select(Field).ToList();
        SoqlCondition? where = null;
        if (TryTake("WHERE"))
        {
            where = ParseOr();
        }

        var orderBy = new List<(SField, bool, bool)>();
        if (TryTake("ORDER"))
        {
            Expect("BY");
            do
            {
                var field = Field(Next("a field name"));
                var descending = TryTake("DESC");
                if (!descending)
                {
                    TryTake("ASC");
                }

                var nullsLast = descending;
                if (TryTake("NULLS"))
                {
                    nullsLast = TryTake("LAST");
                    if (!nullsLast)
                    {
                        Expect("FIRST");
                    }
                }

                orderBy.Add((field, descending, nullsLast));
            }
            while (TryTake(","));
        }

        int? limit = null;
        var offset = 0;
        if (TryTake("LIMIT"))
        {
            limit = Integer();
        }

        if (TryTake("OFFSET"))
        {
            offset = Integer();
        }

        if (_pos < _tokens.Count)
        {
            throw Malformed($"unexpected token: '{_tokens[_pos]}'");
        }

        return new SoqlQuery { Schema = _schema, Select = select, Where = where, OrderBy = orderBy, Limit = limit, Offset = offset };
    }

    private SoqlCondition ParseOr()
    {
        var parts = new List<SoqlCondition> { ParseAnd() };
        while (TryTake("OR"))
        {
            parts.Add(ParseAnd());
        }

        return parts.Count == 1 ? parts[0] : new SoqlOr(parts);
    }

    private SoqlCondition ParseAnd()
    {
        var parts = new List<SoqlCondition> { ParseUnary() };
        while (TryTake("AND"))
        {
            parts.Add(ParseUnary());
        }

        return parts.Count == 1 ? parts[0] : new SoqlAnd(parts);
    }

    private SoqlCondition ParseUnary()
    {
        if (TryTake("NOT"))
        {
            return new SoqlNot(ParseUnary());
        }

        if (TryTake("("))
        {
            var inner = ParseOr();
            Expect(")");
            return inner;
        }

        var field = Field(Next("a field name"));
        var negated = TryTake("NOT");
        if (TryTake("IN"))
        {
            Expect("(");
            var literals = new List<object?>();
            do
            {
                literals.Add(Literal(field));
            }
            while (TryTake(","));

            Expect(")");
            return new SoqlIn(field, literals, negated);
        }

        if (negated)
        {
            throw Malformed("expecting IN after NOT");
        }

        var op = Next("an operator");
        op = op == "<>" ? "!=" : op;
        if (op is not ("=" or "!=" or "<" or "<=" or ">" or ">="))
        {
            throw Malformed($"unexpected token: '{op}'");
        }

        return new SoqlComparison(field, op, Literal(field));
    }

    private object? Literal(SField field)
    {
        var token = Next("a value");
        if (token.Equals("null", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (token.StartsWith('\''))
        {
            if (field.Type is SFieldType.DateTime or SFieldType.Double or SFieldType.Int or SFieldType.Boolean)
            {
                throw new SandboxApiException(400, "INVALID_FIELD", $"value of filter criterion for field '{field.Name}' must be of type {TypeName(field)} and should not be enclosed in quotes");
            }

            return token[1..^1];
        }

        switch (field.Type)
        {
            case SFieldType.DateTime:
                var styles = DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal;
                string[] formats = ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFK", "yyyy-MM-dd"];
                if (DateTimeOffset.TryParseExact(token, formats, CultureInfo.InvariantCulture, styles, out var dt))
                {
                    return dt;
                }

                break;
            case SFieldType.Double or SFieldType.Int:
                if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                {
                    return d;
                }

                break;
            case SFieldType.Boolean:
                if (bool.TryParse(token, out var b))
                {
                    return b;
                }

                break;
        }

        throw new SandboxApiException(400, "INVALID_FIELD", $"value of filter criterion for field '{field.Name}' must be of type {TypeName(field)} and should be enclosed in quotes");
    }

    private static string TypeName(SField field) => field.Type switch
    {
        SFieldType.DateTime => "dateTime",
        SFieldType.Double => "double",
        SFieldType.Int => "integer",
        SFieldType.Boolean => "boolean",
        SFieldType.Id or SFieldType.Reference => "id",
        _ => "string",
    };

    private SField Field(string name) =>
        _schema!.Find(name)
        ?? throw new SandboxApiException(400, "INVALID_FIELD", $"No such column '{name}' on entity '{_schema.Name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.");

    private int Integer()
    {
        var token = Next("a number");
        return int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Malformed($"unexpected token: '{token}'");
    }

    private string Next(string what)
    {
        if (_pos >= _tokens.Count)
        {
            throw Malformed($"unexpected end of query, expecting {what}");
        }

        return _tokens[_pos++];
    }

    private bool TryTake(string keyword)
    {
        if (_pos < _tokens.Count && _tokens[_pos].Equals(keyword, StringComparison.OrdinalIgnoreCase))
        {
            _pos++;
            return true;
        }

        return false;
    }

    private void Expect(string keyword)
    {
        if (!TryTake(keyword))
        {
            throw Malformed(_pos < _tokens.Count ? $"unexpected token: '{_tokens[_pos]}', expecting {keyword}" : $"unexpected end of query, expecting {keyword}");
        }
    }

    private SandboxApiException Malformed(string detail) => new(400, "MALFORMED_QUERY", $"{Truncate(text)}\n{detail}");

    private static string Truncate(string s) => s.Length > 200 ? s[..200] + "..." : s;

    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '\'')
            {
                var sb = new StringBuilder("'");
                i++;
                while (i < text.Length && text[i] != '\'')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                        sb.Append(text[i] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', var other => other });
                    }
                    else
                    {
                        sb.Append(text[i]);
                    }

                    i++;
                }

                if (i >= text.Length)
                {
                    throw new SandboxApiException(400, "MALFORMED_QUERY", "unterminated string literal");
                }

                i++;
                tokens.Add(sb.Append('\'').ToString());
            }
            else if (c is '(' or ')' or ',')
            {
                tokens.Add(c.ToString());
                i++;
            }
            else if (c is '=' or '!' or '<' or '>')
            {
                var two = i + 1 < text.Length ? text.Substring(i, 2) : null;
                if (two is "!=" or "<=" or ">=" or "<>")
                {
                    tokens.Add(two);
                    i += 2;
                }
                else
                {
                    tokens.Add(c.ToString());
                    i++;
                }
            }
            else
            {
                var start = i;
                while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not ('(' or ')' or ',' or '=' or '!' or '<' or '>' or '\''))
                {
                    i++;
                }

                tokens.Add(text[start..i]);
            }
        }

        return tokens;
    }
}
