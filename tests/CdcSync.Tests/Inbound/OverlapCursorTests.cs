using CdcSync.Inbound;

namespace CdcSync.Tests.Inbound;

/// <summary>
/// The inbound cursor re-reads a window behind the newest stamp (systems stamp to the second, and a
/// record committed late can carry an older stamp) and tells re-read versions from new ones.
/// </summary>
public sealed class OverlapCursorTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void TryAccept_TheSameVersionTwice_AcceptedOnce_AChangedOneAgain()
    {
        var cursor = new OverlapCursor();

        Assert.True(cursor.TryAccept("001", T0, """{"Name":"Acme"}"""));
        Assert.False(cursor.TryAccept("001", T0, """{"Name":"Acme"}"""));
        // Same second, other content (a second edit within one second of a system stamping to the second).
        Assert.True(cursor.TryAccept("001", T0, """{"Name":"Acme Inc"}"""));
        Assert.True(cursor.TryAccept("001", T0.AddSeconds(1), """{"Name":"Acme Inc"}"""));
        Assert.Equal(T0.AddSeconds(1), cursor.HighWater);
    }

    [Fact]
    public void NewScanFrom_IsTheOverlapBehindTheNewestStamp_OrTheBeginning()
    {
        var cursor = new OverlapCursor();
        Assert.Null(cursor.NewScanFrom(TimeSpan.FromSeconds(5)));

        cursor.TryAccept("001", T0.AddSeconds(30), "a");
        cursor.TryAccept("002", T0.AddSeconds(10), "b");       // an older stamp read later does not move it back

        Assert.Equal(T0.AddSeconds(25), cursor.NewScanFrom(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void Prune_ForgetsVersionsBeforeTheWindowAndASecond_AndCapsTheRest()
    {
        var cursor = new OverlapCursor();
        cursor.TryAccept("old", T0, "a");
        cursor.TryAccept("edge", T0.AddSeconds(24), "b");      // window 5 s + the second queries round to
        cursor.TryAccept("new1", T0.AddSeconds(29), "c");
        cursor.TryAccept("new2", T0.AddSeconds(30), "d");

        cursor.Prune(TimeSpan.FromSeconds(5), max: 10);
        Assert.Equal(["edge", "new1", "new2"], cursor.Seen.Keys.Order(StringComparer.Ordinal));

        cursor.Prune(TimeSpan.FromSeconds(5), max: 1);
        Assert.Equal(["new2"], cursor.Seen.Keys);
    }

    [Fact]
    public void Parse_RoundTrips_AndAnOlderShapeStartsOver()
    {
        var cursor = new OverlapCursor { After = "2026-03-01T10:00:00Z|42" };
        cursor.TryAccept("001", T0, "a");

        var again = OverlapCursor.Parse(cursor.ToString(), "salesforce");
        Assert.Equal(cursor.HighWater, again.HighWater);
        Assert.Equal(cursor.After, again.After);
        Assert.False(again.TryAccept("001", T0, "a"));

        var older = OverlapCursor.Parse("[\"2026-03-01T10:00:00Z\"]", "salesforce");
        Assert.Null(older.HighWater);
        Assert.Empty(older.Seen);
    }
}
