using System.Diagnostics;
using CdcSync.Tests.Pipeline;
using Xunit.Abstractions;

namespace CdcSync.Tests.Operations;

public sealed class StandbyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Standby_ActiveWorkerSigkilled_TakesOverWithin10sAndTargetEqualsHub()
    {
        var h = await OpsHarness.CreateAsync(nameof(Standby_ActiveWorkerSigkilled_TakesOverWithin10sAndTargetEqualsHub));
        var log = new CrashLog();
        var dir = Path.GetDirectoryName(h.ConfigPath)!;
        using var active = CrashWorker.Start(h.ConfigPath, dir, log, 1);
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(1, "Holding the lease") || active.HasExited), TimeSpan.FromSeconds(60));
        Assert.True(log.Contains(1, "Holding the lease"), log.Tail());
        await h.WaitSlotActiveAsync(log);
        using var standby = CrashWorker.Start(h.ConfigPath, dir, log, 2);
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(2, "Standing by") || standby.HasExited), TimeSpan.FromSeconds(60));
        Assert.True(log.Contains(2, "Standing by"), log.Tail());

        // Load while the active worker runs and dies: many small transactions.
        using var stopLoad = new CancellationTokenSource();
        var next = 0;
        var load = Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                var first = Interlocked.Add(ref next, 20) - 19;
                await TestPipeline.ExecuteAsync(h.Hub, $"INSERT INTO public.items SELECT g, 'v' || g FROM generate_series({first}, {first + 19}) g");
            }
        });
        await Task.Delay(TimeSpan.FromSeconds(3));
        var standbyLines = log.All().Split('\n').Where(l => l.Contains(" w2 ", StringComparison.Ordinal)).ToList();
        Assert.Single(standbyLines, l => l.Contains("Standing by", StringComparison.Ordinal));
        Assert.DoesNotContain(standbyLines, l => l.Contains("Exception", StringComparison.Ordinal) || l.TrimStart().StartsWith("at ", StringComparison.Ordinal));

        var killedAt = Stopwatch.StartNew();
        await active.KillAsync();
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(2, "Holding the lease") || standby.HasExited), TimeSpan.FromSeconds(30));
        var takeover = killedAt.Elapsed;
        output.WriteLine($"standby took over {takeover.TotalSeconds:F2} s after SIGKILL");
        Assert.True(log.Contains(2, "Holding the lease"), log.Tail());
        Assert.True(takeover < TimeSpan.FromSeconds(10), $"standby took {takeover} to take over.\n{log.Tail()}");

        await Task.Delay(TimeSpan.FromSeconds(2));
        await stopLoad.CancelAsync();
        await load;
        await h.WaitForTargetsAsync(TimeSpan.FromSeconds(120));

        // Applied once: a transaction applied twice would have logged a second write of its rows.
        foreach (var table in new[] { "a_items", "b_items" })
        {
            Assert.Equal(
                await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM public.items"),
                await TestPipeline.TextAsync(h.Target, $"SELECT count(*) FROM public.write_log WHERE target = '{table}'"));
        }

        output.WriteLine($"{await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM public.items")} rows");
        Assert.Equal(0, await standby.TerminateAsync(TimeSpan.FromSeconds(60)));
    }
}
