using System.Globalization;

namespace CdcSync.Alerts;

/// <summary>Short, one-line text for alerts.</summary>
internal static class AlertText
{
    private const int MaxPart = 300;

    /// <summary>One line, at most 300 characters (an error from a target can be a page of HTML).</summary>
    public static string Cap(string text)
    {
        var line = string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return line.Length <= MaxPart ? line : line[..(MaxPart - 1)] + "…";
    }

    public static string Duration(TimeSpan span) => span switch
    {
        { TotalDays: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{span.TotalDays:0.#} d"),
        { TotalHours: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0.#} h"),
        { TotalMinutes: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0.#} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.#} s"),
    };
}
