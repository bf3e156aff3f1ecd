using System.Text.RegularExpressions;
using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Schema;

internal sealed record TransformTestResult(string File, string Name, int Line, bool Passed, string? Message, TimeSpan Elapsed);

/// <summary>The outcome of one run; <see cref="ScratchDatabase"/> is null for an in-place run.</summary>
internal sealed record TransformTestRun(IReadOnlyList<TransformTestResult> Results, string? ScratchDatabase, TimeSpan Elapsed)
{
    public int Failed => Results.Count(r => !r.Passed);

    /// <summary>Set when the scratch database could not be dropped: which one, and how to drop it.</summary>
    public string? CleanupError { get; init; }
}

/// <summary>Where the transform tests run.</summary>
internal enum TransformTestIsolation
{
    /// <summary>
    /// Default. A scratch database on the hub's server, built from migrations/ and dropped at the
    /// end (also on failure and Ctrl-C): the result does not depend on what the hub holds.
    /// </summary>
    ScratchDatabase,

    /// <summary>
    /// In the hub itself, each test in a rolled-back transaction, for logins without CREATEDB. The
    /// tests then see the hub's rows, so they must only look at their own.
    /// </summary>
    InPlace,
}

/// <summary>What is about to run, and where (<see cref="Where"/> is safe to print).</summary>
internal sealed record TransformTestPlan(int Tests, int Files, string? ScratchDatabase, string Where);

/// <summary>What a run reports while it goes; every callback is optional.</summary>
internal sealed class TransformTestProgress
{
    /// <summary>Before the first test.</summary>
    public Action<TransformTestPlan>? Planned { get; init; }

    public Action<TransformTestResult>? Completed { get; init; }

    /// <summary>The scratch database could not be dropped (also after a failure or Ctrl-C): which one, and how to drop it.</summary>
    public Action<string>? CleanupFailed { get; init; }
}

