using System.Diagnostics;
using System.Text.Json;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Operations;

/// <summary>
/// A hub table public.items routed to two PostgreSQL connectors, "a" and "b", which write it to
/// a_items and b_items in one target database; every write a target receives is logged in
/// write_log (by a trigger, so a rolled-back batch leaves no entry).
/// </summary>
internal sealed class OpsHarness
{
    public required string Hub { get; init; }

    public required string Target { get; init; }

    public required string Slot { get; init; }

    public required string ConfigPath { get; init; }

    public static async Task<OpsHarness> CreateAsync(string testName, IReadOnlyDictionary<string, object>? hubSettings = null, string itemsDdl = "id int PRIMARY KEY, v text")
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(testName);
        var target = await TestPostgres.CreateDatabaseAsync(testName, "_target");
        await TestPipeline.ExecuteAsync(hub, $"CREATE TABLE public.items ({itemsDdl})");
        await TestPipeline.ExecuteAsync(target, $"""
            CREATE TABLE public.a_items ({itemsDdl});
            CREATE TABLE public.b_items ({itemsDdl});
            CREATE TABLE public.write_log (n bigserial PRIMARY KEY, target text NOT NULL, id int NOT NULL, op text NOT NULL);
            CREATE FUNCTION public.log_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.write_log (target, id, op) VALUES (TG_TABLE_NAME, NEW.id, TG_OP);
                RETURN NEW;
            END $$;
            CREATE TRIGGER a_log AFTER INSERT OR UPDATE ON public.a_items FOR EACH ROW EXECUTE FUNCTION public.log_write();
            CREATE TRIGGER b_log AFTER INSERT OR UPDATE ON public.b_items FOR EACH ROW EXECUTE FUNCTION public.log_write();
            """);
        var slot = TestPostgres.DatabaseName(testName);
        var settings = new Dictionary<string, object>
        {
            ["ConnectionString"] = hub,
            ["Slot"] = slot,
            ["Publication"] = slot,
            ["HeartbeatInterval"] = "00:00:01",
            ["StatusInterval"] = "00:00:00.2",
            ["MaxRestartDelay"] = "00:00:02",
            ["MetricsUrl"] = "",
        };
        foreach (var (key, value) in hubSettings ?? new Dictionary<string, object>())
        {
            settings[key] = value;
        }

        var dir = Path.Combine(Path.GetTempPath(), "cdcsync-ops-" + TestPostgres.DatabaseName(testName));
        Directory.CreateDirectory(dir);
        var configPath = Path.Combine(dir, "pipeline.json");
        await File.WriteAllTextAsync(configPath, JsonSerializer.Serialize(new
        {
            Hub = settings,
            Connectors = new Dictionary<string, object>
            {
                ["a"] = new { Type = "postgres", ConnectionString = target, Tables = new Dictionary<string, object> { ["public.items"] = new { Target = "public.a_items" } } },
                ["b"] = new { Type = "postgres", ConnectionString = target, Tables = new Dictionary<string, object> { ["public.items"] = new { Target = "public.b_items" } } },
            },
            Routes = new Dictionary<string, string[]> { ["public.items"] = ["a", "b"] },
        }));
        return new OpsHarness { Hub = hub, Target = target, Slot = slot, ConfigPath = configPath };
    }

    public CdcSyncOptions Options() => ConnectorConfig.Bind(ConfigLoader.Build(ConfigPath));

    public const string HubItems = "SELECT coalesce(string_agg(t::text, ';' ORDER BY id), '') FROM public.items t";

    public static string TargetItems(string table) => $"SELECT coalesce(string_agg(t::text, ';' ORDER BY id), '') FROM public.{table} t";

    /// <summary>Waits until both targets hold exactly the hub's rows.</summary>
    public async Task WaitForTargetsAsync(TimeSpan? timeout = null)
    {
        string? hub = null, a = null, b = null;
        try
        {
            await TestPipeline.WaitUntilAsync(async () =>
            {
                hub = await TestPipeline.TextAsync(Hub, HubItems);
                a = await TestPipeline.TextAsync(Target, TargetItems("a_items"));
                b = await TestPipeline.TextAsync(Target, TargetItems("b_items"));
                return hub == a && hub == b;
            }, timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"targets never matched the hub.\nhub: {Clip(hub)}\na:   {Clip(a)}\nb:   {Clip(b)}");
        }
    }

    public async Task<string> WritesAsync(string table) =>
        await TestPipeline.TextAsync(Target, $"SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM public.write_log WHERE target = '{table}'");

    public async Task<string> CheckpointAsync(string connector) =>
        await TestPipeline.TextAsync(Target, $"SELECT lsn::text FROM cdcsync.checkpoints WHERE connector = '{connector}'");

    public async Task<string> WalPositionAsync() => await TestPipeline.TextAsync(Hub, "SELECT pg_current_wal_lsn()::text");

    /// <summary>Waits until a worker streams the slot, so changes made from now on are captured.</summary>
    public async Task WaitSlotActiveAsync(CrashLog? log = null)
    {
        try
        {
            await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(Hub, TestPipeline.StreamingSql(Slot)) == "1", TestPipeline.StreamingTimeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"no worker started streaming slot {Slot}.\n{log?.Tail()}");
        }
    }

    public async Task<string> ConfirmedAsync() => await TestPipeline.TextAsync(Hub, $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{Slot}'");

    /// <summary>Runs the worker in this process (the same code `cdcsync run` runs).</summary>
    public InProcessWorker StartWorker()
    {
        var options = Options();
        var hubSource = NpgsqlDataSource.Create(options.Hub.ConnectionString);
        var worker = new Worker(
            options,
            name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, NullLoggerFactory.Instance),
            _ => null,
            NullLoggerFactory.Instance);
        return new InProcessWorker(worker, hubSource);
    }

    /// <summary>The real executable, as an operator runs it.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var result = await CliProcess.RunAsync(args);
        return (result.ExitCode, result.Stdout, result.Stderr);
    }

    private static string Clip(string? s) => s is null ? "<none>" : s.Length > 300 ? s[..300] + "…" : s;
}

internal sealed class InProcessWorker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly NpgsqlDataSource _hub;
    private readonly Task _run;

    public InProcessWorker(Worker worker, NpgsqlDataSource hub)
    {
        Worker = worker;
        _hub = hub;
        _run = Task.Run(() => worker.RunAsync(_stop.Token));
    }

    public Worker Worker { get; }

    public async Task WaitStreamingAsync()
    {
        try
        {
            await TestPipeline.WaitUntilAsync(async () =>
            {
                if (_run.IsFaulted)
                {
                    await _run;
                }

                return Worker.IsReady;
            }, TestPipeline.StreamingTimeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the worker did not start streaming in {TestPipeline.StreamingTimeout.TotalSeconds} s: {Worker.State}, {Worker.Stage}; last error: {Worker.Runner?.LastError}");
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _run;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (Exception)
        {
            // The test already reported what went wrong.
        }

        await _hub.DisposeAsync();
        _stop.Dispose();
    }
}
