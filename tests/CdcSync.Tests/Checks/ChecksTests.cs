using CdcSync.Checks;
using CdcSync.Schema;
using CdcSync.Tests.Alerts;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Checks;

public sealed class ChecksTests
{
    [Theory]
    [InlineData("SELECT 1;\n", "checks/bad.sql:1: no check header; start the file with '-- check: <name>'")]
    [InlineData("-- check: bad\n-- severty: error\n-- schedule: 0 * * * *\nSELECT 1\n", "checks/bad.sql:2: unknown header key 'severty'; did you mean 'severity'?")]
    [InlineData("-- check: bad\n-- severity: fatal\n-- schedule: 0 * * * *\nSELECT 1\n", "checks/bad.sql:2: severity 'fatal' is not one of warning, error")]
    [InlineData("-- check: bad\n-- severity: error\nSELECT 1\n", "checks/bad.sql:1: the header has no schedule; add a cron line such as '-- schedule: 0 * * * *'")]
    [InlineData("-- check: bad\n-- severity: error\n-- schedule: 0 25 * * *\nSELECT 1\n", "checks/bad.sql:3 schedule = \"0 25 * * *\" is not a cron expression")]
    [InlineData("-- check: Bad-Name\n-- severity: error\n-- schedule: 0 * * * *\nSELECT 1\n", "checks/bad.sql:1: check name 'Bad-Name' is not valid")]
    [InlineData("-- check: bad\n-- severity: error\n-- schedule: 0 * * * *\nSELECT 1;\n\nDELETE FROM ns_customers;\n", "checks/bad.sql:6: a check is one query, and this is a second statement")]
    public void Header_Mistake_IsOneLineNamingFileLineAndFix(string text, string expected)
    {
        var e = Assert.Throws<OperatorException>(() => CheckDefinition.Parse(new SqlFile("checks/bad.sql", "/x/checks/bad.sql", text, IsTransform: false), CheckSchedule.Validate));

        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Header_Valid_ViewKeepsTheFilesLineNumbers()
    {
        const string text = "-- why this check exists\n-- check: no_mail\n-- severity: ERROR\n-- schedule: */5 * * * *\n-- description: Customers without email.\n\n-- the query\nSELECT hub_id\n  FROM ns_customers WHERE email IS NULL;\n";

        var check = CheckDefinition.Parse(new SqlFile("checks/no_mail.sql", "/x", text, IsTransform: false), CheckSchedule.Validate);

        Assert.Equal(("no_mail", CheckSeverity.Error, "*/5 * * * *", "Customers without email."), (check.Name, check.Severity, check.Schedule, check.Description));
        Assert.Equal(8, check.QueryLine);
        // The DDL starts on the query's line, so a PostgreSQL error position maps to the file's line.
        Assert.Equal(text.Split('\n').Length, check.ViewSql.Split('\n').Length);
        Assert.StartsWith("DROP VIEW IF EXISTS cdc_checks.\"no_mail\"; CREATE VIEW cdc_checks.\"no_mail\" AS SELECT hub_id", check.ViewSql.Split('\n')[7], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deploy_ChangedBrokenAndRemovedChecks_PendingByFile_BrokenNamesFileAndLine_TransformsTestFailsOnIt()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var dir = Repo.CopyScripts();
        var file = Path.Combine(dir, "checks", "customers_without_email.sql");
        var text = await File.ReadAllTextAsync(file);
        var line = text.Split('\n').ToList().FindIndex(l => l.Contains("c.internalid,", StringComparison.Ordinal)) + 1;
        await File.WriteAllTextAsync(file, text.Replace("c.internalid,", "c.internal_id,", StringComparison.Ordinal));
        File.Delete(Path.Combine(dir, "checks", "phones_not_normalized.sql"));
        var migrator = new HubMigrator(hub, ScriptSet.Load(dir));

        var pending = (await migrator.DeploymentStateAsync(CancellationToken.None)).Pending.Select(p => p.Describe());
        var broken = await migrator.MigrateAsync(CancellationToken.None);

        Assert.Equal(
            ["checks/customers_without_email.sql: check changed since it was deployed", "checks/phones_not_normalized.sql: check deployed but its file is gone (migrate drops it)"],
            pending);
        Assert.False(broken.Succeeded);
        Assert.StartsWith($"checks/customers_without_email.sql:{line}: column c.internal_id does not exist", broken.Error, StringComparison.Ordinal);
        Assert.Contains("no check was deployed", broken.Error, StringComparison.Ordinal);
        Assert.True(await ExistsAsync(hub, "cdc_checks.phones_not_normalized"), "a failed deploy dropped nothing");

        // The harness runs the working copy of the checks: the broken one fails every check test, at its line.
        var run = await new TransformTestRunner(hub, ScriptSet.Load(dir), TransformTestIsolation.InPlace).RunAsync("checks/tests", null, CancellationToken.None);
        Assert.NotEmpty(run.Results);
        Assert.All(run.Results, r => Assert.Contains($"setup failed in checks/customers_without_email.sql:{line}: column c.internal_id does not exist", r.Message, StringComparison.Ordinal));

        await File.WriteAllTextAsync(file, text);
        migrator = new HubMigrator(hub, ScriptSet.Load(dir));
        var fixedRun = await migrator.MigrateAsync(CancellationToken.None);
        Assert.True(fixedRun.Succeeded, fixedRun.Error);
        Assert.Equal(["checks/phones_not_normalized.sql"], fixedRun.Applied);
        Assert.False(await ExistsAsync(hub, "cdc_checks.phones_not_normalized"));
        Assert.Empty((await migrator.DeploymentStateAsync(CancellationToken.None)).Pending);
    }

    [Fact]
    public async Task ChecksRunAndAlertsTest_Cli_ExitCodesJsonAndTheScheduledJob()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);
        await using (var cmd = source.CreateCommand("INSERT INTO ns_customers (internalid, companyname, phone) VALUES ('c1', 'Quiet Co', '4155550100'), ('c2', 'Silent Co', '4155550101')"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await using var receiver = await AlertReceiver.StartAsync("cli-secret-0123456789abcdef");
        var config = Path.Combine(Path.GetTempPath(), $"cdcsync-checks-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, """
            {
              "Hub": { "ConnectionString": "${CHECKS_TEST_HUB}", "Slot": "checks_cli", "Publication": "checks_cli" },
              "Connectors": { "hook": { "Type": "webhook", "Url": "http://127.0.0.1:9/unused", "Secret": "0123456789abcdef0123" } },
              "Routes": { "public.ns_customers": [ "hook" ] }
            }
            """);
        var env = new Dictionary<string, string?> { ["CHECKS_TEST_HUB"] = hub };

        // Five verbs, independent of each other: run side by side (each is a process start).
        var results = await Task.WhenAll(
            CliProcess.RunAsync(env, "checks", "run", "--config", config, "--json"),
            CliProcess.RunAsync(env, "checks", "run", "--config", config, "--name", "phones_not_normalized"),
            CliProcess.RunAsync(env, "checks", "run", "--config", config, "--name", "customers_without_mail"),
            CliProcess.RunAsync(
                new Dictionary<string, string?>(env) { ["CDCSYNC__Alerts__WebhookUrl"] = "http://127.0.0.1:9/hooks/T000/secret-path", ["CDCSYNC__Alerts__Secret"] = "cli-secret-0123456789abcdef" },
                "alerts", "test", "--config", config),
            CliProcess.RunAsync(
                new Dictionary<string, string?>(env) { ["CDCSYNC__Alerts__WebhookUrl"] = receiver.Url.ToString(), ["CDCSYNC__Alerts__Secret"] = receiver.Secret },
                "alerts", "test", "--config", config));
        var (all, passing, typo, unreachable, delivered) = (results[0], results[1], results[2], results[3], results[4]);

        Assert.True(all.ExitCode == 1, all.ToString());
        var json = all.Json();
        Assert.Equal(1, json.GetProperty("found").GetInt32());
        Assert.Equal(0, json.GetProperty("errors").GetInt32());
        var failing = json.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("failingRows").GetInt64() > 0);
        Assert.Equal("customers_without_email", failing.GetProperty("name").GetString());
        Assert.Equal(2, failing.GetProperty("failingRows").GetInt64());
        Assert.Equal(["Quiet Co", "Silent Co"], failing.GetProperty("sample").EnumerateArray().Select(r => r.GetProperty("name").GetString()).Order());
        Assert.True(passing.ExitCode == 0, passing.ToString());
        Assert.Contains("phones_not_normalized (warning): no rows", passing.Stdout, StringComparison.Ordinal);
        Assert.True(typo.ExitCode == 2, typo.ToString());
        Assert.Contains("did you mean customers_without_email?", typo.Stderr, StringComparison.Ordinal);
        Assert.True(unreachable.ExitCode == 2, unreachable.ToString());
        Assert.StartsWith("error: Alerts:WebhookUrl http://127.0.0.1:9/… cannot be reached", unreachable.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", unreachable.Stderr + unreachable.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.True(delivered.ExitCode == 0, delivered.ToString());
        Assert.Equal("test", (string?)Assert.Single(receiver.Alerts)["status"]);

        // The worker's job for a check runs the deployed check and records the run.
        var runner = new CheckRunner(source, "worker test");
        var jobs = await new CheckJobSource(runner, NullLogger.Instance).ListAsync(CancellationToken.None);
        Assert.Equal(["check:customers_without_email", "check:links_to_inactive_customers", "check:phones_not_normalized", "check:shared_website_domains"], jobs.Select(j => j.Name));
        Assert.Equal("2 row(s)", await jobs[0].RunAsync(CancellationToken.None));
        await using var runs = source.CreateCommand("SELECT string_agg(run_by || ':' || failing_rows, ',' ORDER BY id) FROM cdc.check_runs WHERE check_name = 'customers_without_email'");
        Assert.Equal("cli:2,worker test:2", await runs.ExecuteScalarAsync());
    }

    private static async Task<bool> ExistsAsync(string db, string relation)
    {
        await using var conn = new NpgsqlConnection(db);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", conn);
        cmd.Parameters.AddWithValue(relation);
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }
}
