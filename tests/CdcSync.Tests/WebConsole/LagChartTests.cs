using CdcSync.Operations;
using CdcSync.WebConsole;

namespace CdcSync.Tests.WebConsole;

public sealed class LagChartTests
{
    private static readonly DateTime Now = new(2026, 12, 7, 12, 0, 0, DateTimeKind.Utc);

    [Theory]
    [InlineData(0.3, 0.5)]
    [InlineData(1, 1)]
    [InlineData(1.2, 2)]
    [InlineData(37, 50)]
    [InlineData(640, 1000)]
    public void NiceCeiling_RoundsUpToOneTwoOrFiveTimesAPowerOfTen(double value, double expected) =>
        Assert.Equal(expected, LagChart.NiceCeiling(value), 9);

    [Fact]
    public void Svg_PlacesTheSamplesOnTheHour_TheNewestAtTheRightEdge_AndScalesToThePeak()
    {
        var samples = new[]
        {
            new StatusSample("netsuite", Now.AddMinutes(-60), 0, 0, 0, null, null),
            new StatusSample("netsuite", Now.AddMinutes(-30), 4096, 8, 100, null, null),
            new StatusSample("netsuite", Now, 0, 0, 0, null, null),
        };
        var svg = LagChart.Svg(samples, Now, TimeSpan.FromHours(1));
        var points = System.Text.RegularExpressions.Regex.Match(svg, "points=\"([^\"]+)\"").Groups[1].Value.Split(' ');
        Assert.Equal(3, points.Length);
        Assert.StartsWith("38.0,", points[0], StringComparison.Ordinal);                 // left edge of the plot
        Assert.StartsWith($"{LagChart.Width - 4}.0,", points[2], StringComparison.Ordinal); // now
        Assert.EndsWith(",23.2", points[1], StringComparison.Ordinal);                    // the peak: 8 s on an axis to 10 s
        Assert.Contains(">10 s</text>", svg, StringComparison.Ordinal);
        Assert.Contains("peak 8.0 s", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void Svg_WithoutHistory_SaysWhy() =>
        Assert.Contains("no history yet", LagChart.Svg([], Now, TimeSpan.FromHours(1)), StringComparison.Ordinal);
}
