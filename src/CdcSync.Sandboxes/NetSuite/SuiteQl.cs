using System.Globalization;
using System.Text;

namespace CdcSync.Sandboxes.NetSuite;

internal sealed class SuiteQlException(string message) : Exception(message);

/// <summary>
/// The slice of SuiteQL the sandbox understands: <c>SELECT cols | * FROM customer [WHERE ...]
/// [ORDER BY ...]</c> with AND/OR/NOT, parentheses, comparisons, IS [NOT] NULL, and the Oracle
/// functions TO_CHAR, TO_TIMESTAMP and TO_DATE. Values come back as strings, as SuiteQL returns them:
/// booleans as T/F and dates in the default user format (M/D/YYYY) unless formatted with TO_CHAR.
/// </summary>
internal sealed class SuiteQlQuery
{
    private SuiteQlQuery(string table, List<(Expr Expr, string Name)>? columns, Expr? where, List<(Expr Expr, bool Descending)> orderBy)
    {
        Table = table;
        Columns = columns;
        Where = where;
        OrderBy = orderBy;
    }

    /// <summary>The table after FROM: a record type (customer, opportunity) or deletedrecord, lower case.</summary>
    public string Table { get; }

    /// <summary>Null for <c>SELECT *</c>.</summary>
    public List<(Expr Expr, string Name)>? Columns { get; }

    public Expr? Where { get; }

    public List<(Expr Expr, bool Descending)> OrderBy { get; }

    public static SuiteQlQuery Parse(string text) => new Parser(Tokenize(text)).ParseQuery();

    public List<Dictionary<string, string>> Run(IEnumerable<ISuiteQlRow> rows)
    {
        var matched = rows.Where(r => Where is null || Truth(Where.Eval(r)) == true).ToList();
        if (OrderBy.Count > 0)
        {
            matched.Sort((a, b) =>
            {
                foreach (var (expr, desc) in OrderBy)
                {
                    var c = CompareForSort(expr.Eval(a), expr.Eval(b));
                    if (c != 0)
                    {
                        return desc ? -c : c;
                    }
                }

                return 0;
            });
        }

        var result = new List<Dictionary<string, string>>(matched.Count);
        foreach (var row in matched)
        {
            var item = new Dictionary<string, string>(StringComparer.Ordinal);
            var columns = Columns ?? AllColumns(Table);
            foreach (var (expr, name) in columns)
            {
                if (Format(expr.Eval(row)) is { } value)
                {
                    item[name] = value;
                }
            }

            result.Add(item);
        }

        return result;
    }

    private static List<(Expr, string)> AllColumns(string table)
    {
        IEnumerable<string> names = NsRecordType.All.TryGetValue(table == "transaction" ? "opportunity" : table, out var type)
            ? type.Fields.Where(f => f.Type != NsFieldType.Sublist).Select(f => f.Name.ToLowerInvariant())
            : ["id", "type", "recordid", "name", "externalid", "deleteddate", "context"];
        if (table == "transaction")
        {
            names = names.Append("type").Append("recordtype");
        }

        return [.. names.Select(c => ((Expr)new Col(c), c))];
    }

