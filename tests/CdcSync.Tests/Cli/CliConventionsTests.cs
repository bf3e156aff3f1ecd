using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Npgsql;

namespace CdcSync.Tests.Cli;

/// <summary>
/// The conventions every verb keeps (issue 14): exit 0 ok, 1 needs attention or failures found, 2
/// usage error or error; one line without a stack trace for anything an operator can cause; a
/// name that does not exist is an error; <c>--json</c> prints one document on stdout.
/// </summary>
public sealed class CliConventionsTests
{
    [Theory]
    [InlineData("status --jsn", "did you mean --json?")]
    [InlineData("slots reset", "'--slot' is required")]
    [InlineData("status --max-lag abc", "'abc'")]
    [InlineData("stauts", "did you mean status?")]
    [InlineData("slots rset", "did you mean reset?")]
    [InlineData("conflicts list --limit -1", "--limit -1 is too small")]
    [InlineData("status --max-lag-bytes -5", "--max-lag-bytes -5 is too small")]
    public async Task UsageError_Exit2NotTheAttentionCode_ErrorAndUsageHintOnStderr(string args, string expected)
    {
        var result = await CliProcess.RunAsync(args.Split(' '));

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal(string.Empty, result.Stdout);
        Assert.Contains(expected, result.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("error: ", result.Stderr, StringComparison.Ordinal);
        // One error line, then where the usage is.
        var lines = result.Stderr.Trim().Split('\n');
        Assert.True(lines.Length == 2, result.ToString());
        Assert.Contains("--help'", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_StillExits0()
    {
        var result = await CliProcess.RunAsync("status", "--help");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("--max-lag", result.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("salesforce", "99999")]
    [InlineData("netsuite", "99999")]
    [InlineData("netsuite", "-1")]
    public async Task Sandbox_PortOutOfRange_OneLineExit2(string system, string port)
    {
        var result = await CliProcess.RunAsync("sandbox", system, "--port", port);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"--port {port} is not a TCP port; use 1 to 65535", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("salesforce")]
    [InlineData("netsuite")]
    public async Task Sandbox_PortInUse_OneLineExit2(string system)
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;

        var result = await CliProcess.RunAsync("sandbox", system, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal($"error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop what listens there, or pick another --port (0 for a free one).", result.Stderr.Trim());
    }

    [Fact]
    public async Task Run_MetricsPortInUse_OneLineNamingTheKeyAndNoStackTrace()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var config = await ConfigAsync(hub, hub, metricsUrl: $"http://127.0.0.1:{port}");

        var result = await CliProcess.RunAsync("run", "--config", config);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.DoesNotContain("   at ", result.Stdout + result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Hosting failed to start", result.Stdout + result.Stderr, StringComparison.Ordinal);
        var line = Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Contains($"port {port} on 127.0.0.1 is already in use", line, StringComparison.Ordinal);
        Assert.Contains("CDCSYNC__Hub__MetricsUrl", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_ADirectory_Exit2SaysItIsADirectory()
    {
        foreach (var verb in new[] { "check", "status", "run" })
        {
            var result = await CliProcess.RunAsync(verb, "--config", Path.GetTempPath());

            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains("is a directory; pass the path of a JSON config file", result.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Status_UnreachableDbOption_ErrorNamesDbNotTheEnvironmentVariable()
    {
        var result = await CliProcess.RunAsync("status", "--db", "Host=127.0.0.1;Port=1;Database=x;Username=u;Password=Secret-77;Timeout=3");

        Assert.True(result.ExitCode == 2, result.ToString());
        var line = Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Contains("fix Host/Port in --db", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Secret-77", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlotsReset_UnknownSlot_Exit2ListingTheKnownOnes_ForeignSlotLeftAlone_KnownOneReset()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var ours = Slot("ours");
        var foreign = Slot("foreign");
        await TestPipeline.ExecuteAsync(hub, $"SELECT pg_create_logical_replication_slot('{ours}', 'pgoutput')");
        await TestPipeline.ExecuteAsync(hub, $"SELECT pg_create_logical_replication_slot('{foreign}', 'pgoutput')");
        await TestPipeline.ExecuteAsync(hub, $"INSERT INTO cdc.slots (slot, publication) VALUES ('{ours}', 'p')");
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub };

        var unknown = await CliProcess.RunAsync(env, "slots", "reset", "--slot", "nope");
        var notOurs = await CliProcess.RunAsync(env, "slots", "reset", "--slot", foreign);
        var list = await CliProcess.RunAsync(env, "slots", "list", "--json");

        Assert.True(unknown.ExitCode == 2, unknown.ToString());
        Assert.Contains("no slot 'nope'", unknown.Stderr, StringComparison.Ordinal);
        Assert.Contains(ours, unknown.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("dropped", unknown.Stdout, StringComparison.Ordinal);
        Assert.True(notOurs.ExitCode == 2, notOurs.ToString());
        Assert.Contains("was not created by CdcSync", notOurs.Stderr, StringComparison.Ordinal);
        Assert.True(list.ExitCode == 0, list.ToString());
        var slots = list.Json().EnumerateArray().ToDictionary(s => s.GetProperty("slot").GetString()!, s => s.GetProperty("createdByCdcSync").GetBoolean());
        Assert.Equal(new Dictionary<string, bool> { [ours] = true, [foreign] = false }, slots);

        var reset = await CliProcess.RunAsync(env, "slots", "reset", "--slot", ours, "--json");

        Assert.True(reset.ExitCode == 0, reset.ToString());
        Assert.True(reset.Json().GetProperty("reset").GetBoolean());
        Assert.Equal("0", await TestPipeline.TextAsync(hub, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{ours}'"));
        Assert.Equal("1", await TestPipeline.TextAsync(hub, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{foreign}'"));
        await TestPipeline.ExecuteAsync(hub, $"SELECT pg_drop_replication_slot('{foreign}')");
    }

    [Fact]
    public async Task Replay_LsnAheadOfTheWal_Exit2AndNothingRequested_UnknownConnectorToo()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        var slot = Slot("replay");
        await PrepareItemsAsync(hub, target, slot);
        var config = await ConfigAsync(hub, target, slot: slot);

        foreach (var extra in new[] { Array.Empty<string>(), ["--dry-run"], ["--json"] })
        {
            var ahead = await CliProcess.RunAsync(["replay", "--config", config, "--connector", "target", "--from-lsn", "FFFFFFFF/0", .. extra]);

            Assert.True(ahead.ExitCode == 2, ahead.ToString());
            var line = Assert.Single(ahead.Stderr.Trim().Split('\n'));
            Assert.Contains("--from-lsn FFFFFFFF/0 is ahead of the hub's current WAL position", line, StringComparison.Ordinal);
            Assert.DoesNotContain("lowered", ahead.Stdout, StringComparison.Ordinal);
        }

        var unknown = await CliProcess.RunAsync("replay", "--config", config, "--connector", "nope", "--from-lsn", "0/0");

        Assert.True(unknown.ExitCode == 2, unknown.ToString());
        Assert.Contains("Connector 'nope' is not defined", unknown.Stderr, StringComparison.Ordinal);
        Assert.Equal("0", await TestPipeline.TextAsync(hub, "SELECT count(*) FROM cdc.replay_requests"));
        await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(hub).Database!);
    }

    [Fact]
    public async Task Replay_Json_DryRunListsTransactions_RequestReportsNothingLoweredForACheckpointBehindTheLsn()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        var slot = Slot("replayjson");
        await PrepareItemsAsync(hub, target, slot);
        var config = await ConfigAsync(hub, target, slot: slot);
        var from = await TestPipeline.TextAsync(hub, $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'");
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items VALUES (1, 'one'), (2, 'two')");

        var dry = await CliProcess.RunAsync("replay", "--config", config, "--connector", "target", "--from-lsn", from, "--dry-run", "--json");
        var request = await CliProcess.RunAsync("replay", "--config", config, "--connector", "target", "--from-lsn", from, "--json");

        Assert.True(dry.ExitCode == 0, dry.ToString());
        var transaction = Assert.Single(dry.Json().GetProperty("transactions").EnumerateArray());
        Assert.Equal(2, transaction.GetProperty("changes").GetInt32());
        Assert.Equal(2, transaction.GetProperty("changesByTable").GetProperty("public.items").GetInt32());
        Assert.Equal(2, dry.Json().GetProperty("totalChanges").GetInt32());
        Assert.True(request.ExitCode == 0, request.ToString());
        var outcome = request.Json();
        Assert.True(outcome.GetProperty("applied").GetBoolean());
        Assert.False(outcome.GetProperty("lowered").GetBoolean());   // the connector never ran: no checkpoint to lower
        Assert.Equal(JsonValueKind.Null, outcome.GetProperty("previousCheckpoint").ValueKind);

        var text = await CliProcess.RunAsync("replay", "--config", config, "--connector", "target", "--from-lsn", from);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("nothing was lowered", text.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("lowered from", text.Stdout, StringComparison.Ordinal);
        await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(hub).Database!);
    }

    [Fact]
    public async Task DeadLetters_UnknownConnectorExit2_JsonListsAndDiscards()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error) VALUES ('salesforce', 'sf_accounts', 'k1', '{}', 'FIELD_CUSTOM_VALIDATION_EXCEPTION')");
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub };

        var unknown = await CliProcess.RunAsync(env, "deadletters", "list", "--connector", "nope");
        var known = await CliProcess.RunAsync(env, "deadletters", "list", "--connector", "salesforce", "--json");
        var id = known.Json()[0].GetProperty("id").GetInt64();
        var discard = await CliProcess.RunAsync(env, "deadletters", "discard", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        var missing = await CliProcess.RunAsync(env, "deadletters", "discard", "999999");
        var empty = await CliProcess.RunAsync(env, "deadletters", "list", "--connector", "salesforce", "--json");

        Assert.True(unknown.ExitCode == 2, unknown.ToString());
        Assert.Contains("no connector 'nope'", unknown.Stderr, StringComparison.Ordinal);
        Assert.Contains("known: salesforce", unknown.Stderr, StringComparison.Ordinal);
        Assert.True(known.ExitCode == 0, known.ToString());
        Assert.Equal("FIELD_CUSTOM_VALIDATION_EXCEPTION", known.Json()[0].GetProperty("error").GetString());
        Assert.Equal("open", known.Json()[0].GetProperty("status").GetString());
        Assert.True(discard.ExitCode == 0, discard.ToString());
        Assert.Equal("discarded", discard.Json()[0].GetProperty("status").GetString());
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("no dead letter with id 999999", missing.Stderr, StringComparison.Ordinal);
        Assert.True(empty.ExitCode == 0, empty.ToString());   // a known connector with nothing open is not an error
        Assert.Equal(0, empty.Json().GetArrayLength());
    }

    [Fact]
    public async Task Check_PendingMigrationAndChangedTransform_ListedByFileExit1_ThenOkAfterMigrate()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await PrepareItemsAsync(hub, target, slot: null);
        var config = await ConfigAsync(hub, target);
        var scripts = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(scripts, "migrations", "9990_cli_pending.sql"), "CREATE TABLE public.cli_pending (id int);\n");
        var transform = Directory.GetFiles(Path.Combine(scripts, "transforms"), "*.sql").Order(StringComparer.Ordinal).First();
        await File.AppendAllTextAsync(transform, "\n-- edited\n");
        var transformFile = "transforms/" + Path.GetFileName(transform);

        var text = await CliProcess.RunAsync("check", "--config", config, "--scripts", scripts);
        var json = await CliProcess.RunAsync("check", "--config", config, "--scripts", scripts, "--json");

        Assert.True(text.ExitCode == 1, text.ToString());
        Assert.Contains("pending: migrations/9990_cli_pending.sql: migration not yet applied", text.Stdout, StringComparison.Ordinal);
        Assert.Contains($"pending: {transformFile}: transform changed since it was deployed", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("run 'cdcsync migrate'", text.Stdout, StringComparison.Ordinal);
        Assert.Equal(string.Empty, text.Stderr);
        Assert.True(json.ExitCode == 1, json.ToString());
        var pending = json.Json().GetProperty("pendingScripts").EnumerateArray()
            .Select(p => $"{p.GetProperty("file").GetString()}|{p.GetProperty("reason").GetString()}").ToList();
        Assert.Equal(["migrations/9990_cli_pending.sql|newMigration", $"{transformFile}|changedTransform"], pending);
        Assert.Equal(0, json.Json().GetProperty("problems").GetArrayLength());
        Assert.False(json.Json().GetProperty("ok").GetBoolean());

        var migrate = await CliProcess.RunAsync(new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub }, "migrate", "--scripts", scripts, "--json");
        var after = await CliProcess.RunAsync("check", "--config", config, "--scripts", scripts, "--json");

        Assert.True(migrate.ExitCode == 0, migrate.ToString());
        Assert.Equal(["migrations/9990_cli_pending.sql", transformFile], migrate.Json().GetProperty("applied").EnumerateArray().Select(a => a.GetString()));
        Assert.True(after.ExitCode == 0, after.ToString());
        Assert.True(after.Json().GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Migrate_DryRunJsonNamesFileAndReason_FailingScriptExits2()
    {
        var hub = await TestPostgres.CreateDatabaseAsync();
        var scripts = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(scripts, "migrations", "9991_broken.sql"), "CREATE TABLE broken (id int,,);\n");
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub };

        var dry = await CliProcess.RunAsync(env, "migrate", "--scripts", scripts, "--dry-run", "--json");
        var run = await CliProcess.RunAsync(env, "migrate", "--scripts", scripts, "--json");

        Assert.True(dry.ExitCode == 0, dry.ToString());
        var first = dry.Json().GetProperty("pending")[0];
        Assert.Equal("migrations/0001_cdc_schema.sql", first.GetProperty("file").GetString());
        Assert.Equal("newMigration", first.GetProperty("reason").GetString());
        Assert.Contains(dry.Json().GetProperty("pending").EnumerateArray(), p => p.GetProperty("reason").GetString() == "newTransform");
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.False(run.Json().GetProperty("succeeded").GetBoolean());
        Assert.Contains("migrations/9991_broken.sql:1", Assert.Single(run.Stderr.Trim().Split('\n')), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TransformsTest_Json_EveryResultWithFileLineAndMessage_Exit1OnAFailure()
    {
        var hub = await TestPostgres.CreateDatabaseAsync();
        var scripts = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(scripts, "transforms", "tests", "zz_cli_json.sql"),
            "-- test: cli json passes\nSELECT cdc_test.assert_equals(1, 1, 'one');\n\n-- test: cli json fails\nSELECT cdc_test.assert_equals(1, 2, 'one is two');\n");

        var result = await CliProcess.RunAsync(new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub }, "transforms", "test", "--scripts", scripts, "--filter", "cli json", "--json");

        Assert.True(result.ExitCode == 1, result.ToString());
        var json = result.Json();
        Assert.Equal(1, json.GetProperty("passed").GetInt32());
        Assert.Equal(1, json.GetProperty("failed").GetInt32());
        Assert.True(json.GetProperty("scratchDatabaseDropped").GetBoolean());
        var failed = Assert.Single(json.GetProperty("results").EnumerateArray(), r => !r.GetProperty("passed").GetBoolean());
        Assert.Equal("cli json fails", failed.GetProperty("name").GetString());
        Assert.Equal(5, failed.GetProperty("line").GetInt32());   // the failing assertion
        Assert.Contains("one is two", failed.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resync_JsonWithoutAWorker_QueuedJobExit1()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await PrepareItemsAsync(hub, target, slot: null);
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items SELECT g, 'v' FROM generate_series(1, 3) g");
        var config = await ConfigAsync(hub, target, slot: Slot("resync"));

        var result = await CliProcess.RunAsync("resync", "--config", config, "--connector", "target", "--table", "public.items", "--json");

        Assert.True(result.ExitCode == 1, result.ToString());
        var job = result.Json();
        Assert.Equal("pending", job.GetProperty("status").GetString());
        Assert.Equal(3, job.GetProperty("rowsTotal").GetInt64());
        Assert.Equal("public.items", job.GetProperty("table").GetString());
        Assert.False(job.GetProperty("workerRunning").GetBoolean());
    }

    [Fact]
    public async Task Audit_RetentionAndPurgeJson_OneDocumentEach()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub };

        var set = await CliProcess.RunAsync(env, "audit", "retention", "45 days", "--json");
        var purge = await CliProcess.RunAsync(env, "audit", "purge", "--json");

        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Equal("45 days", set.Json().GetProperty("retention").GetString());
        Assert.True(purge.ExitCode == 0, purge.ToString());
        Assert.Equal(0, purge.Json().GetProperty("deleted").GetInt64());
    }

    private static string Slot(string what, [CallerMemberName] string test = "") =>
        TestPostgres.DatabaseName(what + "_" + test)[..Math.Min(40, TestPostgres.DatabaseName(what + "_" + test).Length)];

    /// <summary>A hub table public.items routed to a PostgreSQL target with the same table; with a slot, also the slot and its publication.</summary>
    private static async Task PrepareItemsAsync(string hub, string target, string? slot)
    {
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE public.items (id int PRIMARY KEY, v text)");
        await TestPipeline.ExecuteAsync(target, "CREATE TABLE public.items (id int PRIMARY KEY, v text)");
        if (slot is not null)
        {
            await TestPipeline.ExecuteAsync(hub, $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'");
            await TestPipeline.ExecuteAsync(hub, $"CREATE PUBLICATION \"{slot}\" FOR TABLE public.items");
            await TestPipeline.ExecuteAsync(hub, $"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')");
        }
    }

    private static async Task<string> ConfigAsync(string hub, string target, string? slot = null, string metricsUrl = "", [CallerMemberName] string test = "")
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{test}-{Guid.NewGuid():N}.json");
        var name = slot ?? Slot("cfg", test);
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new
        {
            Hub = new { ConnectionString = hub, Slot = name, Publication = name, MetricsUrl = metricsUrl },
            Connectors = new { target = new { Type = "postgres", ConnectionString = target } },
            Routes = new Dictionary<string, string[]> { ["public.items"] = ["target"] },
        }));
        return path;
    }
}
