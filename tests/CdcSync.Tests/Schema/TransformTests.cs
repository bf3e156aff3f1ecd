using System.Diagnostics;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Schema;

public sealed class TransformTests
{
    [Fact]
    public async Task TransformsTest_EmptyHub_AllPassInAScratchDatabaseThatIsDroppedAfterwards()
    {
        var db = await TestPostgres.CreateDatabaseAsync();

        var run = await new TransformTestRunner(db, Repo.Scripts()).RunAsync(null, null, CancellationToken.None);

        Assert.True(run.Results.Count >= 10, $"only {run.Results.Count} transform tests found");
        Assert.All(run.Results, r => Assert.True(r.Passed, $"{r.File}:{r.Line} {r.Name}: {r.Message}"));
        Assert.StartsWith("cdcsync_test_", run.ScratchDatabase);
        Assert.Null(run.CleanupError);
        Assert.False(await DatabaseExistsAsync(db, run.ScratchDatabase!), $"scratch database {run.ScratchDatabase} still exists: {run.CleanupError}");
        // Nothing ran in the hub: it is still empty.
        Assert.False(await MigrateTests.ScalarAsync<bool>(db, "SELECT to_regclass('public.sf_accounts') IS NOT NULL"));
    }

    [Fact]
    public async Task TransformsTest_MappingBroken_FailsWithTheAssertionMessageAndLine_AndDropsTheScratchDatabase()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        var sfToNs = Directory.GetFiles(Path.Combine(dir, "transforms"), "*sf_to_ns*.sql").Single();
        var sql = await File.ReadAllTextAsync(sfToNs);
        // Break the mapping: the customer no longer gets the account's name as it is.
        const string line = "n.companyname := cdc.ns_company_name(a.name);";
        Assert.Contains(line, sql, StringComparison.Ordinal);
        await File.WriteAllTextAsync(sfToNs, sql.Replace(line, "n.companyname := 'BROKEN ' || cdc.ns_company_name(a.name);", StringComparison.Ordinal));

        var run = await new TransformTestRunner(db, ScriptSet.Load(dir)).RunAsync(null, null, CancellationToken.None);

