using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// The SOQL the sandbox understands:
/// <c>SELECT items FROM Object [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]</c>.
/// Items are fields, parent fields (<c>Account.Name</c>), child subqueries
/// (<c>(SELECT Id FROM Contacts WHERE ... ORDER BY ... LIMIT n)</c>), <c>COUNT()</c> or <c>COUNT(field) [alias]</c>.
/// Conditions combine <c>path op literal</c> (=, !=, &lt;&gt;, &lt;, &lt;=, &gt;, &gt;=), <c>path LIKE 'pattern'</c>,
/// <c>path [NOT] IN (...)</c>, AND, OR, NOT and parentheses; literals are 'strings', numbers,
/// true/false, null, dates (<c>2024-01-31</c>), datetimes (<c>2024-01-31T10:00:00Z</c>) and date
/// literals (TODAY, YESTERDAY, LAST_N_DAYS:n, THIS_MONTH, ...; the sandbox's user is in UTC).
/// Errors have Salesforce's shape: MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE with the query,
/// a caret under the offending token and <c>ERROR at Row:r:Column:c</c>.
/// </summary>
internal sealed class SoqlQuery
{
    public required SObjectSchema Schema { get; init; }

    public required IReadOnlyList<SoqlItem> Select { get; init; }

    public SoqlCondition? Where { get; init; }

    public IReadOnlyList<(SoqlPath Path, bool Descending, bool NullsLast)> OrderBy { get; init; } = [];

    public int? Limit { get; init; }

    public int Offset { get; init; }

    /// <summary>In a child subquery, the child's reference to the outer record.</summary>
    public SField? ParentField { get; init; }

    /// <summary><c>SELECT COUNT() FROM ...</c>: the answer is totalSize alone, with no records.</summary>
    public bool IsCountOnly => Select is [SoqlCount { Field: null }];

    /// <summary><c>SELECT COUNT(field) FROM ...</c>: one AggregateResult row.</summary>
    public bool IsAggregate => Select.Any(i => i is SoqlCount { Field: not null });

    public static SoqlQuery Parse(string text, DateTimeOffset now) => new SoqlParser(text, now).ParseQuery();