    private static string? Format(object? value) => value switch
    {
        null => null,
        bool b => b ? "T" : "F",
        DateTimeOffset d => d.ToString("M/d/yyyy", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    private static bool? Truth(object? value) => value as bool?;

    private static int CompareForSort(object? a, object? b)
    {
        // Oracle sorts NULLs last in ascending order.
        if (a is null || b is null)
        {
            return a is null ? (b is null ? 0 : 1) : -1;
        }

        return Compare(a, b) ?? 0;
    }

    internal static int? Compare(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return null;
        }

        return (a, b) switch
        {
            (DateTimeOffset x, DateTimeOffset y) => x.CompareTo(y),
            (DateTimeOffset x, string y) => x.CompareTo(ParseDate(y)),
            (string x, DateTimeOffset y) => ParseDate(x).CompareTo(y),
            (bool x, string y) => string.CompareOrdinal(x ? "T" : "F", y),
            (string x, bool y) => string.CompareOrdinal(x, y ? "T" : "F"),
            (bool x, bool y) => x.CompareTo(y),
            (string x, string y) => string.CompareOrdinal(x, y),
            _ => ToDecimal(a).CompareTo(ToDecimal(b)),
        };
    }

    private static decimal ToDecimal(object value) => value switch
    {
        long l => l,
        decimal d => d,
        double d => (decimal)d,
        string s when decimal.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => throw new SuiteQlException($"Invalid number: {value}"),
    };

    private static DateTimeOffset ParseDate(string s) =>
        DateTimeOffset.TryParseExact(s, ["M/d/yyyy", "M/d/yyyy h:mm tt", "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssK"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d)
            ? d
            : throw new SuiteQlException($"Invalid date value: {s}");

    /// <summary>Oracle datetime format (YYYY-MM-DD HH24:MI:SS, "quoted" text) to a .NET format string.</summary>
    internal static string DotNetFormat(string oracle)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < oracle.Length;)
        {
            var rest = oracle.AsSpan(i);
            if (rest.StartsWith("YYYY", StringComparison.OrdinalIgnoreCase)) { sb.Append("yyyy"); i += 4; }
            else if (rest.StartsWith("HH24", StringComparison.OrdinalIgnoreCase)) { sb.Append("HH"); i += 4; }
            else if (rest.StartsWith("FF3", StringComparison.OrdinalIgnoreCase)) { sb.Append("fff"); i += 3; }
            else if (rest.StartsWith("MM", StringComparison.OrdinalIgnoreCase)) { sb.Append("MM"); i += 2; }
            else if (rest.StartsWith("DD", StringComparison.OrdinalIgnoreCase)) { sb.Append("dd"); i += 2; }
            else if (rest.StartsWith("MI", StringComparison.OrdinalIgnoreCase)) { sb.Append("mm"); i += 2; }
            else if (rest.StartsWith("SS", StringComparison.OrdinalIgnoreCase)) { sb.Append("ss"); i += 2; }
            else if (rest[0] == '"')
            {
                var end = oracle.IndexOf('"', i + 1);
                if (end < 0)
                {
                    throw new SuiteQlException("Unterminated quoted text in a date format.");
                }

                sb.Append('\'').Append(oracle, i + 1, end - i - 1).Append('\'');
                i = end + 1;
            }
            else if (rest[0] is '-' or ':' or '/' or ' ' or '.' or ',')
            {
                sb.Append('\\').Append(rest[0]);
                i++;
            }
            else
            {
                throw new SuiteQlException($"Unsupported date format element at '{oracle[i..]}'.");
            }
        }

        return sb.ToString();
    }

    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        for (var i = 0; i < text.Length;)
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
                while (true)
                {
                    if (i >= text.Length)
                    {
                        throw new SuiteQlException("Unterminated string literal.");
                    }

                    if (text[i] == '\'')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '\'')
                        {
                            sb.Append('\'');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    sb.Append(text[i++]);
                }

