using System.Globalization;
using System.Text;
using CdcSync.Operations;

namespace CdcSync.WebConsole;

/// <summary>
/// Draws one connector's lag over the last hour as an inline SVG, on the server: no script, no
/// chart library. Pure (samples in, markup out); names are HTML-encoded by the caller's page.
/// </summary>
internal static class LagChart
{
    public const int Width = 360;
    public const int Height = 110;
    private const int Left = 38;
    private const int Bottom = 18;

    /// <summary>SVG markup of lag in seconds against time, <paramref name="window"/> ending at <paramref name="now"/>.</summary>
    public static string Svg(IReadOnlyList<StatusSample> samples, DateTime now, TimeSpan window)
    {
        var inv = CultureInfo.InvariantCulture;
        var max = Math.Max(1, samples.Count == 0 ? 1 : samples.Max(s => s.LagSeconds));
        var top = NiceCeiling(max);
        var plotWidth = Width - Left - 4;
        var plotHeight = Height - Bottom - 6;
        var start = now - window;
        var svg = new StringBuilder();
        svg.Append(inv, $"<svg class=\"chart\" viewBox=\"0 0 {Width} {Height}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">");
        svg.Append(inv, $"<title>lag in seconds, last {window.TotalMinutes:F0} minutes, peak {max:F1} s</title>");
        // Axes and two grid lines: 0, half and the top.
        foreach (var fraction in new[] { 0.0, 0.5, 1.0 })
        {
            var y = 6 + plotHeight * (1 - fraction);
            svg.Append(inv, $"<line x1=\"{Left}\" y1=\"{y:F1}\" x2=\"{Width - 4}\" y2=\"{y:F1}\" stroke=\"#d0d4da\" stroke-width=\"1\"/>");
            svg.Append(inv, $"<text x=\"{Left - 4}\" y=\"{y + 4:F1}\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">{Label(top * fraction)}</text>");
        }

        svg.Append(inv, $"<text x=\"{Left}\" y=\"{Height - 3}\" font-size=\"10\" fill=\"#555\">-{window.TotalMinutes:F0} min</text>");
        svg.Append(inv, $"<text x=\"{Width - 4}\" y=\"{Height - 3}\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">now</text>");
        if (samples.Count == 0)
        {
            svg.Append(inv, $"<text x=\"{Left + plotWidth / 2}\" y=\"{6 + plotHeight / 2}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#777\">no history yet (a running worker records it)</text>");
        }
        else
        {
            var points = new StringBuilder();
            foreach (var s in samples)
            {
                var x = Left + plotWidth * Math.Clamp((s.RecordedAt - start).TotalSeconds / window.TotalSeconds, 0, 1);
                var y = 6 + plotHeight * (1 - Math.Clamp(s.LagSeconds / top, 0, 1));
                points.Append(inv, $"{x:F1},{y:F1} ");
            }

            svg.Append(inv, $"<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" points=\"{points.ToString().TrimEnd()}\"/>");
        }

        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>1, 2 or 5 times a power of ten at or above <paramref name="value"/>: readable axis labels.</summary>
    internal static double NiceCeiling(double value)
    {
        var power = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1.0, 2.0, 5.0, 10.0 })
        {
            if (step * power >= value)
            {
                return step * power;
            }
        }

        return 10 * power;
    }

    private static string Label(double seconds) => seconds >= 100
        ? seconds.ToString("F0", CultureInfo.InvariantCulture) + " s"
        : seconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";
}
