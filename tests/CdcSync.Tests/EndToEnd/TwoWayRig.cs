using System.Runtime.CompilerServices;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Inbound;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Connectors.Salesforce;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// The whole two-way product in one process: a hub migrated from the checkout's SQL (plus any SQL
/// a test adds), both sandboxes over loopback HTTP, and the pipeline running the shipped
/// examples/salesforce-netsuite.json mapping with short poll intervals.
/// </summary>
public sealed class TwoWayRig : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;
    private PipelineRunner? _runner;
    private int _inboundCreated;

    private TwoWayRig(NpgsqlDataSource hub, SalesforceSandbox salesforce, NetSuiteSandbox netsuite)
    {
        Hub = hub;
        Salesforce = salesforce;
        NetSuite = netsuite;
    }

    public NpgsqlDataSource Hub { get; }

    public SalesforceSandbox Salesforce { get; }

    public NetSuiteSandbox NetSuite { get; }

    public Logs Logs { get; } = new();

    /// <summary>The running pipeline (restarts, health).</summary>
    internal PipelineRunner Runner => _runner!;

    /// <summary>Inbound connectors the pipeline has made: one per system unless the inbound side restarted.</summary>
    public int InboundConnectorsCreated => Volatile.Read(ref _inboundCreated);

    /// <param name="extraSql">Run on the hub after migrations and transforms, before the pipeline starts (a test's own migration and transform).</param>
    /// <param name="settings">Config keys to add or override, e.g. routes of a table the extra SQL adds.</param>
    /// <param name="wrapInbound">Wraps each inbound connector the pipeline makes (a test that holds a page read, to fix an order of events).</param>
    public static async Task<TwoWayRig> StartAsync(string? extraSql = null, IReadOnlyDictionary<string, string?>? settings = null, Func<IOutboundConnector, IOutboundConnector>? wrapOutbound = null, Func<IInboundConnector, IInboundConnector>? wrapInbound = null, [CallerMemberName] string name = "")
    {
        var rig = await CreateAsync(extraSql, settings, wrapOutbound, name);
        rig._wrapInbound = wrapInbound;
        await rig.StartPipelineAsync();
        return rig;
    }

    /// <summary>Hub, sandboxes and config, without the pipeline (seed the sandboxes, run the CLI, then <see cref="StartPipelineAsync"/>).</summary>
    public static async Task<TwoWayRig> CreateAsync(string? extraSql = null, IReadOnlyDictionary<string, string?>? settings = null, Func<IOutboundConnector, IOutboundConnector>? wrapOutbound = null, [CallerMemberName] string name = "")
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(name);
        var hub = NpgsqlDataSource.Create(connectionString);
        if (extraSql is not null)
        {
            await using var cmd = hub.CreateCommand(extraSql);
            await cmd.ExecuteNonQueryAsync();
        }

        // A large daily allowance: the idle-poll budget must not slow the test's polling.
        var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 1_000_000_000 }, CancellationToken.None);
        var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var rig = new TwoWayRig(hub, salesforce, netsuite);

        var slot = "e2e_" + new string(name.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(40).ToArray());
        var config = Settings(connectionString, slot, salesforce, netsuite);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        rig.Config = config;
        rig._wrapOutbound = wrapOutbound;
        return rig;
    }

    /// <summary>The rig's config keys (flattened, e.g. <c>Hub:Slot</c>).</summary>
    public IReadOnlyDictionary<string, string?> Config { get; private set; } = new Dictionary<string, string?>();

    private Func<IOutboundConnector, IOutboundConnector>? _wrapOutbound;

    private Func<IInboundConnector, IInboundConnector>? _wrapInbound;

    /// <summary>Sets a config key before <see cref="StartPipelineAsync"/> (one that needs the sandboxes' addresses).</summary>
    public void Configure(string key, string? value) => ((Dictionary<string, string?>)Config)[key] = value;

    /// <summary>Stops the pipeline (as a worker that is stopped); <see cref="StartPipelineAsync"/> starts a new one on the same hub.</summary>
    public async Task StopPipelineAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (Exception e) when (e is OperationCanceledException || _stop.IsCancellationRequested)
        {
        }

        _stop.Dispose();
        _stop = new CancellationTokenSource();
    }

    /// <summary>Writes the rig's config as a JSON file for the CLI (<c>--config</c>); returns its path.</summary>
    public async Task<string> WriteConfigFileAsync([CallerMemberName] string name = "")
    {
        var root = new System.Text.Json.Nodes.JsonObject();
        foreach (var (key, value) in Config)
        {
            var node = root;
            var parts = key.Split(':');
            foreach (var part in parts[..^1])
            {
                node = (node[part] ??= new System.Text.Json.Nodes.JsonObject()).AsObject();
            }

            node[parts[^1]] = value;
        }

        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{name}-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, root.ToJsonString());
        return path;
    }

    public async Task StartPipelineAsync()
    {
        var hub = Hub;
        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(Config).Build());
        var rig = this;
        _runner = new PipelineRunner(
            options,
            n => (_wrapOutbound ?? (c => c))(ConnectorRegistry.Default.CreateOutbound(n, options.Connectors[n], hub, rig.Logs.Factory)),
            rig.Logs.Factory,
            n =>
            {
                var inbound = ConnectorRegistry.Default.CreateInbound(n, options.Connectors[n], hub, rig.Logs.Factory);
                if (inbound is not null)
                {
                    Interlocked.Increment(ref rig._inboundCreated);
                }

                return inbound is not null && rig._wrapInbound is { } wrap ? wrap(inbound) : inbound;
            });
        var runner = _runner;
        _run = Task.Run(() => runner.RunAsync(_stop.Token));
        await WaitUntilAsync("the pipeline to stream", () => Task.FromResult(runner.Health == PipelineHealth.Running), CdcSync.Tests.Pipeline.TestPipeline.StreamingTimeout);
        // A first run onboards every system before polling it: tests start once that is settled,
        // so what they do next flows as on any later day.
        await WaitUntilAsync("the first run's onboarding to settle", async () => InboundConnectorsCreated == 0 || await ScalarAsync<bool>(
            """
            SELECT to_regprocedure('cdc.onboard_begin(text)') IS NULL
                OR (EXISTS (SELECT 1 FROM cdc.onboarding) AND NOT EXISTS (SELECT 1 FROM cdc.onboarding WHERE phase <> 'settled'))
            """), TimeSpan.FromSeconds(120));
    }

    /// <summary>
    /// The config of the two-way example pointed at a hub and the two sandboxes, with short poll
    /// and status intervals for tests.
    /// </summary>
    public static Dictionary<string, string?> Settings(string connectionString, string slot, SalesforceSandbox salesforce, NetSuiteSandbox netsuite)
    {
        var config = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = connectionString,
            ["Hub:Slot"] = slot,
            ["Hub:Publication"] = slot,
            ["Hub:HeartbeatInterval"] = "00:00:01",
            ["Hub:StatusInterval"] = "00:00:00.200",
            ["Hub:InboundPollInterval"] = "00:00:00.200",
            ["Hub:MaxRestartDelay"] = "00:00:02",

            ["Connectors:salesforce:Type"] = "salesforce",
            ["Connectors:salesforce:LoginUrl"] = salesforce.BaseUrl.ToString(),
            ["Connectors:salesforce:ClientId"] = SalesforceSandboxOptions.DefaultClientId,
            ["Connectors:salesforce:ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
            ["Connectors:salesforce:Inbound:Enabled"] = "true",
            ["Connectors:salesforce:Inbound:MaxIdleInterval"] = "00:00:00.400",

            ["Connectors:netsuite:Type"] = "netsuite",
            ["Connectors:netsuite:AccountId"] = NetSuiteSandboxOptions.DefaultAccountId,
            ["Connectors:netsuite:BaseUrl"] = netsuite.BaseUrl.ToString(),
            ["Connectors:netsuite:ConsumerKey"] = NetSuiteSandboxOptions.DefaultConsumerKey,
            ["Connectors:netsuite:ConsumerSecret"] = NetSuiteSandboxOptions.DefaultConsumerSecret,
            ["Connectors:netsuite:TokenId"] = NetSuiteSandboxOptions.DefaultTokenId,
            ["Connectors:netsuite:TokenSecret"] = NetSuiteSandboxOptions.DefaultTokenSecret,
            ["Connectors:netsuite:Inbound:Enabled"] = "true",
            ["Connectors:netsuite:Inbound:MaxIdleInterval"] = "00:00:00.400",
        };
        foreach (var (key, value) in ExampleConfig.MappingSettings())
        {
            config[key] = value;
        }

        return config;
    }

    public async Task WaitUntilAsync(string what, Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        while (!await condition())
        {
            if (_run.IsFaulted)
            {
                await _run;
            }

            if (cts.IsCancellationRequested)
            {
                var errors = Logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).TakeLast(6).Select(l => l.Length > 600 ? l[..600] : l);
                // What the hub did last and what it holds back, so a rare timeout can be read from the log.
                var audit = await ScalarAsync<string>("SELECT string_agg(line, E'\\n' ORDER BY id) FROM (SELECT id, applied_at::time::text || ' ' || connector || ' ' || direction || ' ' || object || ' ' || record_key || ' ' || operation || ' ' || coalesce(changes::text, '') AS line FROM cdc.audit_log ORDER BY id DESC LIMIT 12) t");
                var conflicts = await ScalarAsync<string>("SELECT string_agg(object || ' ' || record_key || ' ' || policy || ' ' || coalesce(decision, '') || ' ' || status, E'\\n' ORDER BY id) FROM cdc.conflicts");
                var connectorLines = Logs.Lines.Where(l => l.Contains("CdcSync.Connectors", StringComparison.Ordinal) && !l.Contains("Inbound", StringComparison.Ordinal) && !l.StartsWith("Trace", StringComparison.Ordinal)).TakeLast(20).Select(l => l.Length > 400 ? l[..400] : l);
                Assert.Fail($"timed out waiting for {what}; pipeline {_runner?.Health} {_runner?.LastError}\n{string.Join('\n', errors)}\nconnectors (newest 20):\n{string.Join('\n', connectorLines)}\naudit (newest 12):\n{audit}\nconflicts:\n{conflicts}\nsandbox writes: Salesforce {Salesforce.Stats.Writes}, NetSuite {NetSuite.Stats.Writes}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Waits until neither sandbox has taken a write for a while (every echo played out: both
    /// systems are polled at least every 0.4 s, the slot acknowledged every 0.2 s).
    /// </summary>
    public async Task QuietAsync()
    {
        var quietFor = TimeSpan.FromSeconds(3);
        var last = (Salesforce.Stats.Writes, NetSuite.Stats.Writes);
        var since = DateTime.UtcNow;
        using var cts = new CancellationTokenSource(Timeout);
        while (DateTime.UtcNow - since < quietFor)
        {
            cts.Token.ThrowIfCancellationRequested();
            await Task.Delay(200);
            var now = (Salesforce.Stats.Writes, NetSuite.Stats.Writes);
            if (now != last)
            {
                last = now;
                since = DateTime.UtcNow;
            }
        }
    }

    public async Task<T?> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var cmd = Hub.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (Exception e) when (e is OperationCanceledException || _stop.IsCancellationRequested)
        {
            // Stopping mid-call may surface as the call's own exception; the test's assertions have decided.
        }

        await Salesforce.DisposeAsync();
        await NetSuite.DisposeAsync();
        await Hub.DisposeAsync();
        _stop.Dispose();
    }
}
