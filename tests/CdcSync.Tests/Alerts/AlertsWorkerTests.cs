using CdcSync.Alerts;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Operations;
using CdcSync.Tests.Operations;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Alerts;

public sealed class AlertsWorkerTests
{
    [Fact]
    public async Task Worker_DeadLetter_AlertsOnceFromTheLeader_StandbyTakingOverSendsNoDuplicate_ThenResolves()
    {
        var h = await OpsHarness.CreateAsync(nameof(Worker_DeadLetter_AlertsOnceFromTheLeader_StandbyTakingOverSendsNoDuplicate_ThenResolves));
        await using var receiver = await AlertReceiver.StartAsync("worker-secret-0123456789abcdef");
        var alerts = new AlertsOptions { WebhookUrl = receiver.Url, Secret = receiver.Secret, EvaluationInterval = TimeSpan.FromMilliseconds(500) };
        await using (var hub = NpgsqlDataSource.Create(h.Hub))
        {
            await new HubGateway(hub).DeadLetterAsync("a", new CdcSync.Hub.DeadLetter("items", "7", "{}", "duplicate key value violates unique constraint", null), CancellationToken.None);
        }

        await using var leader = Start(h, alerts);
        await leader.WaitStreamingAsync();
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(!receiver.Alerts.IsEmpty), TimeSpan.FromSeconds(60));
        await using var standby = Start(h, alerts);

        // The leader stops (a restart, or a crash: the lease goes with its session); the standby takes over.
        await StopAsync(leader);
        await standby.WaitStreamingAsync();
        var tookOver = await TestPipeline.TextAsync(h.Hub, "SELECT now()::text");
        // The new leader has evaluated the open problem at least twice since it took over...
        await TestPipeline.WaitUntilAsync(
            async () => await TestPipeline.TextAsync(h.Hub, $"SELECT (last_seen_at > '{tookOver}'::timestamptz + interval '600 ms')::text FROM cdc.alerts WHERE key = 'dead-letters:a'") == "true",
            TimeSpan.FromSeconds(60));
        // ...and sent nothing.
        var fired = Assert.Single(receiver.Alerts);
        Assert.Equal("firing dead-letters:a", $"{fired["status"]} {fired["key"]}");

        await TestPipeline.ExecuteAsync(h.Hub, "UPDATE cdc.dead_letters SET status = 'discarded'");
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(receiver.Alerts.Count >= 2), TimeSpan.FromSeconds(60));
        await StopAsync(standby);

        Assert.Equal(["firing dead-letters:a", "resolved dead-letters:a"], receiver.Alerts.Select(a => $"{a["status"]} {a["key"]}"));
        Assert.Empty(receiver.Refused);
    }

    /// <summary>A worker stopped while it records its status ends with the cancellation (as under `cdcsync run`, which expects it).</summary>
    private static async Task StopAsync(InProcessWorker worker)
    {
        try
        {
            await worker.StopAsync();
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static InProcessWorker Start(OpsHarness h, AlertsOptions alerts)
    {
        var options = h.Options();
        var hubSource = NpgsqlDataSource.Create(options.Hub.ConnectionString);
        var notifier = new AlertNotifier(alerts);
        var worker = new Worker(
            options,
            name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, NullLoggerFactory.Instance),
            _ => null,
            NullLoggerFactory.Instance,
            hubSource: hubSource,
            alerts: new AlertEvaluator(hubSource, AlertEvaluator.DefaultSources(alerts), notifier, alerts, NullLogger.Instance));
        return new InProcessWorker(worker, hubSource);
    }
}
