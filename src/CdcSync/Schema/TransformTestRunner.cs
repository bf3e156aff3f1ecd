using System.Text.RegularExpressions;
using Npgsql;

namespace CdcSync.Schema;

public sealed record TransformTestResult(string File, string Name, int Line, bool Passed, string? Message);

/// <summary>
/// Runs <c>transforms/tests/*.sql</c>. A file is split into tests at <c>-- test: name</c> lines;
/// the text before the first marker is a preamble every test of the file runs first. Each test runs
/// in one transaction that is rolled back: pending migrations, the working copy of every transform,
/// the <c>_*.sql</c> helpers, the preamble, then the test. So the tests exercise the SQL as it is on
/// disk, before it is deployed, and leave the database as they found it.
/// </summary>
public sealed partial class TransformTestRunner(string connectionString, ScriptSet scripts)
{
    [GeneratedRegex(@"^--\s*test:\s*(?<name>.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex TestMarker();

    public async Task<IReadOnlyList<TransformTestResult>> RunAsync(string? filter, Action<TransformTestResult>? onResult, CancellationToken cancellationToken)
    {
        var dir = scripts.TestsDirectory;
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"No transform tests: {dir} does not exist. Add SQL test files there (see docs/TRANSFORMS.md).");
        }

        var helpers = Directory.GetFiles(dir, "_*.sql").OrderBy(f => f, StringComparer.Ordinal).ToList();
        var testFiles = Directory.GetFiles(dir, "*.sql")
            .Where(f => !Path.GetFileName(f).StartsWith('_'))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();

        var pending = await new HubMigrator(connectionString, scripts).PendingAsync(cancellationToken);
        var setup = scripts.Migrations.Where(m => pending.Contains(m.JournalName))
            .Concat(scripts.Transforms)
            .Concat(helpers.Select(h => new SqlFile($"transforms/tests/{Path.GetFileName(h)}", h, File.ReadAllText(h), IsTransform: false)))
            .ToList();

        var results = new List<TransformTestResult>();
        // A fresh session per test: PostgreSQL keeps a session's table statistics pending across
        // transactions, and tests that count writes (pg_stat_xact_user_tables) must start at zero.
        var perTest = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;
        foreach (var path in testFiles)
        {
            var relative = $"transforms/tests/{Path.GetFileName(path)}";
            var text = await File.ReadAllTextAsync(path, cancellationToken);
            foreach (var test in Split(text))
            {
                if (filter is not null && !test.Name.Contains(filter, StringComparison.OrdinalIgnoreCase) && !relative.Contains(filter, StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                await using var conn = new NpgsqlConnection(perTest);
                await conn.OpenAsync(cancellationToken);
                var result = await RunOneAsync(conn, setup, relative, text, test, cancellationToken);
                results.Add(result);
                onResult?.Invoke(result);
            }
        }

        return results;
    }

    private static async Task<TransformTestResult> RunOneAsync(NpgsqlConnection conn, IReadOnlyList<SqlFile> setup, string file, string text, TestCase test, CancellationToken cancellationToken)
    {
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        try
        {
            foreach (var script in setup)
            {
                try
                {
                    await ExecuteAsync(conn, script.Contents, cancellationToken);
                }
                catch (PostgresException e)
                {
                    return new TransformTestResult(file, test.Name, test.Line, false,
                        $"setup failed in {SqlErrorLocation.Describe(script.RelativePath, script.Contents, e)}");
                }
            }

            foreach (var (body, offset) in new[] { (test.Preamble, 0), (test.Body, test.BodyOffset) })
            {
                if (string.IsNullOrWhiteSpace(body))
                {
                    continue;
                }

                try
                {
                    await ExecuteAsync(conn, body, cancellationToken);
                }
                catch (PostgresException e)
                {
                    var line = SqlErrorLocation.LineOf(body, e);
                    var absolute = line is { } l ? SqlErrorLocation.CountLines(text, offset) + l - 1 : test.Line;
                    return new TransformTestResult(file, test.Name, absolute, false, e.MessageText + (e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty));
                }
            }

            return new TransformTestResult(file, test.Name, test.Line, true, null);
        }
        finally
        {
            await tx.RollbackAsync(CancellationToken.None);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed record TestCase(string Name, int Line, string Preamble, string Body, int BodyOffset);

    private static List<TestCase> Split(string text)
    {
        var markers = TestMarker().Matches(text);
        var preamble = markers.Count > 0 ? text[..markers[0].Index] : text;
        var tests = new List<TestCase>();
        for (var i = 0; i < markers.Count; i++)
        {
            var start = markers[i].Index + markers[i].Length;
            var end = i + 1 < markers.Count ? markers[i + 1].Index : text.Length;
            tests.Add(new TestCase(markers[i].Groups["name"].Value, SqlErrorLocation.CountLines(text, markers[i].Index), preamble, text[start..end], start));
        }

        return tests;
    }
}
