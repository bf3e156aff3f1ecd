using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Pipeline;

/// <summary>A pipeline running in the test process against real databases.</summary>
internal sealed class TestPipeline : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;

    private TestPipeline(PipelineRunner runner) => Runner = runner;

    public PipelineRunner Runner { get; }

    /// <param name="connectors">Connector name to its target database (postgres connectors).</param>
    /// <param name="routes">Hub table (config syntax) to connector names.</param>
    /// <summary>How long a test waits for a worker to stream: creating a slot waits for every open transaction on the shared server (other suites' loads).</summary>
    public static readonly TimeSpan StreamingTimeout = TimeSpan.FromSeconds(180);

    /// <summary>
    /// Counts walsenders streaming <paramref name="slot"/>. A slot being created is already listed as
    /// active (for the backend creating it), before it can stream anything: a change committed then is
    /// not captured, so "active" alone is not "streaming".
    /// </summary>
    public static string StreamingSql(string slot) =>
        $"SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = '{slot}' AND a.backend_type = 'walsender'";

    public static async Task<TestPipeline> StartAsync(string hub, string slot, IReadOnlyDictionary<string, string> connectors, IReadOnlyDictionary<string, string[]> routes, IReadOnlyDictionary<string, string?>? extra = null, bool waitForStreaming = true)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Hub:Slot"] = slot,
            ["Hub:Publication"] = slot,
            ["Hub:HeartbeatInterval"] = "00:00:01",
            ["Hub:StatusInterval"] = "00:00:00.200",
            ["Hub:MaxRestartDelay"] = "00:00:02",
            // Tests that watch the slot advance want it confirmed right at the checkpoints.
            ["Hub:ReplayRetentionBytes"] = "0",
            ["Hub:MetricsUrl"] = "",
        };
        foreach (var (name, target) in connectors)
        {
            settings[$"Connectors:{name}:Type"] = "postgres";
            settings[$"Connectors:{name}:ConnectionString"] = target;
        }

        foreach (var (table, targets) in routes)
        {
            for (var i = 0; i < targets.Length; i++)
            {
                settings[$"Routes:{table}:{i}"] = targets[i];
            }
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        var hubSource = NpgsqlDataSource.Create(hub);
        var runner = new PipelineRunner(options, name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, NullLoggerFactory.Instance), NullLoggerFactory.Instance);
        var pipeline = new TestPipeline(runner);
        pipeline._run = Task.Run(() => runner.RunAsync(pipeline._stop.Token));
        // Running means the server streams the slot to this runner, so changes made from now on
        // are captured. A test of a runner that cannot stream (a second worker on a held slot)
        // waits for what it expects itself.
        if (waitForStreaming)
        {
            try
            {
                await WaitUntilAsync(() => Task.FromResult(runner.Health == PipelineHealth.Running || pipeline._run.IsCompleted), StreamingTimeout);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"the pipeline did not start streaming slot {slot} in {StreamingTimeout.TotalSeconds} s: {runner.Health}, {runner.Stage}; last error: {runner.LastError}");
            }
        }

        if (pipeline._run.IsFaulted)
        {
            await pipeline._run;
        }

        return pipeline;
    }

    public static async Task<string> MigratedHubAsync(string name)
    {
        return await TestPostgres.CreateMigratedHubAsync(name);
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!await condition())
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"condition not met within {timeout}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits until the query gives the same text on both databases.</summary>
    public async Task WaitForSameAsync(string hub, string target, string query, TimeSpan? timeout = null)
    {
        string? last = null;
        string? expected = null;
        try
        {
            await WaitUntilAsync(async () =>
            {
                if (_run!.IsFaulted)
                {
                    await _run;
                }

                expected = await TextAsync(hub, query);
                last = await TextAsync(target, query);
                return expected == last;
            }, timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"target never matched the hub.\nhub:    {Clip(expected)}\ntarget: {Clip(last)}\npipeline: {Runner.Health} {Runner.LastError}");
        }
    }

    public static async Task<string> TextAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (await cmd.ExecuteScalarAsync())?.ToString() ?? "<null>";
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Waits for the pipeline to end by itself (a permanent failure) and rethrows what ended it.</summary>
    public async Task StopWhenEndedAsync(TimeSpan timeout)
    {
        await _run!.WaitAsync(timeout);
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            try
            {
                await _run;
            }
            catch (Exception)
            {
                // The test already reported what went wrong.
            }
        }

        _stop.Dispose();
    }

    private static string Clip(string? s) => s is null ? "<none>" : s.Length > 400 ? s[..400] + "…" : s;
}
