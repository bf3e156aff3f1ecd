using CdcSync.Pipeline;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Xunit.Abstractions;

namespace CdcSync.Tests.Resilience;

/// <summary>
/// The fast cases of the fault suite: a server of the test's own is stopped and started while the
/// worker runs; the worker must ride it out by itself and the target must end equal to the hub.
/// </summary>
public sealed class OutageTests(ITestOutputHelper output)
{
    private const string Table = """
        CREATE TABLE public.items (id int PRIMARY KEY, counter int NOT NULL, payload text);
        """;

    private const string Snapshot = "SELECT count(*) || ':' || coalesce(sum(counter), 0) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM public.items t";

    private static async Task<string> MigratedHubOnAsync(TestCluster cluster)
    {
        await cluster.ExecuteAsync("CREATE DATABASE hub");
        var hub = cluster.ConnectionString("hub");
        var result = await new HubMigrator(hub, Repo.Scripts()).MigrateAsync(CancellationToken.None);
        Assert.True(result.Succeeded, result.Error);
        await TestPipeline.ExecuteAsync(hub, Table);
        return hub;
    }

    [Fact]
    public async Task RunProcess_HubStoppedImmediateAndStarted_WorkerProcessStaysUpAndCatchesUp()
    {
        // The real executable: its leader lease lives on a hub connection the restart breaks.
        await using var cluster = await TestCluster.StartAsync("outage_process");
        var hub = await MigratedHubOnAsync(cluster);
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(target, Table);
        var dir = Path.Combine(Path.GetTempPath(), "cdcsync-outage-process-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var config = Path.Combine(dir, "pipeline.json");
        await File.WriteAllTextAsync(config, System.Text.Json.JsonSerializer.Serialize(new
        {
            Hub = new { ConnectionString = hub, Slot = "outage_process", Publication = "outage_process", HeartbeatInterval = "00:00:01", StatusInterval = "00:00:00.2", MaxRestartDelay = "00:00:02", MetricsUrl = "" },
            Connectors = new Dictionary<string, object> { ["target"] = new { Type = "postgres", ConnectionString = target } },
            Routes = new Dictionary<string, string[]> { ["public.items"] = ["target"] },
        }));
        var log = new CrashLog();
        using var worker = CrashWorker.Start(config, dir, log, 1);
        // Only changes after the slot exists are streamed.
        await TestPipeline.WaitUntilAsync(async () => worker.HasExited || await TestPipeline.TextAsync(hub, TestPipeline.StreamingSql("outage_process")) == "1", TestPipeline.StreamingTimeout);
        Assert.False(worker.HasExited, log.Tail());
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items SELECT g, 1, 'before' FROM generate_series(1, 100) g");
        await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(target, Snapshot) == await TestPipeline.TextAsync(hub, Snapshot), TimeSpan.FromSeconds(60));

        await cluster.StopAsync("immediate");
        await Task.Delay(TimeSpan.FromSeconds(4));
        await cluster.StartAgainAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();
        await TestPipeline.ExecuteAsync(hub, "UPDATE public.items SET counter = counter + 1 WHERE id % 2 = 0; INSERT INTO public.items SELECT g, 1, 'after' FROM generate_series(101, 200) g");

        await TestPipeline.WaitUntilAsync(async () => worker.HasExited || await TestPipeline.TextAsync(target, Snapshot) == await TestPipeline.TextAsync(hub, Snapshot), TimeSpan.FromSeconds(90));
        Assert.False(worker.HasExited, $"the worker process exited after the hub restart.\n{log.Tail()}");
        Assert.Equal(await TestPipeline.TextAsync(hub, Snapshot), await TestPipeline.TextAsync(target, Snapshot));
        Assert.Equal(0, await worker.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Run_HubStoppedImmediateForEightSeconds_WorkerResumesAndTargetEqualsHub()
    {
        await using var cluster = await TestCluster.StartAsync(nameof(Run_HubStoppedImmediateForEightSeconds_WorkerResumesAndTargetEqualsHub).ToLowerInvariant());
        var hub = await MigratedHubOnAsync(cluster);
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(target, Table);
        await using var pipeline = await TestPipeline.StartAsync(hub, "outage_hub", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.items"] = ["target"] });

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items SELECT g, 1, 'before' FROM generate_series(1, 500) g");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);

        await cluster.StopAsync("immediate");
        await Task.Delay(TimeSpan.FromSeconds(8));
        await cluster.StartAgainAsync();
        // The test's own pooled connections died with the server.
        Npgsql.NpgsqlConnection.ClearAllPools();
        var back = System.Diagnostics.Stopwatch.StartNew();

        await TestPipeline.ExecuteAsync(hub, "UPDATE public.items SET counter = counter + 1 WHERE id % 2 = 0; INSERT INTO public.items SELECT g, 1, 'after' FROM generate_series(501, 1000) g");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);
        output.WriteLine($"resumed and caught up {back.Elapsed.TotalSeconds:F1} s after the hub was back; restarts {pipeline.Runner.Restarts}; last error: {pipeline.Runner.LastError}");
        Assert.True(pipeline.Runner.Restarts > 0, "the outage should have interrupted the pipeline");
        // Running is reported once the server is seen streaming to the new attempt, which may be a poll after the rows landed.
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(pipeline.Runner.Health == PipelineHealth.Running), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Run_TargetStoppedImmediateForEightSeconds_WorkerResumesAndTargetEqualsHub()
    {
        await using var cluster = await TestCluster.StartAsync(nameof(Run_TargetStoppedImmediateForEightSeconds_WorkerResumesAndTargetEqualsHub).ToLowerInvariant());
        await cluster.ExecuteAsync("CREATE DATABASE target");
        var target = cluster.ConnectionString("target");
        await TestPipeline.ExecuteAsync(target, Table);
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await TestPipeline.ExecuteAsync(hub, Table);
        await using var pipeline = await TestPipeline.StartAsync(hub, "outage_target", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.items"] = ["target"] });

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items SELECT g, 1, 'before' FROM generate_series(1, 500) g");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);

        await cluster.StopAsync("immediate");
        // The hub keeps changing while the target is away; the slot holds the WAL.
        await TestPipeline.ExecuteAsync(hub, "UPDATE public.items SET counter = counter + 1 WHERE id % 3 = 0; INSERT INTO public.items SELECT g, 1, 'during' FROM generate_series(501, 1000) g");
        await Task.Delay(TimeSpan.FromSeconds(8));
        await cluster.StartAgainAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();

        await pipeline.WaitForSameAsync(hub, target, Snapshot);
        output.WriteLine($"restarts {pipeline.Runner.Restarts}; last error: {pipeline.Runner.LastError}");
        Assert.True(pipeline.Runner.Restarts > 0, "the outage should have interrupted the pipeline");
        // Running is reported once the server is seen streaming to the new attempt, which may be a poll after the rows landed.
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(pipeline.Runner.Health == PipelineHealth.Running), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Run_IdleHubRestartedFast_RestartFinishesAndWorkerResumes()
    {
        await using var cluster = await TestCluster.StartAsync(nameof(Run_IdleHubRestartedFast_RestartFinishesAndWorkerResumes).ToLowerInvariant());
        var hub = await MigratedHubOnAsync(cluster);
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(target, Table);
        // The product's default replay window: the slot is confirmed a window behind the checkpoints.
        await using var pipeline = await TestPipeline.StartAsync(hub, "idle_restart", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.items"] = ["target"] }, new Dictionary<string, string?> { ["Hub:ReplayRetentionBytes"] = null });
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items VALUES (1, 1, 'x')");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);

        // Idle: nothing routed, only heartbeats.
        await Task.Delay(TimeSpan.FromSeconds(5));
        var took = await cluster.RestartAsync("fast", TimeSpan.FromSeconds(30));
        output.WriteLine($"pg_ctl restart -m fast of an idle hub with the worker connected: {took.TotalSeconds:F2} s");
        Npgsql.NpgsqlConnection.ClearAllPools();

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items VALUES (2, 1, 'y')");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);
    }

    [Fact]
    public async Task Run_HubStoppedSmart_ShutdownFinishesAndWorkerResumes()
    {
        await using var cluster = await TestCluster.StartAsync(nameof(Run_HubStoppedSmart_ShutdownFinishesAndWorkerResumes).ToLowerInvariant());
        var hub = await MigratedHubOnAsync(cluster);
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(target, Table);
        await using var pipeline = await TestPipeline.StartAsync(hub, "smart_stop", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.items"] = ["target"] });
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.items SELECT g, 1, 'x' FROM generate_series(1, 100) g");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);
        // The test's own pooled connections to the hub would hold the shutdown as well.
        Npgsql.NpgsqlConnection.ClearAllPools();

        var watch = System.Diagnostics.Stopwatch.StartNew();
        await cluster.StopAsync("smart");
        output.WriteLine($"pg_ctl stop -m smart with the worker connected: {watch.Elapsed.TotalSeconds:F1} s");
        await cluster.StartAgainAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();

        await TestPipeline.ExecuteAsync(hub, "UPDATE public.items SET counter = counter + 1");
        await pipeline.WaitForSameAsync(hub, target, Snapshot);
    }
}
