using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Cli;

/// <summary>The real executable, as an operator runs it: exit codes and one-line errors.</summary>
public sealed class CliTests
{
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IReadOnlyDictionary<string, string?> env, params string[] args)
    {
        var result = await CliProcess.RunAsync(env, args);
        return (result.ExitCode, result.Stdout, result.Stderr);
    }

    [Fact]
    public async Task Migrate_WrongPassword_OneLineErrorExitCode2AndNoPassword()
    {
        var cs = new NpgsqlConnectionStringBuilder(await TestPostgres.AdminConnectionStringAsync()) { Password = "Hunter2-not-it" }.ConnectionString;

        var (code, _, stderr) = await RunAsync(new Dictionary<string, string?> { ["CDCSYNC_DB"] = cs }, "migrate");

        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("password authentication failed", stderr);
        Assert.DoesNotContain("Hunter2-not-it", stderr);
    }

    [Fact]
    public async Task Migrate_NoDatabaseGiven_SaysHowToGiveOne()
    {
        var (code, _, stderr) = await RunAsync(new Dictionary<string, string?>(), "migrate");

        Assert.Equal(2, code);
        Assert.Contains("CDCSYNC_DB", stderr);
        Assert.Contains("devdb.sh", stderr);
    }

    [Fact]
    public async Task MigrateThenTransformsTest_FreshDatabase_BothSucceedAndSecondMigrateIsANoOp()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = db };

        var dry = await RunAsync(env, "migrate", "--dry-run");
        var first = await RunAsync(env, "migrate");
        var second = await RunAsync(env, "migrate");
        var tests = await RunAsync(env, "transforms", "test");

        Assert.Equal(0, dry.ExitCode);
        Assert.Contains("migrations/0001_cdc_schema.sql", dry.Stdout);
        Assert.Equal(0, first.ExitCode);
        Assert.Contains("applied", first.Stdout);
        Assert.Equal(0, second.ExitCode);
        Assert.Contains("nothing to do", second.Stdout);
        Assert.Equal(0, tests.ExitCode);
        Assert.Contains(" 0 failed", tests.Stdout);
    }

    [Fact]
    public async Task Run_ConfigRoutesToUnknownConnector_ExitCode2NamingTheKey()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, """
            { "Hub": { "ConnectionString": "Host=127.0.0.1;Database=x;Username=u;Password=p" },
              "Connectors": { "target": { "Type": "postgres", "ConnectionString": "Host=127.0.0.1" } },
              "Routes": { "public.t": [ "nope" ] } }
            """);

        var (code, _, stderr) = await RunAsync(new Dictionary<string, string?>(), "run", "--config", path);

        Assert.Equal(2, code);
        Assert.Contains("Routes:public.t", stderr);
        Assert.Contains("'nope'", stderr);
    }
}