/// <summary>
/// Runs <c>transforms/tests/*.sql</c>, then <c>checks/tests/*.sql</c>. A file is split into tests at <c>-- test: name</c> lines;
/// the text before the first marker is a preamble every test of the file runs first. Each test runs
/// in one transaction that is rolled back: the working copy of every transform, every check as
/// its view <c>cdc_checks.NAME</c>, the <c>_*.sql</c> helpers, the preamble, then the test. So the tests exercise the SQL as it is on disk, before it
/// is deployed. By default they run in a scratch database that holds only the migrations; see
/// <see cref="TransformTestIsolation"/>.
/// </summary>
internal sealed partial class TransformTestRunner(
    string connectionString,
    ScriptSet scripts,
    TransformTestIsolation isolation = TransformTestIsolation.ScratchDatabase,
    TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    [GeneratedRegex(@"^--\s*test:\s*(?<name>.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex TestMarker();

    public async Task<TransformTestRun> RunAsync(string? filter, TransformTestProgress? progress, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var dir = scripts.TestsDirectory;
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"No transform tests: {dir} does not exist. Add SQL test files there (see docs/TRANSFORMS.md).");
        }

        // The checks' tests use the transforms' helpers and their own (checks/tests/_*.sql), and
        // see each check as its view, created from the working copy like the transforms.
        var testDirs = new[] { (Dir: dir, Prefix: "transforms/tests"), (Dir: scripts.ChecksTestsDirectory, Prefix: "checks/tests") }
            .Where(d => Directory.Exists(d.Dir))
            .ToList();
        var helpers = testDirs.SelectMany(d => Directory.GetFiles(d.Dir, "_*.sql").OrderBy(f => f, StringComparer.Ordinal)
                .Select(h => new SqlFile($"{d.Prefix}/{Path.GetFileName(h)}", h, File.ReadAllText(h), IsTransform: false)))
            .ToList();
        var checkViews = CheckDefinition.ParseAll(scripts, CheckSchedule.Validate)
            .Select(c => new SqlFile(c.File, c.File, c.ViewSql, IsTransform: false))
            .ToList();
        var plan = new List<PlannedTest>();
        foreach (var (testDir, prefix) in testDirs)
        {
            plan.AddRange(await PlanAsync(testDir, prefix, filter, cancellationToken));
        }

        if (plan.Count == 0)
        {
            return new TransformTestRun([], null, _time.GetElapsedTime(started));
        }

        var files = plan.Select(t => t.File).Distinct(StringComparer.Ordinal).Count();
        if (isolation == TransformTestIsolation.InPlace)
        {
            var pending = await new HubMigrator(connectionString, scripts).PendingAsync(cancellationToken);
            var setup = scripts.Migrations.Where(m => pending.Contains(m.JournalName)).Concat(scripts.Transforms).Concat(checkViews).Concat(helpers).ToList();
            progress?.Planned?.Invoke(new TransformTestPlan(plan.Count, files, null, $"in place on {HubConnection.Describe(connectionString)}, each test rolled back"));
            var results = await RunAllAsync(connectionString, setup, plan, progress, cancellationToken);
            return new TransformTestRun(results, null, _time.GetElapsedTime(started));
        }

        var scratch = await ScratchDatabase.CreateAsync(connectionString, _time, cancellationToken);
        List<TransformTestResult> scratchResults;
        try
        {
            await MigrateAsync(scratch.ConnectionString, cancellationToken);
            var b = new NpgsqlConnectionStringBuilder(connectionString);
            progress?.Planned?.Invoke(new TransformTestPlan(plan.Count, files, scratch.Name,
                $"in scratch database {scratch.Name} on {b.Host}:{b.Port} ({scripts.Migrations.Count} migrations, {scripts.Transforms.Count} transforms)"));
            scratchResults = await RunAllAsync(scratch.ConnectionString, [.. scripts.Transforms, .. checkViews, .. helpers], plan, progress, cancellationToken);
        }
        finally
        {
            await scratch.DisposeAsync();
            if (scratch.DropError is { } dropError)
            {
                progress?.CleanupFailed?.Invoke(dropError);
            }
        }

        return new TransformTestRun(scratchResults, scratch.Name, _time.GetElapsedTime(started)) { CleanupError = scratch.DropError };
    }

    /// <summary>
    /// The migrations are committed in the scratch database once, as <c>cdcsync migrate</c> would;
    /// the transforms are not, so each test runs the working copy inside its own transaction and a
    /// broken transform fails the tests with its file and line.
    /// </summary>
    private async Task MigrateAsync(string scratch, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(scratch);
        await conn.OpenAsync(cancellationToken);
        foreach (var migration in scripts.Migrations)
        {
            await using var tx = await conn.BeginTransactionAsync(cancellationToken);
            if (await ExecuteScriptAsync(conn, migration.Contents, cancellationToken) is { } failure)
            {
                throw new OperatorException($"{migration.RelativePath}:{failure.Line}: {failure.Message} — fix the migration; no transform test ran.");
            }

            await tx.CommitAsync(cancellationToken);
        }
    }

    private static async Task<List<PlannedTest>> PlanAsync(string dir, string prefix, string? filter, CancellationToken cancellationToken)
    {
        var plan = new List<PlannedTest>();
        foreach (var path in Directory.GetFiles(dir, "*.sql").Where(f => !Path.GetFileName(f).StartsWith('_')).OrderBy(f => f, StringComparer.Ordinal))
        {
            var relative = $"{prefix}/{Path.GetFileName(path)}";
            var text = await File.ReadAllTextAsync(path, cancellationToken);
            plan.AddRange(Split(text)
                .Where(test => filter is null || test.Name.Contains(filter, StringComparison.OrdinalIgnoreCase) || relative.Contains(filter, StringComparison.OrdinalIgnoreCase))
                .Select(test => new PlannedTest(relative, text, test)));
        }

        return plan;
    }

    private async Task<List<TransformTestResult>> RunAllAsync(string target, IReadOnlyList<SqlFile> setup, IReadOnlyList<PlannedTest> plan, TransformTestProgress? progress, CancellationToken cancellationToken)
    {
        var results = new List<TransformTestResult>(plan.Count);
        // A fresh session per test: PostgreSQL keeps a session's table statistics pending across
        // transactions, and tests that count writes (pg_stat_xact_user_tables) must start at zero.
        var perTest = new NpgsqlConnectionStringBuilder(target) { Pooling = false }.ConnectionString;
        var level = isolation == TransformTestIsolation.InPlace ? System.Data.IsolationLevel.RepeatableRead : System.Data.IsolationLevel.ReadCommitted;
        foreach (var planned in plan)
        {
            var started = _time.GetTimestamp();
            await using var conn = new NpgsqlConnection(perTest);
            await conn.OpenAsync(cancellationToken);
            var (passed, line, message) = await RunOneAsync(conn, setup, planned, level, cancellationToken);
            var result = new TransformTestResult(planned.File, planned.Test.Name, line, passed, message, _time.GetElapsedTime(started));
            results.Add(result);
            progress?.Completed?.Invoke(result);
        }

        return results;
    }

    private async Task<(bool Passed, int Line, string? Message)> RunOneAsync(NpgsqlConnection conn, IReadOnlyList<SqlFile> setup, PlannedTest planned, System.Data.IsolationLevel level, CancellationToken cancellationToken)
    {
        var test = planned.Test;
        // In place, a running worker keeps writing to the hub: a snapshot for the whole test keeps
        // its commits out of the test's counts and row comparisons.
        await using var tx = await conn.BeginTransactionAsync(level, cancellationToken);
        try
        {
            foreach (var script in setup)
            {
                if (await ExecuteScriptAsync(conn, script.Contents, cancellationToken) is { } failure)
                {
                    return (false, test.Line, $"setup failed in {script.RelativePath}:{failure.Line}: {failure.Message}");
                }
            }

            foreach (var (body, offset) in new[] { (test.Preamble, 0), (test.Body, test.BodyOffset) })
            {
                if (await ExecuteScriptAsync(conn, body, cancellationToken) is { } failure)
                {
                    return (false, SqlErrorLocation.CountLines(planned.Text, offset) + failure.Line - 1, failure.Message);
                }
            }

            return (true, test.Line, null);
        }
        finally
        {
            if (conn.State == System.Data.ConnectionState.Open)
            {
                await tx.RollbackAsync(CancellationToken.None);
            }
        }
    }

    private sealed record ScriptFailure(int Line, string Message);

    private sealed record Statement(string Sql, int Offset);

    private readonly Dictionary<string, List<Statement>> _statements = new(StringComparer.Ordinal);

    /// <summary>
    /// Runs a script one statement at a time, so that a failure names its line: Npgsql does not
    /// say which statement of a multi-statement command failed, and an error position counts from
    /// the start of the failing statement. Returns null when every statement succeeded.
    /// </summary>
    private async Task<ScriptFailure?> ExecuteScriptAsync(NpgsqlConnection conn, string script, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(script))
        {
            return null;
        }

        // Fast path: the whole script in one round trip. Only when it fails is it undone and run
        // again statement by statement to find the line.
        await ExecuteAsync(conn, "SAVEPOINT cdc_test_script", cancellationToken);
        string firstError;
        try
        {
            await ExecuteAsync(conn, script, cancellationToken);
            await ExecuteAsync(conn, "RELEASE SAVEPOINT cdc_test_script", cancellationToken);
            return null;
        }
        catch (PostgresException e)
        {
            firstError = e.MessageText + (e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty);
            await ExecuteAsync(conn, "ROLLBACK TO SAVEPOINT cdc_test_script", cancellationToken);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            // A statement that scans or rewrites a whole table (a missing WHERE on a big hub).
            return new ScriptFailure(1, $"timed out after {conn.CommandTimeout} s (Command Timeout); a statement probably reads or writes whole tables: restrict it to the test's own rows");
        }

        foreach (var statement in Statements(script))
        {
            var startLine = SqlErrorLocation.CountLines(script, statement.Offset);
            try
            {
                await ExecuteAsync(conn, statement.Sql, cancellationToken);
            }
            catch (PostgresException e)
            {
                var line = startLine + (SqlErrorLocation.LineOf(statement.Sql, e) ?? 1) - 1;
                var detail = e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty;
                return new ScriptFailure(line, e.MessageText + detail);
            }
            catch (NpgsqlException e) when (e.InnerException is TimeoutException)
            {
                // A statement that scans or rewrites a whole table (a missing WHERE on a big hub).
                return new ScriptFailure(startLine, $"timed out after {conn.CommandTimeout} s (Command Timeout); the statement probably reads or writes whole tables: restrict it to the test's own rows");
            }
        }

        // Failed as a whole but not statement by statement (something outside the script changed).
        return new ScriptFailure(1, firstError);
    }

    /// <summary>The script's statements with their offsets, split by DbUp's splitter (which <c>cdcsync migrate</c> uses too and which knows dollar quoting).</summary>
    private List<Statement> Statements(string script)
    {
        if (_statements.TryGetValue(script, out var cached))
        {
            return cached;
        }

        var statements = new List<Statement>();
        var searchFrom = 0;
        foreach (var command in new DbUp.Postgresql.PostgresqlConnectionManager(connectionString).SplitScriptIntoCommands(script))
        {
            var sql = command.Trim();
            if (sql.Length == 0)
            {
                continue;
            }

            var at = script.IndexOf(sql, searchFrom, StringComparison.Ordinal);
            statements.Add(new Statement(sql, at < 0 ? searchFrom : at));
            if (at >= 0)
            {
                searchFrom = at + sql.Length;
            }
        }

        _statements[script] = statements;
        return statements;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken cancellationToken)
    {
        await conn.ExecuteAsync(new CommandDefinition(sql, cancellationToken: cancellationToken));
    }

    private sealed record PlannedTest(string File, string Text, TestCase Test);

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
