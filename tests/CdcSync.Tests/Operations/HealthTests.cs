using System.Net;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Operations;

public sealed class HealthTests
{
    /// <summary>
    /// Every HTTP connector reports its circuit breaker (the <c>IHasCircuit</c> capability): while its
    /// system answers 503 and a change waits, <c>/readyz</c> is 503 naming it, the gauge is 1, and the
    /// status row (<c>cdcsync status --json</c>) says open; <c>/healthz</c> and metrics stay up.
    /// </summary>
    [Theory]
    [InlineData("salesforce")]
    [InlineData("netsuite")]
    [InlineData("webhook")]
    public async Task Readyz_ConnectorCircuitOpens_TurnsUnreadyNamingIt_WhileHealthzAndMetricsStayUp(string type)
    {
        var name = "Readyz_CircuitOpens_" + type;
        var hub = await TestPostgres.CreateMigratedHubAsync(name);
        await using var system = await OutageSystem.StartAsync(type);
        var slot = TestPostgres.DatabaseName(name);
        var settings = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Hub:Slot"] = slot,
            ["Hub:Publication"] = slot,
            ["Hub:StatusInterval"] = "00:00:00.2",
            ["Hub:MaxRestartDelay"] = "00:00:01",
            ["Connectors:c:Type"] = type,
            ["Connectors:c:Resilience:MaxRetryAttempts"] = "1",
            ["Connectors:c:Resilience:RetryBaseDelay"] = "00:00:00.020",
            ["Connectors:c:Resilience:RetryMaxDelay"] = "00:00:00.100",
            ["Connectors:c:Resilience:CircuitBreakerMinimumThroughput"] = "2",
            ["Connectors:c:Resilience:CircuitBreakerSamplingDuration"] = "00:00:10",
            // Long enough to see it open; short enough that the clean stop at the end, which drains
            // what the writer holds once the system is back, does not wait a minute for the breaker.
            ["Connectors:c:Resilience:CircuitBreakerBreakDuration"] = "00:00:15",
            [$"Routes:public.{system.Table}:0"] = "c",
        };
        foreach (var (key, value) in system.Settings)
        {
            settings["Connectors:c:" + key] = value;
        }

        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        await using var hubSource = NpgsqlDataSource.Create(hub);
        var worker = new Worker(options, n => ConnectorRegistry.Default.CreateOutbound(n, options.Connectors[n], hubSource, NullLoggerFactory.Instance), _ => null, NullLoggerFactory.Instance);
        await using var health = await HealthServer.StartAsync("http://127.0.0.1:0", worker, NullLoggerFactory.Instance, CancellationToken.None);
        using var http = new HttpClient { BaseAddress = new Uri(health.Address) };
        using var stop = new CancellationTokenSource();
        var run = Task.Run(() => worker.RunAsync(stop.Token));
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
            await TestPipeline.WaitUntilAsync(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK || run.IsCompleted, TestPipeline.StreamingTimeout);
            Assert.False(run.IsCompleted, run.Exception?.ToString());
            await TestPipeline.ExecuteAsync(hub, system.Insert("Before outage"));
            await TestPipeline.WaitUntilAsync(() => Task.FromResult(system.Received >= 1), TimeSpan.FromSeconds(30));