        var failed = run.Results.Where(r => !r.Passed).ToList();
        Assert.NotEmpty(failed);
        var companyName = Assert.Single(failed, r => r.Name == "insert creates a matching customer");
        Assert.Equal("assertion failed: companyname: expected 'Acme Corporation', got 'BROKEN Acme Corporation'", companyName.Message);
        Assert.Equal("transforms/tests/sf_to_ns.sql", companyName.File);
        // The line of the failing assertion, not of the test marker.
        var testLines = await File.ReadAllLinesAsync(Path.Combine(dir, "transforms", "tests", "sf_to_ns.sql"));
        Assert.Contains("'companyname'", testLines[companyName.Line - 1], StringComparison.Ordinal);
        // A plain SELECT further down a test body is located too.
        var changed = Assert.Single(failed, r => r.Name == "a changed field updates the customer");
        Assert.Equal("assertion failed: companyname: expected 'Acme Corp.', got 'BROKEN Acme Corp.'", changed.Message);
        Assert.StartsWith("SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).companyname, 'Acme Corp.'", testLines[changed.Line - 1], StringComparison.Ordinal);
        Assert.False(await DatabaseExistsAsync(db, run.ScratchDatabase!), $"scratch database {run.ScratchDatabase} still exists: {run.CleanupError}");
    }

    [Fact]
    public async Task TransformsTest_CancelledMidRun_ThrowsAndDropsTheScratchDatabase()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        using var cts = new CancellationTokenSource();
        string? scratch = null;
        var progress = new TransformTestProgress
        {
            Planned = plan => scratch = plan.ScratchDatabase,
            Completed = _ => cts.Cancel(),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new TransformTestRunner(db, Repo.Scripts()).RunAsync(null, progress, cts.Token));

        Assert.StartsWith("cdcsync_test_", scratch);
        Assert.False(await DatabaseExistsAsync(db, scratch!));
    }

    [Fact]
    public async Task TransformsTestCommand_CtrlCDuringATest_ExitsCancelledAndDropsTheScratchDatabase()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(dir, "transforms", "tests", "zz_slow.sql"), "-- test: slow\nSELECT pg_sleep(60);\n");
        // Started as from a terminal: a test run launched in the background of a non-interactive
        // shell (nohup, CI runners) inherits SIGINT ignored, and an ignored signal stays ignored
        // across exec, so Ctrl-C would never reach the command. env resets it to the default.
        var start = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        foreach (var a in new[] { "--default-signal=INT", "dotnet", Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"), "transforms", "test", "--scripts", dir, "--filter", "slow" })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["CDCSYNC_DB"] = db;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        string? scratch = null;
        while (scratch is null && await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            scratch = line.Split(' ').SkipWhile(w => w != "database").Skip(1).FirstOrDefault();
        }

        Assert.StartsWith("cdcsync_test_", scratch);
        // The slow test is running once its session sits in pg_sleep.
        while (!await MigrateTests.ScalarAsync<bool>(db, $"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '{scratch}' AND query LIKE '%pg_sleep%')"))
        {
            await Task.Delay(100, timeout.Token);
        }

        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(timeout.Token);
        }

        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(130, process.ExitCode);
        Assert.Contains("cancelled", await stderr, StringComparison.Ordinal);
        Assert.False(await DatabaseExistsAsync(db, scratch!));
    }

    [Fact]
    public async Task TransformsTest_LeftoverOfAKilledRun_IsSweptByTheNextRun()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        // Named as a run started an hour ago would name it, and nobody connected to it.
        var leftover = $"cdcsync_test_{DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds()}_0badf00d";
        await ExecuteAsync(db, $"CREATE DATABASE \"{leftover}\"");
        // Someone else's database that only shares the prefix is not ours to drop.
        const string unrelated = "cdcsync_test_keep_me";
        await ExecuteAsync(db, $"DROP DATABASE IF EXISTS {unrelated}");
        await ExecuteAsync(db, $"CREATE DATABASE {unrelated}");

        var run = await new TransformTestRunner(db, Repo.Scripts()).RunAsync("identity links refuse", null, CancellationToken.None);

        Assert.True(Assert.Single(run.Results).Passed);
        Assert.False(await DatabaseExistsAsync(db, leftover));
        Assert.True(await DatabaseExistsAsync(db, unrelated));
        await ExecuteAsync(db, $"DROP DATABASE {unrelated}");
    }

    [Fact]
    public async Task TransformsTest_MigrationBroken_OneLineErrorWithFileAndLine()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(dir, "migrations", "9999_broken.sql"), "-- a typo on line 3\nCREATE TABLE public.fine (id int);\nCREATE TABLE public.broken (id int,);\n");

        var e = await Assert.ThrowsAsync<OperatorException>(() => new TransformTestRunner(db, ScriptSet.Load(dir)).RunAsync(null, null, CancellationToken.None));

        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("migrations/9999_broken.sql:3: syntax error", e.Message, StringComparison.Ordinal);
        Assert.Contains("no transform test ran", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TransformsTest_LoginWithoutCreateDb_OneLineErrorNamingTheGrantAndInPlace()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        const string role = "cdcsync_test_nocreatedb";
        await ExecuteAsync(db, $"""
            DROP ROLE IF EXISTS {role};
            CREATE ROLE {role} LOGIN PASSWORD 'pw-not-shown' NOCREATEDB;
            GRANT ALL ON DATABASE "{new NpgsqlConnectionStringBuilder(db).Database}" TO {role};
            """);
        var limited = new NpgsqlConnectionStringBuilder(db) { Username = role, Password = "pw-not-shown" }.ConnectionString;

        var e = await Assert.ThrowsAsync<OperatorException>(() => new TransformTestRunner(limited, Repo.Scripts()).RunAsync(null, null, CancellationToken.None));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"ALTER ROLE \"{role}\" CREATEDB", e.Message, StringComparison.Ordinal);
        Assert.Contains("--in-place", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-not-shown", e.Message, StringComparison.Ordinal);
        await ExecuteAsync(db, $"REVOKE ALL ON DATABASE \"{new NpgsqlConnectionStringBuilder(db).Database}\" FROM {role}; DROP ROLE {role};");
    }

    [Fact]
    public async Task SalesforceAccount_Inserted_YieldsCustomer_AndIdenticalUpdateKeepsItsXmin()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        Assert.True((await new HubMigrator(db, Repo.Scripts()).MigrateAsync(CancellationToken.None)).Succeeded);
        await using var conn = new NpgsqlConnection(db);
        await conn.OpenAsync();
        await ExecuteAsync(conn, """
            INSERT INTO sf_accounts (hub_id, id, name, phone, website, billingstreet, billingcity, billingstate, billingpostalcode, billingcountry, createddate)
            VALUES ('00000000-0000-0000-0000-0000000000a1', '001000000000009AAA', 'Globex Corporation', '(212) 555-0101', 'globex.com',
                    '5 Main St', 'Springfield', 'IL', '62701', 'United States', now());
            INSERT INTO sf_contacts (id, accountid, firstname, lastname, email, createddate)
            VALUES ('003000000000009AAA', '001000000000009AAA', 'Hank', 'Scorpio', 'hank@globex.com', now());
            """);

        const string customer = "SELECT companyname || '|' || email || '|' || phone || '|' || url FROM ns_customers WHERE externalid = 'sf-00000000-0000-0000-0000-0000000000a1'";
        Assert.Equal("Globex Corporation|hank@globex.com|2125550101|https://globex.com", await ScalarAsync<string>(conn, customer));
        var xmin = await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers");

        // The same values again, as an inbound echo would write them, in new transactions.
        await ExecuteAsync(conn, "UPDATE sf_accounts SET name = 'Globex Corporation', phone = '(212) 555-0101', website = 'globex.com'");
        await ExecuteAsync(conn, "UPDATE sf_contacts SET email = 'hank@globex.com'");

        Assert.Equal(xmin, await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers"));
        Assert.Equal(1L, await ScalarAsync<long>(conn, "SELECT count(*) FROM ns_customers"));

        await ExecuteAsync(conn, "UPDATE sf_accounts SET name = 'Globex Corp'");
        Assert.NotEqual(xmin, await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers"));
    }

    internal static async Task<bool> DatabaseExistsAsync(string connectionString, string name)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }

    internal static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await ExecuteAsync(conn, sql);
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql)
    {
        // Bulk loads of the loaded-hub fixture take longer than the 30 s default on a busy machine.
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
