using System.Net;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Operations;

public sealed class HealthTests
{
    [Fact]
    public async Task Readyz_SalesforceCircuitOpens_TurnsUnreadyWhileHealthzAndMetricsStayUp()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(nameof(Readyz_SalesforceCircuitOpens_TurnsUnreadyWhileHealthzAndMetricsStayUp));
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        var slot = TestPostgres.DatabaseName(nameof(Readyz_SalesforceCircuitOpens_TurnsUnreadyWhileHealthzAndMetricsStayUp));
        var options = ConfigLoader.Bind(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Hub:Slot"] = slot,
            ["Hub:Publication"] = slot,
            ["Hub:StatusInterval"] = "00:00:00.2",
            ["Hub:MaxRestartDelay"] = "00:00:01",
            ["Connectors:sf:Type"] = "salesforce",
            ["Connectors:sf:LoginUrl"] = sandbox.BaseUrl.ToString(),
            ["Connectors:sf:ClientId"] = SalesforceSandboxOptions.DefaultClientId,
            ["Connectors:sf:ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
            ["Connectors:sf:Objects:0:SObject"] = "Account",
            ["Connectors:sf:Objects:0:Table"] = "sf_accounts",
            ["Connectors:sf:Resilience:MaxRetryAttempts"] = "1",
            ["Connectors:sf:Resilience:RetryBaseDelay"] = "00:00:00.020",
            ["Connectors:sf:Resilience:RetryMaxDelay"] = "00:00:00.100",
            ["Connectors:sf:Resilience:CircuitBreakerMinimumThroughput"] = "2",
            ["Connectors:sf:Resilience:CircuitBreakerSamplingDuration"] = "00:00:10",
            ["Connectors:sf:Resilience:CircuitBreakerBreakDuration"] = "00:01:00",
            ["Routes:public.sf_accounts:0"] = "sf",
        }).Build());
        await using var hubSource = NpgsqlDataSource.Create(hub);
        var worker = new Worker(options, name => ConnectorFactory.CreateOutbound(name, options.Connectors[name], hubSource, NullLoggerFactory.Instance), _ => null, NullLoggerFactory.Instance);
        await using var health = await HealthServer.StartAsync("http://127.0.0.1:0", worker, NullLoggerFactory.Instance, CancellationToken.None);
        using var http = new HttpClient { BaseAddress = new Uri(health.Address) };
        using var stop = new CancellationTokenSource();
        var run = Task.Run(() => worker.RunAsync(stop.Token));
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
            await TestPipeline.WaitUntilAsync(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK || run.IsCompleted, TestPipeline.StreamingTimeout);
            Assert.False(run.IsCompleted, run.Exception?.ToString());
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO sf_accounts (name) VALUES ('Before outage')");
            await TestPipeline.WaitUntilAsync(() => Task.FromResult(sandbox.Records("Account").Count == 1), TimeSpan.FromSeconds(30));

            sandbox.Options.StartOutage(TimeSpan.FromMinutes(2));
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO sf_accounts (name) VALUES ('During outage 1')");
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO sf_accounts (name) VALUES ('During outage 2')");
            string body = "";
            await TestPipeline.WaitUntilAsync(async () =>
            {
                var response = await http.GetAsync("/readyz");
                body = await response.Content.ReadAsStringAsync();
                return response.StatusCode == HttpStatusCode.ServiceUnavailable && body.Contains("open circuits: sf", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(60));

            Assert.Contains("not ready", body);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("cdcsync_circuit_open{connector=\"sf\"} 1", metrics);
            Assert.Contains("cdcsync_changes_applied_total{connector=\"sf\"}", metrics);
            Assert.Contains("cdcsync_batch_duration_seconds_bucket{connector=\"sf\"", metrics);
            Assert.Contains("cdcsync_replay_window_bytes", metrics);
        }
        finally
        {
            await stop.CancelAsync();
            await run.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