            system.StartOutage();
            await TestPipeline.ExecuteAsync(hub, system.Insert("During outage 1"));
            await TestPipeline.ExecuteAsync(hub, system.Insert("During outage 2"));
            string body = "";
            await TestPipeline.WaitUntilAsync(async () =>
            {
                var response = await http.GetAsync("/readyz");
                body = await response.Content.ReadAsStringAsync();
                return response.StatusCode == HttpStatusCode.ServiceUnavailable && body.Contains("open circuits: c", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(60));

            Assert.Contains("not ready", body);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("cdcsync_circuit_open{connector=\"c\"} 1", metrics);
            Assert.Contains("cdcsync_changes_applied_total{connector=\"c\"}", metrics);
            Assert.Contains("cdcsync_batch_duration_seconds_bucket{connector=\"c\"", metrics);
            Assert.Contains("cdcsync_replay_window_bytes", metrics);
            Assert.Contains("cdcsync_build_info{version=\"", metrics);
            Assert.Contains("# TYPE cdcsync_pipeline_restarts_total counter", metrics);
            await TestPipeline.WaitUntilAsync(async () =>
            {
                var status = await new StatusService(hub, options).GetAsync(new StatusThresholds(TimeSpan.FromMinutes(5), long.MaxValue), CancellationToken.None);
                return status.Connectors.Any(c => c.Connector == "c" && c.Circuit == "open");
            }, TimeSpan.FromSeconds(30));
        }
        finally
        {
            system.EndOutage();
            await stop.CancelAsync();
            await run.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>A system to write to that can be made to answer 503 to everything: a sandbox, or a webhook receiver.</summary>
    private sealed class OutageSystem : IAsyncDisposable
    {
        private readonly Func<int> _received;
        private readonly Action _startOutage;
        private readonly Action _endOutage;
        private readonly Func<ValueTask> _dispose;

        private OutageSystem(string table, Func<string, string> insert, Dictionary<string, string?> settings, Func<int> received, (Action Start, Action End) outage, Func<ValueTask> dispose)
        {
            Table = table;
            Insert = insert;
            Settings = settings;
            _received = received;
            (_startOutage, _endOutage) = outage;
            _dispose = dispose;
        }

        public string Table { get; }

        /// <summary>SQL that adds one row named so to the routed table.</summary>
        public Func<string, string> Insert { get; }

        public Dictionary<string, string?> Settings { get; }

        public int Received => _received();

        public void StartOutage() => _startOutage();

        public void EndOutage() => _endOutage();

        public ValueTask DisposeAsync() => _dispose();

        public static async Task<OutageSystem> StartAsync(string type)
        {
            switch (type)
            {
                case "salesforce":
                {
                    var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
                    return new OutageSystem(
                        "sf_accounts",
                        n => $"INSERT INTO sf_accounts (name) VALUES ('{n}')",
                        new()
                        {
                            ["LoginUrl"] = sandbox.BaseUrl.ToString(),
                            ["ClientId"] = SalesforceSandboxOptions.DefaultClientId,
                            ["ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
                            ["Objects:0:SObject"] = "Account",
                            ["Objects:0:Table"] = "sf_accounts",
                        },
                        () => sandbox.Records("Account").Count,
                        (() => sandbox.Options.StartOutage(TimeSpan.FromMinutes(2)), () => sandbox.Options.StartOutage(TimeSpan.Zero)),
                        sandbox.DisposeAsync);
                }

                case "netsuite":
                {
                    var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
                    return new OutageSystem(
                        "ns_customers",
                        n => $"INSERT INTO ns_customers (externalid, companyname) VALUES ('health-{n.Replace(' ', '-')}', '{n}')",
                        new()
                        {
                            ["AccountId"] = NetSuiteSandboxOptions.DefaultAccountId,
                            ["BaseUrl"] = sandbox.BaseUrl.ToString(),
                            ["ConsumerKey"] = NetSuiteSandboxOptions.DefaultConsumerKey,
                            ["ConsumerSecret"] = NetSuiteSandboxOptions.DefaultConsumerSecret,
                            ["TokenId"] = NetSuiteSandboxOptions.DefaultTokenId,
                            ["TokenSecret"] = NetSuiteSandboxOptions.DefaultTokenSecret,
                            ["Records:0:RecordType"] = "customer",
                            ["Records:0:Table"] = "ns_customers",
                        },
                        () => sandbox.CustomerCount,
                        (() => sandbox.Options.StartOutage(TimeSpan.FromMinutes(2)), sandbox.Options.EndOutage),
                        sandbox.DisposeAsync);
                }

                default:
                {
                    var outage = false;
                    var received = 0;
                    var builder = WebApplication.CreateSlimBuilder();
                    builder.Logging.ClearProviders();
                    builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
                    var app = builder.Build();
                    app.MapPost("/hook", () =>
                    {
                        if (Volatile.Read(ref outage))
                        {
                            return Results.StatusCode(503);
                        }

                        Interlocked.Increment(ref received);
                        return Results.Ok();
                    });
                    await app.StartAsync();
                    var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
                    return new OutageSystem(
                        "sf_accounts",
                        n => $"INSERT INTO sf_accounts (name) VALUES ('{n}')",
                        new() { ["Url"] = address.TrimEnd('/') + "/hook", ["Secret"] = "health-test-secret" },
                        () => Volatile.Read(ref received),
                        (() => Volatile.Write(ref outage, true), () => Volatile.Write(ref outage, false)),
                        async () =>
                        {
                            await app.StopAsync();
                            await app.DisposeAsync();
                        });
                }
            }
        }
    }
}
