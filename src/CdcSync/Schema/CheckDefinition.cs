using System.Text;
using System.Text.RegularExpressions;
using CdcSync.Configuration;
using CdcSync.Hub;

namespace CdcSync.Schema;

internal enum CheckSeverity
{
    Warning,
    Error,
}

/// <summary>
/// One data-quality check: a file <c>checks/NAME.sql</c> holding one query that returns the
/// offending rows, after a header of comment lines:
/// <code>
/// -- check: customers_without_email
/// -- severity: warning
/// -- schedule: 0 * * * *
/// -- description: Active NetSuite customers without an email address.
/// SELECT ...
/// </code>
/// The header starts at the <c>-- check:</c> line (free comments may come before it) and is the
/// run of <c>-- key: value</c> lines from there. <c>check</c> (the name: lower-case letters,
/// digits, underscores), <c>severity</c> (warning or error) and <c>schedule</c> (cron, 5 fields,
/// UTC) are required, <c>description</c> is optional. The query is deployed as the view
/// <c>cdc_checks."NAME"</c>. <see cref="ViewSql"/> is the file with <c>DROP VIEW ...; CREATE VIEW
/// ... AS</c> put before the query on its line, for the test harness (which locates errors by
/// statement); <see cref="CreateViewSql"/> is the CREATE VIEW alone, starting on <see cref="QueryLine"/>.
/// </summary>
internal sealed partial record CheckDefinition(
    string Name,
    string File,
    CheckSeverity Severity,
    string Schedule,
    string? Description,
    string Hash,
    int QueryLine,
    string ViewSql,
    string CreateViewSql)
{
    public const string Schema = "cdc_checks";

    private static readonly string[] Keys = ["check", "severity", "schedule", "description"];

    [GeneratedRegex(@"^--\s*(?<key>[A-Za-z][A-Za-z0-9_-]*)\s*:\s*(?<value>.*?)\s*$")]
    private static partial Regex KeyLine();

    [GeneratedRegex("^[a-z][a-z0-9_]{0,62}$")]
    private static partial Regex NameRule();

    /// <summary>The view's qualified, quoted name.</summary>
    public string View => $"{Schema}.{HubSql.Quote(Name)}";

    public string SeverityText => Severity == CheckSeverity.Error ? "error" : "warning";

    /// <summary>
    /// Every check of the set, or an <see cref="OperatorException"/> naming each bad file, line and
    /// the fix (the first problem, and how many more).
    /// </summary>
    public static IReadOnlyList<CheckDefinition> ParseAll(ScriptSet scripts, Action<string, string>? validateSchedule = null)
    {
        var checks = new List<CheckDefinition>();
        var problems = new List<string>();
        foreach (var file in scripts.Checks)
        {
            try
            {
                var check = Parse(file, validateSchedule);
                if (checks.FirstOrDefault(c => c.Name == check.Name) is { } other)
                {
                    problems.Add($"{file.RelativePath}:{check.QueryLine}: check name '{check.Name}' is already used by {other.File}; give one of them another name.");
                    continue;
                }

                checks.Add(check);
            }
            catch (OperatorException e)
            {
                problems.Add(e.Message);
            }
        }

        if (problems.Count > 0)
        {
            throw new OperatorException(problems.Count == 1 ? problems[0] : $"{problems[0]} (and {problems.Count - 1} more problems in checks/)");
        }

        return checks;
    }

    /// <param name="validateSchedule">Throws an <see cref="OperatorException"/> for a schedule that is not a cron expression (given the expression and where it is).</param>
    public static CheckDefinition Parse(SqlFile file, Action<string, string>? validateSchedule = null)
    {
        var text = file.Contents;
        var lines = text.Split('\n');
        var values = new Dictionary<string, (string Value, int Line)>(StringComparer.Ordinal);
        var inHeader = false;
        var queryLine = 0;
        var offset = 0;
        var queryOffset = -1;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var trimmed = line.Trim();
            var number = i + 1;
            if (trimmed.StartsWith("--", StringComparison.Ordinal))
            {
                var key = KeyLine().Match(trimmed);
                if (!inHeader && key.Success && key.Groups["key"].Value.Equals("check", StringComparison.OrdinalIgnoreCase))
                {
                    inHeader = true;
                }

                if (inHeader && key.Success)
                {
                    var name = key.Groups["key"].Value.ToLowerInvariant();
                    if (!Keys.Contains(name))
                    {
                        var hint = DidYouMean.Closest(name, Keys) is { } best ? $"did you mean '{best}'? " : string.Empty;
                        throw new OperatorException($"{file.RelativePath}:{number}: unknown header key '{key.Groups["key"].Value}'; {hint}the header keys are {string.Join(", ", Keys)} (docs/operations.md, \"Writing a check\").");
                    }

                    if (values.TryGetValue(name, out var earlier))
                    {
                        throw new OperatorException($"{file.RelativePath}:{number}: '{name}' is given twice in the header (first on line {earlier.Line}); keep one.");
                    }

                    values[name] = (key.Groups["value"].Value, number);
                }
                else if (inHeader)
                {
                    // The header ends at the first comment line that is no "key: value".
                    inHeader = false;
                }
            }
            else if (trimmed.Length > 0)
            {
                queryLine = number;
                queryOffset = offset + (line.Length - line.TrimStart().Length);
                break;
            }
            else
            {
                inHeader = false;
            }

            offset += lines[i].Length + 1;
        }

        if (!values.TryGetValue("check", out var check))
        {
            throw new OperatorException($"{file.RelativePath}:1: no check header; start the file with '-- check: <name>', '-- severity: warning' (or error) and '-- schedule: <cron>' lines before the query (docs/operations.md, \"Writing a check\").");
        }

        if (!NameRule().IsMatch(check.Value))
        {
            throw new OperatorException($"{file.RelativePath}:{check.Line}: check name '{check.Value}' is not valid; use 1-63 lower-case letters, digits and underscores, starting with a letter (it names the view cdc_checks.<name>).");
        }

        if (!values.TryGetValue("severity", out var severityText))
        {
            throw new OperatorException($"{file.RelativePath}:{check.Line}: the header has no severity; add '-- severity: warning' or '-- severity: error' after the check line.");
        }

        var severity = severityText.Value.ToLowerInvariant() switch
        {
            "warning" => CheckSeverity.Warning,
            "error" => CheckSeverity.Error,
            _ => throw new OperatorException($"{file.RelativePath}:{severityText.Line}: severity '{severityText.Value}' is not one of warning, error; write '-- severity: warning' or '-- severity: error'."),
        };

        if (!values.TryGetValue("schedule", out var schedule) || schedule.Value.Length == 0)
        {
            throw new OperatorException($"{file.RelativePath}:{check.Line}: the header has no schedule; add a cron line such as '-- schedule: 0 * * * *' (minute hour day month weekday, UTC).");
        }

        validateSchedule?.Invoke(schedule.Value, $"{file.RelativePath}:{schedule.Line} schedule");

        if (queryOffset < 0)
        {
            throw new OperatorException($"{file.RelativePath}:{lines.Length}: no query after the header; write one SELECT returning the offending rows.");
        }

        var query = text[queryOffset..];
        var statements = new DbUp.Postgresql.PostgresqlConnectionManager("Host=localhost").SplitScriptIntoCommands(query)
            .Where(s => !IsOnlyComments(s))
            .ToList();
        if (statements.Count > 1)
        {
            var second = query.IndexOf(statements[1].Trim(), StringComparison.Ordinal);
            var line = queryLine + SqlErrorLocation.CountLines(query, Math.Max(second, 0)) - 1;
            throw new OperatorException($"{file.RelativePath}:{line}: a check is one query, and this is a second statement; keep only the SELECT returning the offending rows.");
        }

        var description = values.TryGetValue("description", out var d) && d.Value.Length > 0 ? d.Value : null;
        // The view's DDL starts on the query's own line, so a PostgreSQL error in it names the line of the file.
        var view = $"{Schema}.{HubSql.Quote(check.Value)}";
        var ddl = new StringBuilder(text.Length + 100)
            .Append(text, 0, queryOffset)
            .Append($"DROP VIEW IF EXISTS {view}; CREATE VIEW {view} AS ")
            .Append(text, queryOffset, text.Length - queryOffset)
            .ToString();
        return new CheckDefinition(check.Value, file.RelativePath, severity, schedule.Value, description, file.Hash, queryLine, ddl, $"CREATE VIEW {view} AS {query}");
    }

    private static bool IsOnlyComments(string statement) =>
        statement.Split('\n').Select(l => l.Trim()).All(l => l.Length == 0 || l.StartsWith("--", StringComparison.Ordinal));
}
