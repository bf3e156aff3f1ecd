using System.Diagnostics;
using System.Net.Sockets;
using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Connectors;
using CdcSync.Resilience;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Tests.Resilience;

public sealed class ClassifierAndConfigTests
{
    [Theory]
    [InlineData("57P01", FailureKind.Transient)] // admin shutdown
    [InlineData("57P02", FailureKind.Transient)] // crash shutdown
    [InlineData("57P03", FailureKind.Transient)] // cannot connect now: starting up / shutting down
    [InlineData("40001", FailureKind.Transient)] // serialization failure
    [InlineData("40P01", FailureKind.Transient)] // deadlock
    [InlineData("08006", FailureKind.Transient)] // connection failure
    [InlineData("53300", FailureKind.Transient)] // too many connections
    [InlineData("55006", FailureKind.Transient)] // object in use: another worker holds the slot
    [InlineData("42501", FailureKind.Permanent)] // insufficient privilege, "must be owner"
    [InlineData("42P01", FailureKind.Permanent)] // undefined table
    [InlineData("42704", FailureKind.Permanent)] // undefined object
    [InlineData("42883", FailureKind.Permanent)] // undefined function
    [InlineData("28P01", FailureKind.Permanent)] // invalid password
    [InlineData("3D000", FailureKind.Permanent)] // database does not exist
    public void Classify_SqlState_TransientOrPermanent(string sqlState, FailureKind expected)
    {
        Assert.Equal(expected, FailureClassifier.Classify(sqlState));
    }

