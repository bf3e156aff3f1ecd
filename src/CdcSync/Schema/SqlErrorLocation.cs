using Npgsql;

namespace CdcSync.Schema;

/// <summary>Turns a PostgreSQL error inside a script into "file:line: message".</summary>
internal static class SqlErrorLocation
{
    public static int? LineOf(string script, PostgresException e)
    {
        var statement = e.BatchCommand?.CommandText;
        var statementStart = 0;
        if (!string.IsNullOrEmpty(statement))
        {
            var at = script.IndexOf(statement.Trim(), StringComparison.Ordinal);
            if (at < 0)
            {
                return null;
            }

            statementStart = at + (statement.Length - statement.TrimStart().Length == 0 ? 0 : 0);
            statement = statement.Trim();
        }
        else
        {
            statement = script;
        }

        var offset = statementStart;
        if (e.Position > 0)
        {
            offset += Math.Min(e.Position - 1, statement.Length);
        }
        else if (e.Where is { } where && TryPlpgsqlLine(where, out var plLine))
        {
            // "PL/pgSQL function inline_code_block line N": N counts from the line the body starts on.
            var bodyStart = statement.IndexOf("$$", StringComparison.Ordinal);
            var baseLine = CountLines(script, statementStart + Math.Max(bodyStart, 0));
            return baseLine + plLine - 1;
        }

        return CountLines(script, offset);
    }

    public static string Describe(string file, string script, PostgresException e)
    {
        var line = LineOf(script, e);
        var where = line is { } l ? $"{file}:{l}" : file;
        var detail = e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty;
        var hint = e.Hint is { Length: > 0 } h ? $" Hint: {h}" : string.Empty;
        return $"{where}: {e.MessageText}{detail}{hint}";
    }

    private static bool TryPlpgsqlLine(string where, out int line)
    {
        // The context lists the innermost frame first (e.g. the assertion function that raised);
        // only the DO block's own frame, the outermost, counts lines of the script.
        const string Frame = "inline_code_block line ";
        line = 0;
        var marker = where.LastIndexOf(Frame, StringComparison.Ordinal);
        if (marker < 0)
        {
            return false;
        }

        var digits = new string(where[(marker + Frame.Length)..].TakeWhile(char.IsAsciiDigit).ToArray());
        return int.TryParse(digits, out line);
    }

    /// <summary>The 1-based line that <paramref name="offset"/> falls on.</summary>
    internal static int CountLines(string text, int offset)
    {
        var line = 1;
        for (var i = 0; i < offset && i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                line++;
            }
        }

        return line;
    }
}
