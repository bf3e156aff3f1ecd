using CdcSync.Tests.Pipeline;

namespace CdcSync.Tests.Operations;

public sealed class ResyncTests
{
    /// <summary>About 10 kB of text that does not compress much, so PostgreSQL stores it out of line (TOAST).</summary>
    private static string BigValue(string seed) => $"(SELECT string_agg(md5(random()::text || {seed} || i), '') FROM generate_series(1, 320) i)";

    [Fact]
    public async Task Resync_10kBValuesDuringStreaming_TargetEndsEqualToHubWithoutTriggersOrOtherConnectors()
    {
        var h = await OpsHarness.CreateAsync(nameof(Resync_10kBValuesDuringStreaming_TargetEndsEqualToHubWithoutTriggersOrOtherConnectors));
        await TestPipeline.ExecuteAsync(h.Hub, """
            CREATE TABLE public.trigger_calls (n bigint NOT NULL);
            INSERT INTO public.trigger_calls VALUES (0);
            CREATE FUNCTION public.count_update() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN UPDATE public.trigger_calls SET n = n + 1; RETURN NEW; END $$;
            CREATE TRIGGER items_count BEFORE UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.count_update();
            """);
        await using var worker = h.StartWorker();
        await worker.WaitStreamingAsync();
        await TestPipeline.ExecuteAsync(h.Hub, $"INSERT INTO public.items SELECT g, {BigValue("g")} FROM generate_series(1, 300) g");
        await h.WaitForTargetsAsync();

        // Connector a's target drifts: rows lost and rows overwritten behind the pipeline's back.
        await TestPipeline.ExecuteAsync(h.Target, "DELETE FROM public.a_items WHERE id % 3 = 0; UPDATE public.a_items SET v = 'stale' WHERE id % 3 = 1; TRUNCATE public.write_log");
        Assert.Equal("100", await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.a_items WHERE v = 'stale'"));

        // Streaming goes on during the resync: new 10 kB values for existing rows, and new rows.
        using var stopLoad = new CancellationTokenSource();
        var updates = 0;
        var inserts = 0;
        var load = Task.Run(async () =>
        {
            var random = new Random(7);
            while (!stopLoad.IsCancellationRequested)
            {
                await TestPipeline.ExecuteAsync(h.Hub, $"UPDATE public.items SET v = {BigValue("'u'")} WHERE id = {random.Next(1, 301)}");
                updates++;
                if (updates % 5 == 0)
                {
                    await TestPipeline.ExecuteAsync(h.Hub, $"INSERT INTO public.items VALUES ({1000 + inserts}, {BigValue("'i'")})");
                    inserts++;
                }
            }
        });

        var (code, stdout, stderr) = await OpsHarness.CliAsync("resync", "--config", h.ConfigPath, "--connector", "a", "--table", "public.items", "--batch-size", "40");
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stopLoad.CancelAsync();
        await load;

        Assert.True(code == 0, $"resync exited {code}: {stdout}{stderr}");
        Assert.Contains("sent to a", stdout);
        Assert.True(updates > 0);
        await h.WaitForTargetsAsync(TimeSpan.FromSeconds(120));
        Assert.Equal("0", await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.a_items WHERE v = 'stale' OR length(v) <> 10240"));
        // No table-wide UPDATE: the hub's update trigger fired only for the streamed updates.
        Assert.Equal(updates.ToString(System.Globalization.CultureInfo.InvariantCulture), await TestPipeline.TextAsync(h.Hub, "SELECT n FROM public.trigger_calls"));
        // Connector b got only the streamed changes, none of the resync's rows.
        var bWrites = int.Parse(await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.write_log WHERE target = 'b_items'"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(bWrites <= updates + inserts, $"b received {bWrites} writes for {updates} updates and {inserts} inserts");
        Assert.Equal("done", await TestPipeline.TextAsync(h.Hub, "SELECT status FROM cdc.resync_jobs"));
    }

    [Fact]
    public async Task Resync_WorkerKilledMidway_ResumesFromStoredKeyAndCompletes()
    {
        var h = await OpsHarness.CreateAsync(nameof(Resync_WorkerKilledMidway_ResumesFromStoredKeyAndCompletes));
        var log = new CrashLog();
        var dir = Path.GetDirectoryName(h.ConfigPath)!;
        // Rows written before any worker ran: the slot never sees them, only a resync sends them.
        await TestPipeline.ExecuteAsync(h.Hub, $"INSERT INTO public.items SELECT g, {BigValue("g")} FROM generate_series(1, 3000) g");
        using (var first = CrashWorker.Start(h.ConfigPath, dir, log, 1))
        {
            await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(1, "Holding the lease") || first.HasExited), TimeSpan.FromSeconds(60));
            await h.WaitSlotActiveAsync(log);
            Assert.Equal("0", await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.a_items"));

            var (code, stdout, stderr) = await OpsHarness.CliAsync("resync", "--config", h.ConfigPath, "--connector", "a", "--table", "public.items", "--batch-size", "5", "--detach");
            Assert.True(code == 0, $"resync exited {code}: {stdout}{stderr}");
            await TestPipeline.WaitUntilAsync(async () => long.Parse(await TestPipeline.TextAsync(h.Hub, "SELECT rows_done FROM cdc.resync_jobs"), System.Globalization.CultureInfo.InvariantCulture) >= 100, TimeSpan.FromSeconds(60));
            await first.KillAsync();
        }

        var doneAtKill = long.Parse(await TestPipeline.TextAsync(h.Hub, "SELECT rows_done FROM cdc.resync_jobs"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(doneAtKill < 3000, $"the resync finished before the kill; the test needs a slower resync.\n{log.Tail()}");
        var status = await TestPipeline.TextAsync(h.Hub, "SELECT status FROM cdc.resync_jobs");
        Assert.True(status == "running", $"resync job is {status} after the kill.\n{log.Tail()}");
        using var second = CrashWorker.Start(h.ConfigPath, dir, log, 2);
        // The command says "no worker is running" (exit 1) while the new worker has not taken the
        // lease yet, which it does a moment after it starts.
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(2, "Holding the lease") || second.HasExited), TimeSpan.FromSeconds(60));
        Assert.False(second.HasExited, log.Tail());
        // Running the same command again follows the same job instead of starting over.
        var (again, output, errors) = await OpsHarness.CliAsync("resync", "--config", h.ConfigPath, "--connector", "a", "--table", "public.items", "--batch-size", "5");
        Assert.True(again == 0, $"resync exited {again}: {output}{errors}\n{log.Tail()}");
        Assert.Contains("resuming", output);
        Assert.Equal("1", await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM cdc.resync_jobs"));
        Assert.Equal("3000", await TestPipeline.TextAsync(h.Hub, "SELECT rows_done FROM cdc.resync_jobs"));
        await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(h.Target, OpsHarness.TargetItems("a_items")) == await TestPipeline.TextAsync(h.Hub, OpsHarness.HubItems), TimeSpan.FromSeconds(120));
        // Only connector a was resynced; b never received a row.
        Assert.Equal("0", await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.b_items"));
        Assert.Equal(0, await second.TerminateAsync(TimeSpan.FromSeconds(60)));
    }
}
