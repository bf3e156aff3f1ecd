using CdcSync.Inbound;

namespace CdcSync.Tests.Inbound;

public sealed class ChangeStreamLinkTests
{
    [Fact]
    public async Task CatchUp_ScanBegunBeforeTheRequest_DoesNotServeIt()
    {
        var link = new ChangeStreamLink();
        var before = link.BeginScan();
        var catchUp = link.CatchUpAsync(CancellationToken.None);

        link.EndScan(before);
        Assert.False(catchUp.IsCompleted);
        Assert.True(link.CatchUpPending);

        link.EndScan(link.BeginScan());
        await catchUp.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(link.CatchUpPending);
    }

    [Fact]
    public async Task Wait_CatchUpRequested_EndsBeforeTheInterval()
    {
        var link = new ChangeStreamLink();
        var wait = link.WaitAsync(TimeSpan.FromHours(1), TimeProvider.System, CancellationToken.None);

        _ = link.CatchUpAsync(CancellationToken.None);

        await wait.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
