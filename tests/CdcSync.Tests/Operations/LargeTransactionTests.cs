using CdcSync.Tests.Pipeline;

namespace CdcSync.Tests.Operations;

/// <summary>One large transaction of wide rows committed while a worker process streams: every row reaches both targets.</summary>
public sealed class LargeTransactionTests
{
    [Fact]
    public async Task WideRowsInOneTransaction_WhileWorkerRuns_ReachBothTargets()
    {
        var h = await OpsHarness.CreateAsync(nameof(WideRowsInOneTransaction_WhileWorkerRuns_ReachBothTargets));
        var log = new CrashLog();
        var dir = Path.GetDirectoryName(h.ConfigPath)!;
        using var worker = CrashWorker.Start(h.ConfigPath, dir, log, 1);
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(log.Contains(1, "Holding the lease") || worker.HasExited), TimeSpan.FromSeconds(60));
        await h.WaitSlotActiveAsync(log);
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, (SELECT string_agg(md5(g::text || ':' || i::text), '') FROM generate_series(1, 320) i) FROM generate_series(1, 3000) g");
        await h.WaitForTargetsAsync(TimeSpan.FromSeconds(120));
        Assert.Equal("3000", await TestPipeline.TextAsync(h.Target, "SELECT count(*) FROM public.a_items"));
        Assert.Equal(0, await worker.TerminateAsync(TimeSpan.FromSeconds(60)));
    }
}