    public List<StoredRecord> Run(IEnumerable<StoredRecord> records, SalesforceStore store, bool includeDeleted)
    {
        var rows = records.Where(r => (includeDeleted || !r.IsDeleted) && (Where is null || Where.Matches(r, store))).ToList();
        if (OrderBy.Count > 0)
        {
            rows.Sort((a, b) =>
            {
                foreach (var (path, descending, nullsLast) in OrderBy)
                {
                    var x = path.Value(a, store);
                    var y = path.Value(b, store);
                    if (x is null || y is null)
                    {
                        var n = x is null && y is null ? 0 : (x is null ? -1 : 1) * (nullsLast ? -1 : 1);
                        if (n != 0)
                        {
                            return n;
                        }

                        continue;
                    }

                    var c = SoqlCompare.Compare(path.Field, x, SoqlCompare.Literal(path.Field, y)) * (descending ? -1 : 1);
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

    public JsonObject Project(StoredRecord record, SalesforceStore store, string apiVersion, bool includeDeleted)
    {
        var json = Attributes(record.Schema, record.Id, apiVersion);
        foreach (var item in Select)
        {
            switch (item)
            {
                case SoqlPath { Relationships.Count: 0 } path:
                    json[path.Field.Name] = record.Fields[path.Field.Name]?.DeepClone();
                    break;
                case SoqlPath path:
                    ProjectParent(json, record, path, store, apiVersion);
                    break;
                case SoqlSubquery sub:
                    var children = sub.Query.Run(store.All(sub.Query.Schema).Where(c => c.Fields[sub.ParentField.Name]?.ToString() == record.Id), store, includeDeleted);
                    json[sub.RelationshipName] = children.Count == 0 ? null : new JsonObject
                    {
                        ["totalSize"] = children.Count,
                        ["done"] = true,
                        ["records"] = new JsonArray([.. children.Select(c => (JsonNode)sub.Query.Project(c, store, apiVersion, includeDeleted))]),
                    };
                    break;
            }
        }

        return json;
    }

    /// <summary>The single AggregateResult row of <c>COUNT(field)</c>: counts the rows whose field is not null.</summary>
    public JsonObject Aggregate(List<StoredRecord> rows, SalesforceStore store)
    {
        var json = new JsonObject { ["attributes"] = new JsonObject { ["type"] = "AggregateResult" } };
        var expr = 0;
        foreach (var item in Select)
        {
            if (item is SoqlCount { Field: { } field } count)
            {
                json[count.Alias ?? "expr" + expr++.ToString(CultureInfo.InvariantCulture)] = rows.Count(r => field.Value(r, store) is not null);
            }
        }

        return json;
    }

    private static JsonObject Attributes(SObjectSchema schema, string id, string apiVersion) => new()
    {
        ["attributes"] = new JsonObject { ["type"] = schema.Name, ["url"] = $"/services/data/v{apiVersion}/sobjects/{schema.Name}/{id}" },
    };

    private static void ProjectParent(JsonObject json, StoredRecord record, SoqlPath path, SalesforceStore store, string apiVersion)
    {
        var target = json;
        var current = record;
        foreach (var relationship in path.Relationships)
        {
            var parent = current.Fields[relationship.Name]?.ToString() is { } parentId ? store.Get(parentId) : null;
            var name = relationship.RelationshipName!;
            if (parent is null)
            {
                // A missing parent is null; an already projected sibling field keeps its object.
                if (!target.ContainsKey(name))
                {
                    target[name] = null;
                }

                return;
            }

            if (target[name] is not JsonObject nested)
            {
                nested = Attributes(parent.Schema, parent.Id, apiVersion);
                target[name] = nested;
            }

            target = nested;
            current = parent;
        }

        target[path.Field.Name] = current.Fields[path.Field.Name]?.DeepClone();
    }
}

/// <summary>One item of a SELECT list.</summary>
internal abstract class SoqlItem;

/// <summary>A field, possibly through parent relationships: <c>Account.Owner.Name</c> is two relationships and a field.</summary>
internal sealed class SoqlPath(IReadOnlyList<SField> relationships, SField field) : SoqlItem
{
    public IReadOnlyList<SField> Relationships { get; } = relationships;

    public SField Field { get; } = field;

    public JsonNode? Value(StoredRecord record, SalesforceStore store)
    {
        var current = record;
        foreach (var relationship in Relationships)
        {
            if (current.Fields[relationship.Name]?.ToString() is not { } parentId || store.Get(parentId) is not { } parent)
            {
                return null;
            }

            current = parent;
        }

        return current.Fields[Field.Name];
    }
}

internal sealed class SoqlSubquery(string relationshipName, SField parentField, SoqlQuery query) : SoqlItem
{
    public string RelationshipName { get; } = relationshipName;

    /// <summary>The child's reference field that points at the outer record (Contact.AccountId).</summary>
    public SField ParentField { get; } = parentField;

    public SoqlQuery Query { get; } = query;
}

internal sealed class SoqlCount(SoqlPath? field, string? alias) : SoqlItem
{
    public SoqlPath? Field { get; } = field;

    public string? Alias { get; } = alias;
}

/// <summary>A date literal (TODAY, LAST_N_DAYS:7, ...): the half-open UTC range [Start, End) it stands for.</summary>
internal sealed record SoqlDateRange(DateTimeOffset Start, DateTimeOffset End);

internal abstract class SoqlCondition
{
    public abstract bool Matches(StoredRecord record, SalesforceStore store);
}

internal sealed class SoqlAnd(IReadOnlyList<SoqlCondition> parts) : SoqlCondition
{
    public override bool Matches(StoredRecord record, SalesforceStore store) => parts.All(p => p.Matches(record, store));
}

internal sealed class SoqlOr(IReadOnlyList<SoqlCondition> parts) : SoqlCondition
{
    public override bool Matches(StoredRecord record, SalesforceStore store) => parts.Any(p => p.Matches(record, store));
}

internal sealed class SoqlNot(SoqlCondition inner) : SoqlCondition
{
    public override bool Matches(StoredRecord record, SalesforceStore store) => !inner.Matches(record, store);
}

internal sealed class SoqlComparison(SoqlPath path, string op, object? literal) : SoqlCondition
{
    public override bool Matches(StoredRecord record, SalesforceStore store)
    {
        var value = path.Value(record, store);
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

        if (literal is SoqlDateRange range)
        {
            var v = path.Field.Type == SFieldType.DateTime
                ? SoqlCompare.WholeSeconds((DateTimeOffset)SoqlCompare.Literal(path.Field, value))
                : (DateTimeOffset)SoqlCompare.Literal(path.Field, value);
            return op switch
            {
                "=" => v >= range.Start && v < range.End,
                "!=" => v < range.Start || v >= range.End,
                "<" => v < range.Start,
                "<=" => v < range.End,
                ">" => v >= range.End,
                ">=" => v >= range.Start,
                _ => false,
            };
        }

        var c = path.Field.Type == SFieldType.DateTime
            ? SoqlCompare.WholeSeconds((DateTimeOffset)SoqlCompare.Literal(path.Field, value)).CompareTo(SoqlCompare.WholeSeconds((DateTimeOffset)literal))
            : SoqlCompare.Compare(path.Field, value, literal);
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

internal sealed class SoqlIn(SoqlPath path, IReadOnlyList<object?> literals, bool negated) : SoqlCondition
{
    public override bool Matches(StoredRecord record, SalesforceStore store)
    {
        var value = path.Value(record, store);
        var found = literals.Any(l => (l is null && value is null) || (l is not null && value is not null && SoqlCompare.Compare(path.Field, value, l) == 0));
        return found != negated;
    }
}

/// <summary><c>LIKE</c>: % is any run of characters, _ one character, \% and \_ themselves; case-insensitive.</summary>
internal sealed class SoqlLike(SoqlPath path, string pattern) : SoqlCondition
{
    private readonly Regex _regex = new(
        "^" + Regex.Replace(pattern, @"\\[%_]|%|_|[^%_\\]+|\\", m => m.Value switch
        {
            "%" => ".*",
            "_" => ".",
            @"\%" => "%",
            @"\_" => "_",
            var text => Regex.Escape(text),
        }) + "$",
        RegexOptions.IgnoreCase | RegexOptions.Singleline | RegexOptions.CultureInvariant,
        TimeSpan.FromSeconds(1));

    public override bool Matches(StoredRecord record, SalesforceStore store) =>
        path.Value(record, store)?.ToString() is { } value && _regex.IsMatch(value);
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
        SFieldType.Date => DateTimeOffset.ParseExact(value.ToString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
        SFieldType.Double or SFieldType.Int => double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture),
        SFieldType.Boolean => value.GetValueKind() == System.Text.Json.JsonValueKind.True,
        _ => value.ToString(),
    };
}

internal sealed class SoqlParser
{
    private readonly string _text;
    private readonly DateTimeOffset _now;
    private readonly List<(string Text, int Position)> _tokens;
    private int _pos;

    public SoqlParser(string text, DateTimeOffset now)
    {
        _text = text;
        _now = now;
        _tokens = Tokenize(text);
    }

    public SoqlQuery ParseQuery()
    {
        var query = ParseSelect(null);
        if (_pos < _tokens.Count)
        {
            throw Malformed($"unexpected token: '{_tokens[_pos].Text}'");
        }

        return query;
    }

    /// <summary>Parses SELECT ... up to the end or, in a subquery, the closing parenthesis. <paramref name="parent"/> is the outer object of a subquery.</summary>
    private SoqlQuery ParseSelect(SObjectSchema? parent)
    {
        Expect("SELECT");
        var selected = new List<Func<SObjectSchema, SoqlItem>>();
        do
        {
            selected.Add(ParseItem());
        }
        while (TryTake(","));

        Expect("FROM");
        var objectAt = _pos;
        var objectName = Next("an object name");
        SObjectSchema schema;
        SField? parentField = null;
        if (parent is null)
        {
            schema = SObjectSchema.All.GetValueOrDefault(objectName)
                ?? throw Error("INVALID_TYPE", objectAt, $"sObject type '{objectName}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.");
        }
        else
        {
            var child = parent.Children.FirstOrDefault(c => c.RelationshipName.Equals(objectName, StringComparison.OrdinalIgnoreCase));
            if (child.Child is null)
            {
                throw Error("INVALID_TYPE", objectAt, $"Didn't understand relationship '{objectName}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.");
            }

            schema = child.Child;
            parentField = child.Field;
        }

        var items = selected.Select(build => build(schema)).ToList();
        if (parent is not null && items.Any(i => i is SoqlSubquery or SoqlCount))
        {
            throw Error("MALFORMED_QUERY", objectAt, "Nesting of semi join sub-selects or aggregates in a relationship query is not supported");
        }

        SoqlCondition? where = null;
        if (TryTake("WHERE"))
        {
            where = ParseOr(schema);
        }

        var orderBy = new List<(SoqlPath, bool, bool)>();
        if (TryTake("ORDER"))
        {
            Expect("BY");
            do
            {
                var orderAt = _pos;
                var path = Path(schema, orderAt, Next("a field name"));
                if (path.Field.Display == "textarea")
                {
                    throw Error("INVALID_FIELD", orderAt, $"field '{path.Field.Name}' can not be sorted in a query call");
                }

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

                orderBy.Add((path, descending, nullsLast));
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

        var query = new SoqlQuery { Schema = schema, Select = items, Where = where, OrderBy = orderBy, Limit = limit, Offset = offset, ParentField = parentField };
        if (items.Any(i => i is SoqlCount) && items.Any(i => i is not SoqlCount))
        {
            throw Error("MALFORMED_QUERY", objectAt, "Field must be grouped or aggregated: the sandbox supports COUNT() and COUNT(field) without GROUP BY");
        }

        return query;
    }

    /// <summary>An item is resolved once the FROM object is known, hence a function of the schema.</summary>
    private Func<SObjectSchema, SoqlItem> ParseItem()
    {
        var at = _pos;
        if (TryTake("("))
        {
            // The subquery's FROM names a child relationship of the outer object, which is known only
            // after the outer FROM: skip it now, parse it when the item is resolved.
            var subqueryStart = _pos;
            SkipSubquery();
            return schema =>
            {
                var saved = _pos;
                _pos = subqueryStart;
                var sub = ParseSelect(schema);
                Expect(")");
                _pos = saved;
                var parentField = sub.ParentField!;
                var relationship = schema.Children.First(c => c.Field == parentField && c.Child == sub.Schema).RelationshipName;
                return new SoqlSubquery(relationship, parentField, sub);
            };
        }

        var token = Next("a field name");
        if (token.Equals("COUNT", StringComparison.OrdinalIgnoreCase) && TryTake("("))
        {
            if (TryTake(")"))
            {
                return _ => new SoqlCount(null, null);
            }

            var fieldAt = _pos;
            var fieldName = Next("a field name");
            Expect(")");
            var alias = Peek() is { } a && a != "," && !a.Equals("FROM", StringComparison.OrdinalIgnoreCase) ? Next("an alias") : null;
            return schema => new SoqlCount(Path(schema, fieldAt, fieldName), alias);
        }

        return schema => Path(schema, at, token);
    }

    /// <summary>Moves past a subquery's tokens, to its closing parenthesis.</summary>
    private void SkipSubquery()
    {
        var depth = 1;
        while (depth > 0)
        {
            var token = Next("')'");
            depth += token switch { "(" => 1, ")" => -1, _ => 0 };
        }
    }

    private SoqlCondition ParseOr(SObjectSchema schema)
    {
        var parts = new List<SoqlCondition> { ParseAnd(schema) };
        while (TryTake("OR"))
        {
            parts.Add(ParseAnd(schema));
        }

        return parts.Count == 1 ? parts[0] : new SoqlOr(parts);
    }

    private SoqlCondition ParseAnd(SObjectSchema schema)
    {
        var parts = new List<SoqlCondition> { ParseUnary(schema) };
        while (TryTake("AND"))
        {
            parts.Add(ParseUnary(schema));
        }

        return parts.Count == 1 ? parts[0] : new SoqlAnd(parts);
    }

    private SoqlCondition ParseUnary(SObjectSchema schema)
    {
        if (TryTake("NOT"))
        {
            return new SoqlNot(ParseUnary(schema));
        }

        if (TryTake("("))
        {
            var inner = ParseOr(schema);
            Expect(")");
            return inner;
        }

        var pathAt = _pos;
        var path = Path(schema, pathAt, Next("a field name"));
        if (path.Field.Display == "textarea")
        {
            throw Error("INVALID_FIELD", pathAt, $"field '{path.Field.Name}' can not be filtered in a query call");
        }

        var negated = TryTake("NOT");
        if (TryTake("IN"))
        {
            Expect("(");
            var literals = new List<object?>();
            do
            {
                literals.Add(Literal(path.Field));
            }
            while (TryTake(","));

            Expect(")");
            return new SoqlIn(path, literals, negated);
        }

        if (negated)
        {
            throw Malformed("expecting IN after NOT");
        }

        if (TryTake("LIKE"))
        {
            var at = _pos;
            var pattern = Next("a pattern");
            if (!pattern.StartsWith('\''))
            {
                throw Error("MALFORMED_QUERY", at, $"unexpected token: '{pattern}': LIKE takes a quoted pattern");
            }

            if (path.Field.Type is not (SFieldType.String or SFieldType.Id or SFieldType.Reference))
            {
                throw Error("INVALID_FIELD", at, $"invalid operator on field '{path.Field.Name}': LIKE applies to text fields");
            }

            return new SoqlLike(path, pattern[1..^1]);
        }

        var opAt = _pos;
        var op = Next("an operator");
        op = op == "<>" ? "!=" : op;
        if (op is not ("=" or "!=" or "<" or "<=" or ">" or ">="))
        {
            throw Error("MALFORMED_QUERY", opAt, $"unexpected token: '{op}'");
        }

        return new SoqlComparison(path, op, Literal(path.Field));
    }

    private object? Literal(SField field)
    {
        var at = _pos;
        var token = Next("a value");
        if (token.Equals("null", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (token.StartsWith('\''))
        {
            if (field.Type is SFieldType.DateTime or SFieldType.Date or SFieldType.Double or SFieldType.Int or SFieldType.Boolean)
            {
                throw Error("INVALID_FIELD", at, $"value of filter criterion for field '{field.Name}' must be of type {TypeName(field)} and should not be enclosed in quotes");
            }

            return token[1..^1].Replace(@"\%", "%", StringComparison.Ordinal).Replace(@"\_", "_", StringComparison.Ordinal);
        }

        switch (field.Type)
        {
            case SFieldType.DateTime or SFieldType.Date:
                if (DateLiteral(token, at) is { } range)
                {
                    return range;
                }

                var styles = DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal;
                string[] formats = field.Type == SFieldType.Date ? ["yyyy-MM-dd"] : ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFK", "yyyy-MM-dd"];
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

        throw Error("INVALID_FIELD", at, $"value of filter criterion for field '{field.Name}' must be of type {TypeName(field)} and should {(field.Type is SFieldType.String or SFieldType.Id or SFieldType.Reference ? "" : "not ")}be enclosed in quotes");
    }

    /// <summary>Salesforce's date literals, in the sandbox user's time zone (UTC); weeks start on Sunday.</summary>
    private SoqlDateRange? DateLiteral(string token, int at)
    {
        var today = new DateTimeOffset(_now.UtcDateTime.Date, TimeSpan.Zero);
        var week = today.AddDays(-(int)today.DayOfWeek);
        var month = new DateTimeOffset(today.Year, today.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var year = new DateTimeOffset(today.Year, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var colon = token.IndexOf(':', StringComparison.Ordinal);
        var name = (colon < 0 ? token : token[..colon]).ToUpperInvariant();
        if (!char.IsAsciiLetter(name.FirstOrDefault()))
        {
            return null;
        }

        if (colon >= 0)
        {
            if (!int.TryParse(token[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                throw Error("MALFORMED_QUERY", at, $"unexpected token: '{token}': {name}:n takes a whole number");
            }

            return name switch
            {
                "LAST_N_DAYS" => new(today.AddDays(-n), today.AddDays(1)),
                "NEXT_N_DAYS" => new(today.AddDays(1), today.AddDays(n + 1)),
                "N_DAYS_AGO" => new(today.AddDays(-n), today.AddDays(-n + 1)),
                "LAST_N_WEEKS" => new(week.AddDays(-7 * n), week),
                "NEXT_N_WEEKS" => new(week.AddDays(7), week.AddDays(7 * (n + 1))),
                "LAST_N_MONTHS" => new(month.AddMonths(-n), month),
                "NEXT_N_MONTHS" => new(month.AddMonths(1), month.AddMonths(n + 1)),
                "LAST_N_YEARS" => new(year.AddYears(-n), year),
                "NEXT_N_YEARS" => new(year.AddYears(1), year.AddYears(n + 1)),
                _ => throw Error("MALFORMED_QUERY", at, $"unexpected token: '{token}'"),
            };
        }

        return name switch
        {
            "TODAY" => new(today, today.AddDays(1)),
            "YESTERDAY" => new(today.AddDays(-1), today),
            "TOMORROW" => new(today.AddDays(1), today.AddDays(2)),
            "THIS_WEEK" => new(week, week.AddDays(7)),
            "LAST_WEEK" => new(week.AddDays(-7), week),
            "NEXT_WEEK" => new(week.AddDays(7), week.AddDays(14)),
            "THIS_MONTH" => new(month, month.AddMonths(1)),
            "LAST_MONTH" => new(month.AddMonths(-1), month),
            "NEXT_MONTH" => new(month.AddMonths(1), month.AddMonths(2)),
            "LAST_90_DAYS" => new(today.AddDays(-90), today.AddDays(1)),
            "NEXT_90_DAYS" => new(today.AddDays(1), today.AddDays(91)),
            "THIS_YEAR" => new(year, year.AddYears(1)),
            "LAST_YEAR" => new(year.AddYears(-1), year),
            "NEXT_YEAR" => new(year.AddYears(1), year.AddYears(2)),
            _ => null,
        };
    }

    private static string TypeName(SField field) => field.Type switch
    {
        SFieldType.DateTime => "dateTime",
        SFieldType.Date => "date",
        SFieldType.Double => "double",
        SFieldType.Int => "integer",
        SFieldType.Boolean => "boolean",
        SFieldType.Id or SFieldType.Reference => "id",
        _ => "string",
    };

    /// <summary>Resolves <c>Field</c> or <c>Parent.Field</c> (through relationship names) on <paramref name="schema"/>.</summary>
    private SoqlPath Path(SObjectSchema schema, int at, string name)
    {
        var parts = name.Split('.');
        var relationships = new List<SField>();
        var current = schema;
        foreach (var part in parts[..^1])
        {
            var relationship = current.FindRelationship(part);
            if (relationship is null || !SObjectSchema.All.TryGetValue(relationship.ReferenceTo!, out var parent))
            {
                throw Error("INVALID_FIELD", at, $"Didn't understand relationship '{part}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.");
            }

            relationships.Add(relationship);
            current = parent;
        }

        var field = current.Find(parts[^1])
            ?? throw Error("INVALID_FIELD", at, $"No such column '{parts[^1]}' on entity '{current.Name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.");
        return new SoqlPath(relationships, field);
    }

    private int Integer()
    {
        var at = _pos;
        var token = Next("a number");
        return int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Error("MALFORMED_QUERY", at, $"unexpected token: '{token}'");
    }

    private string? Peek() => _pos < _tokens.Count ? _tokens[_pos].Text : null;

    private string Next(string what)
    {
        if (_pos >= _tokens.Count)
        {
            throw Malformed($"unexpected token: <EOF>, expecting {what}");
        }

        return _tokens[_pos++].Text;
    }

    private bool TryTake(string keyword)
    {
        if (_pos < _tokens.Count && _tokens[_pos].Text.Equals(keyword, StringComparison.OrdinalIgnoreCase))
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
            throw Malformed(_pos < _tokens.Count ? $"unexpected token: '{_tokens[_pos].Text}', expecting {keyword}" : $"unexpected token: <EOF>, expecting {keyword}");
        }
    }

    private SandboxApiException Malformed(string detail) => Error("MALFORMED_QUERY", _pos, detail);

    /// <summary>
    /// Salesforce's query error message: the query line, a caret under the token at fault, its row and
    /// column (1-based), then the reason.
    /// </summary>
    private SandboxApiException Error(string code, int tokenIndex, string detail)
    {
        var offset = tokenIndex < _tokens.Count ? _tokens[tokenIndex].Position : _text.Length;
        var lineStart = _text.LastIndexOf('\n', Math.Max(0, offset - 1)) is var nl && nl >= 0 && nl < offset ? nl + 1 : 0;
        var lineEnd = _text.IndexOf('\n', offset) is var e && e >= 0 ? e : _text.Length;
        var row = _text.AsSpan(0, lineStart).Count('\n') + 1;
        var column = offset - lineStart + 1;
        var line = _text[lineStart..lineEnd].TrimEnd('\r');
        return new SandboxApiException(400, code, $"\n{line}\n{new string(' ', column - 1)}^\nERROR at Row:{row}:Column:{column}\n{detail}");
    }

    private static List<(string Text, int Position)> Tokenize(string text)
    {
        var tokens = new List<(string, int)>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            var start = i;
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

                        // \% and \_ stay escaped: they mean a literal % or _ in a LIKE pattern.
                        sb.Append(text[i] switch { 'n' => "\n", 't' => "\t", 'r' => "\r", '%' => @"\%", '_' => @"\_", var other => other.ToString() });
                    }
                    else
                    {
                        sb.Append(text[i]);
                    }

                    i++;
                }

                if (i >= text.Length)
                {
                    throw new SandboxApiException(400, "MALFORMED_QUERY", $"\n{text}\n{new string(' ', start)}^\nERROR at Row:1:Column:{start + 1}\nunterminated string literal");
                }

                i++;
                tokens.Add((sb.Append('\'').ToString(), start));
            }
            else if (c is '(' or ')' or ',')
            {
                tokens.Add((c.ToString(), start));
                i++;
            }
            else if (c is '=' or '!' or '<' or '>')
            {
                var two = i + 1 < text.Length ? text.Substring(i, 2) : null;
                if (two is "!=" or "<=" or ">=" or "<>")
                {
                    tokens.Add((two, start));
                    i += 2;
                }
                else
                {
                    tokens.Add((c.ToString(), start));
                    i++;
                }
            }
            else
            {
                while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not ('(' or ')' or ',' or '=' or '!' or '<' or '>' or '\''))
                {
                    i++;
                }

                tokens.Add((text[start..i], start));
            }
        }

        return tokens;
    }
}