    [Fact]
    public void Classify_NetworkFailuresAndWrappers_Transient()
    {
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new SocketException((int)SocketError.ConnectionRefused)));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new NpgsqlException("Exception while reading from stream", new IOException("reset"))));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new AggregateException(new TimeoutException())));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new OperatorException("Cannot reach PostgreSQL", null, transient: true)));
        Assert.Equal(FailureKind.Permanent, FailureClassifier.Classify(new OperatorException("Config key X is wrong")));
        Assert.Equal(FailureKind.Transient, CdcSync.Connectors.Http.HttpFailureKind.Throttled.ToFailureKind());
        Assert.Equal(FailureKind.Permanent, CdcSync.Connectors.Http.HttpFailureKind.None.ToFailureKind());
    }

    [Fact]
    public void RestartBackoff_HealthyLongEnough_StartsOverFromTheInitialDelay()
    {
        var time = new ManualTime();
        var backoff = new RestartBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), time, new Random(7));
        var delays = Enumerable.Range(0, 8).Select(_ => backoff.Next()).ToList();
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(30)));
        Assert.True(delays[^1] >= TimeSpan.FromSeconds(15), "the delay should have grown to the cap");

        // Running briefly does not reset it...
        backoff.MarkHealthy();
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(backoff.Next() >= TimeSpan.FromSeconds(15));

        // ...a healthy period does.
        backoff.MarkHealthy();
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.True(backoff.Next() <= TimeSpan.FromSeconds(1));
        Assert.Equal(1, backoff.Attempt);
    }

    private static List<string> Problems(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Hub:ConnectionString", "Host=127.0.0.1;Database=hub;Username=u;Password=p");
        return ConnectorConfig.BindAll(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()).Problems;
    }

    [Fact]
    public void BindAll_UnknownKeysAnywhere_EachNamedWithTheClosestKnownKey()
    {
        var problems = Problems(new()
        {
            ["Hub:Slott"] = "x",
            ["Conectors:x"] = "y",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=h",
            ["Connectors:target:Tabels:public.a:Target"] = "public.b",
            ["Connectors:target:Tables:public.a:Colums:x"] = "y",
            ["Connectors:ns:Type"] = "netsuite",
            ["Connectors:ns:AccountId"] = "a",
            ["Connectors:ns:ConsumerKey"] = "a",
            ["Connectors:ns:ConsumerSecret"] = "a",
            ["Connectors:ns:TokenId"] = "a",
            ["Connectors:ns:TokenSecret"] = "a",
            ["Connectors:ns:Resilience:MaxRetryAttemps"] = "3",
            ["Routes:public.a:0"] = "target",
        });

        Assert.Contains(problems, p => p.Contains("Hub:Slott", StringComparison.Ordinal) && p.Contains("did you mean Hub:Slot?", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Conectors", StringComparison.Ordinal) && p.Contains("did you mean Connectors?", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("did you mean Connectors:target:Tables?", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("did you mean Connectors:target:Tables:public.a:Columns?", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("did you mean Connectors:ns:Resilience:MaxRetryAttempts?", StringComparison.Ordinal));
        Assert.Equal(5, problems.Count);
    }

    [Theory]
    [InlineData("1000")]
    [InlineData("-5")]
    public void BindAll_NestedOptionOutOfRange_NamesTheNestedKey(string value)
    {
        var problems = Problems(new()
        {
            ["Connectors:ns:Type"] = "netsuite",
            ["Connectors:ns:AccountId"] = "a",
            ["Connectors:ns:ConsumerKey"] = "a",
            ["Connectors:ns:ConsumerSecret"] = "a",
            ["Connectors:ns:TokenId"] = "a",
            ["Connectors:ns:TokenSecret"] = "a",
            ["Connectors:ns:Resilience:MaxRetryAttempts"] = value,
            ["Routes:public.ns_customers:0"] = "ns",
        });

        var problem = Assert.Single(problems);
        Assert.Contains("Connectors:ns:Resilience:MaxRetryAttempts", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Bind_PostgresConnectorWithoutConnectionString_OneLineNamingTheKey()
    {
        var e = Assert.Throws<OperatorException>(() => ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = "Host=h",
            ["Connectors:t:Type"] = "postgres",
            ["Routes:public.t:0"] = "t",
        }).Build()));
        Assert.Contains("Connectors:t:ConnectionString", e.Message, StringComparison.Ordinal);
        Assert.Contains("${CDCSYNC_TARGET_DB}", e.Message, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static async Task<string> ConfigFileAsync(string name, string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{name}.json");
        await File.WriteAllTextAsync(path, json);
        return path;
    }

    [Fact]
    public async Task Run_GarbageHubConnectionString_OneLineAndExitCode2()
    {
        var config = await ConfigFileAsync(nameof(Run_GarbageHubConnectionString_OneLineAndExitCode2), """
            { "Hub": { "ConnectionString": "not a connection string at all" }, "Connectors": { "t": { "Type": "postgres", "ConnectionString": "Host=127.0.0.1" } }, "Routes": { "public.t": ["t"] } }
            """);
        var (code, _, stderr) = await CliAsync("run", "--config", config);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("Hub:ConnectionString", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAndRun_BadTargetAndTypos_EveryProblemListedExit2AndNoSlotCreated()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE public.present (id int PRIMARY KEY)");
        var config = await ConfigFileAsync(nameof(CheckAndRun_BadTargetAndTypos_EveryProblemListedExit2AndNoSlotCreated), $$"""
            {
              "Hub": { "ConnectionString": "{{hub}}", "Slot": "check_no_orphan", "Publication": "check_no_orphan", "StatusIntervall": "00:00:01" },
              "Connectors": { "target": { "Type": "postgres", "ConnectionString": "{{target}}" } },
              "Routes": { "public.present": ["target"], "public.absent": ["target"] }
            }
            """);

        var (code, _, stderr) = await CliAsync("check", "--config", config);
        Assert.Equal(2, code);
        Assert.Contains("did you mean Hub:StatusInterval?", stderr, StringComparison.Ordinal);
        Assert.Contains("\"public\".\"absent\", which does not exist in the hub", stderr, StringComparison.Ordinal);
        Assert.Contains("target table \"public\".\"present\"", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", stderr, StringComparison.OrdinalIgnoreCase);

        // Without the typo, run still refuses: before any slot or publication exists.
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace(", \"StatusIntervall\": \"00:00:01\"", string.Empty, StringComparison.Ordinal));
        (code, _, stderr) = await CliAsync("run", "--config", config);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("0", await TestPipeline.TextAsync(hub, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'check_no_orphan'"));
        Assert.Equal("0", await TestPipeline.TextAsync(hub, "SELECT count(*) FROM pg_publication WHERE pubname = 'check_no_orphan'"));
    }

    [Fact]
    public async Task Migrate_UserWithoutCreateOnTheDatabase_OneLineNamingTheGrantAndExitCode2()
    {
        var database = await TestPostgres.CreateDatabaseAsync();
        await TestPipeline.ExecuteAsync(database, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_nocreate_role') THEN CREATE ROLE cdc_nocreate_role LOGIN; END IF; END $$; ALTER ROLE cdc_nocreate_role PASSWORD 'nocreate'; REVOKE CREATE ON SCHEMA public FROM PUBLIC");
        var limited = new NpgsqlConnectionStringBuilder(database) { Username = "cdc_nocreate_role", Password = "nocreate" }.ConnectionString;

        var (code, _, stderr) = await CliAsync("migrate", "--db", limited);

        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Trim().Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains("GRANT CREATE ON DATABASE", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    private sealed class ManualTime : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