                tokens.Add(sb.ToString());
            }
            else if (char.IsLetterOrDigit(c) || c == '_')
            {
                var start = i;
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] is '_' or '.'))
                {
                    i++;
                }

                tokens.Add(text[start..i]);
            }
            else if (i + 1 < text.Length && text.AsSpan(i, 2) is "<=" or ">=" or "<>" or "!=")
            {
                tokens.Add(text.Substring(i, 2));
                i += 2;
            }
            else if (c is '(' or ')' or ',' or '*' or '=' or '<' or '>')
            {
                tokens.Add(c.ToString());
                i++;
            }
            else
            {
                throw new SuiteQlException($"Unexpected character '{c}'.");
            }
        }

        return tokens;
    }

    internal abstract record Expr
    {
        public abstract object? Eval(ISuiteQlRow row);
    }

    private sealed record Col(string Name) : Expr
    {
        public override object? Eval(ISuiteQlRow row) => row.Column(Name);
    }

    private sealed record Lit(object? Value) : Expr
    {
        public override object? Eval(ISuiteQlRow row) => Value;
    }

    private sealed record Fn(string Name, List<Expr> Args) : Expr
    {
        public override object? Eval(ISuiteQlRow row)
        {
            var args = Args.Select(a => a.Eval(row)).ToList();
            switch (Name)
            {
                case "TO_CHAR" when args is [DateTimeOffset d, string fmt]:
                    return d.ToString(DotNetFormat(fmt), CultureInfo.InvariantCulture);
                case "TO_CHAR" when args is [var v, ..]:
                    return Format(v);
                case "TO_TIMESTAMP" or "TO_DATE" when args is [string s, string fmt]:
                    return DateTimeOffset.TryParseExact(s, DotNetFormat(fmt), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                        ? parsed
                        : throw new SuiteQlException($"Value '{s}' does not match format '{fmt}'.");
                case "UPPER" when args is [string s]:
                    return s.ToUpperInvariant();
                case "LOWER" when args is [string s]:
                    return s.ToLowerInvariant();
                default:
                    throw new SuiteQlException($"Unsupported function or arguments: {Name}.");
            }
        }
    }

    private sealed record Binary(string Op, Expr Left, Expr Right) : Expr
    {
        public override object? Eval(ISuiteQlRow row)
        {
            if (Op is "AND" or "OR")
            {
                var l = Truth(Left.Eval(row));
                var r = Truth(Right.Eval(row));
                return Op == "AND"
                    ? (l == false || r == false ? false : l == true && r == true ? true : null)
                    : (l == true || r == true ? true : l == false && r == false ? false : null);
            }

            var c = Compare(Left.Eval(row), Right.Eval(row));
            return c is null ? null : Op switch
            {
                "=" => c == 0,
                "<>" or "!=" => c != 0,
                "<" => c < 0,
                "<=" => c <= 0,
                ">" => c > 0,
                ">=" => c >= 0,
                _ => throw new SuiteQlException($"Unsupported operator {Op}."),
            };
        }
    }

    private sealed record Not(Expr Inner) : Expr
    {
        public override object? Eval(ISuiteQlRow row) => Truth(Inner.Eval(row)) is { } b ? !b : null;
    }

    /// <summary><c>x IN (a, b)</c>: true when x equals one of them, null when x is null (Oracle's three-valued logic).</summary>
    private sealed record InList(Expr Value, List<Expr> Items) : Expr
    {
        public override object? Eval(ISuiteQlRow row)
        {
            var value = Value.Eval(row);
            return value is null ? null : Items.Any(i => Compare(value, i.Eval(row)) == 0);
        }
    }

    /// <summary><c>x LIKE 'pattern'</c>: % any run, _ one character; case-sensitive, as in Oracle.</summary>
    private sealed record Like(Expr Value, Expr Pattern) : Expr
    {
        public override object? Eval(ISuiteQlRow row)
        {
            if (Value.Eval(row) is not { } value || Pattern.Eval(row) is not string pattern)
            {
                return null;
            }

            var regex = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace("%", ".*", StringComparison.Ordinal).Replace("_", ".", StringComparison.Ordinal) + "$";
            return System.Text.RegularExpressions.Regex.IsMatch(Format(value) ?? string.Empty, regex, System.Text.RegularExpressions.RegexOptions.Singleline, TimeSpan.FromSeconds(1));
        }
    }

    private sealed record IsNull(Expr Inner, bool Negated) : Expr
    {
        public override object? Eval(ISuiteQlRow row) => (Inner.Eval(row) is null) != Negated;
    }

    private sealed class Parser(List<string> tokens)
    {
        private int _pos;

        public SuiteQlQuery ParseQuery()
        {
            Expect("SELECT");
            List<(Expr, string)>? columns = null;
            if (Peek() == "*")
            {
                _pos++;
            }
            else
            {
                columns = [];
                var n = 0;
                do
                {
                    var expr = ParseOperand();
                    n++;
                    string name;
                    if (IsKeyword("AS"))
                    {
                        _pos++;
                        name = Next().ToLowerInvariant();
                    }
                    else
                    {
                        name = expr is Col col ? col.Name : "expr" + n.ToString(CultureInfo.InvariantCulture);
                    }

                    columns.Add((expr, name));
                }
                while (TryTake(","));
            }

            Expect("FROM");
            var table = Next().ToLowerInvariant();
            if (!NsRecordType.All.ContainsKey(table) && table is not ("deletedrecord" or "transaction"))
            {
                throw new SuiteQlException($"Record '{table}' was not found. Reason: the sandbox serves {string.Join(", ", NsRecordType.All.Keys)}, transaction and deletedrecord.");
            }

            Expr? where = null;
            if (IsKeyword("WHERE"))
            {
                _pos++;
                where = ParseOr();
            }

            var orderBy = new List<(Expr, bool)>();
            if (IsKeyword("ORDER"))
            {
                _pos++;
                Expect("BY");
                do
                {
                    var expr = ParseOperand();
                    var desc = false;
                    if (IsKeyword("DESC"))
                    {
                        desc = true;
                        _pos++;
                    }
                    else if (IsKeyword("ASC"))
                    {
                        _pos++;
                    }

                    orderBy.Add((expr, desc));
                }
                while (TryTake(","));
            }

            if (_pos != tokens.Count)
            {
                throw new SuiteQlException($"Unexpected token '{tokens[_pos]}'.");
            }

            return new SuiteQlQuery(table, columns, where, orderBy);
        }

        private Expr ParseOr()
        {
            var left = ParseAnd();
            while (IsKeyword("OR"))
            {
                _pos++;
                left = new Binary("OR", left, ParseAnd());
            }

            return left;
        }

        private Expr ParseAnd()
        {
            var left = ParseNot();
            while (IsKeyword("AND"))
            {
                _pos++;
                left = new Binary("AND", left, ParseNot());
            }

            return left;
        }

        private Expr ParseNot()
        {
            if (IsKeyword("NOT"))
            {
                _pos++;
                return new Not(ParseNot());
            }

            return ParseComparison();
        }

        private Expr ParseComparison()
        {
            if (Peek() == "(")
            {
                var save = _pos;
                _pos++;
                try
                {
                    var inner = ParseOr();
                    Expect(")");
                    return inner;
                }
                catch (SuiteQlException)
                {
                    _pos = save;
                }
            }

            var left = ParseOperand();
            if (IsKeyword("IS"))
            {
                _pos++;
                var negated = false;
                if (IsKeyword("NOT"))
                {
                    negated = true;
                    _pos++;
                }

                Expect("NULL");
                return new IsNull(left, negated);
            }

            var negatedOp = false;
            if (IsKeyword("NOT"))
            {
                negatedOp = true;
                _pos++;
            }

            if (IsKeyword("IN"))
            {
                _pos++;
                Expect("(");
                var items = new List<Expr>();
                do
                {
                    items.Add(ParseOperand());
                }
                while (TryTake(","));

                Expect(")");
                Expr inList = new InList(left, items);
                return negatedOp ? new Not(inList) : inList;
            }

            if (IsKeyword("LIKE"))
            {
                _pos++;
                Expr like = new Like(left, ParseOperand());
                return negatedOp ? new Not(like) : like;
            }

            if (IsKeyword("BETWEEN"))
            {
                _pos++;
                var low = ParseOperand();
                Expect("AND");
                Expr between = new Binary("AND", new Binary(">=", left, low), new Binary("<=", left, ParseOperand()));
                return negatedOp ? new Not(between) : between;
            }

            if (negatedOp)
            {
                throw new SuiteQlException($"Expected IN, LIKE or BETWEEN after NOT, found '{Peek() ?? "end of query"}'.");
            }

            var op = Next();
            if (op is not ("=" or "<>" or "!=" or "<" or "<=" or ">" or ">="))
            {
                throw new SuiteQlException($"Expected a comparison operator, found '{op}'.");
            }

            return new Binary(op, left, ParseOperand());
        }

        private Expr ParseOperand()
        {
            var token = Next();
            if (token.StartsWith('\''))
            {
                return new Lit(token[1..]);
            }

            if (char.IsDigit(token[0]))
            {
                return new Lit(decimal.Parse(token, CultureInfo.InvariantCulture));
            }

            if (token.Equals("NULL", StringComparison.OrdinalIgnoreCase))
            {
                return new Lit(null);
            }

            if (Peek() == "(")
            {
                _pos++;
                var args = new List<Expr>();
                if (Peek() != ")")
                {
                    do
                    {
                        args.Add(ParseOperand());
                    }
                    while (TryTake(","));
                }

                Expect(")");
                return new Fn(token.ToUpperInvariant(), args);
            }

            var name = token.ToLowerInvariant();
            var dot = name.LastIndexOf('.');
            return new Col(dot >= 0 ? name[(dot + 1)..] : name);
        }

        private string? Peek() => _pos < tokens.Count ? tokens[_pos] : null;

        private string Next() => _pos < tokens.Count ? tokens[_pos++] : throw new SuiteQlException("Unexpected end of query.");

        private bool IsKeyword(string keyword) => Peek() is { } t && t.Equals(keyword, StringComparison.OrdinalIgnoreCase);

        private bool TryTake(string token)
        {
            if (Peek() == token)
            {
                _pos++;
                return true;
            }

            return false;
        }

        private void Expect(string keyword)
        {
            if (!IsKeyword(keyword))
            {
                throw new SuiteQlException($"Expected '{keyword}' but found '{Peek() ?? "end of query"}'.");
            }

            _pos++;
        }
    }
}
