using System.ComponentModel;
using System.Globalization;

namespace CdcSync.Configuration;

/// <summary>
/// Durations as operators write them, in config values and command-line options alike: one unit
/// (<c>250ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, <c>2d</c>, <c>1.5h</c>), several units from the
/// largest down (<c>2h30m</c>, <c>1m30s</c>), <c>0</c>, or .NET's <c>[-][d.]hh:mm:ss[.fffffff]</c>
/// (<c>00:05:00</c>, <c>1.00:00:00</c>).
/// </summary>
internal static class Duration
{
    /// <summary>The accepted forms, for error messages.</summary>
    public const string Forms = "a duration like 30s, 5m, 1h or 00:05:00 (units: ms, s, m, h, d; combined largest first, e.g. 2h30m)";

    // Largest first: a unit may only follow a larger one, so 2h30m is read one way and 30m2h is an error.
    private static readonly (string Suffix, long Ticks)[] Units =
    [
        ("d", TimeSpan.TicksPerDay),
        ("h", TimeSpan.TicksPerHour),
        ("ms", TimeSpan.TicksPerMillisecond),
        ("m", TimeSpan.TicksPerMinute),
        ("s", TimeSpan.TicksPerSecond),
    ];

    private static readonly string[] Order = ["d", "h", "m", "s", "ms"];

    // The binder converts through TypeDescriptor, which has no per-call hook: the converter is
    // registered once per process. It accepts everything TimeSpanConverter did with a colon, so
    // other TimeSpan bindings in the process (host options) keep working.
    private static readonly Lazy<bool> Registration = new(() =>
    {
        TypeDescriptor.AddAttributes(typeof(TimeSpan), new TypeConverterAttribute(typeof(DurationConverter)));
        return true;
    });

    /// <summary>The error for a value that is not a duration, naming where it came from (a config key or an option).</summary>
    public static string Problem(string name, string? text) => $"{name} is '{text}'; use {Forms}.";

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        // A bare number has no unit: "5" would be five days to TimeSpan.Parse and five seconds to a person.
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value);
        }

        if (text == "0")
        {
            return true;
        }

        decimal ticks = 0;
        var lastUnit = -1;
        var at = 0;
        while (at < text.Length)
        {
            var start = at;
            while (at < text.Length && (char.IsAsciiDigit(text[at]) || text[at] == '.'))
            {
                at++;
            }

            if (at == start || !decimal.TryParse(text.AsSpan(start, at - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unit = Units.FirstOrDefault(u => text.AsSpan(at).StartsWith(u.Suffix, StringComparison.Ordinal));
            if (unit.Suffix is null)
            {
                return false;
            }

            var rank = Array.IndexOf(Order, unit.Suffix);
            if (rank <= lastUnit)
            {
                return false;
            }

            lastUnit = rank;
            at += unit.Suffix.Length;
            ticks += number * unit.Ticks;
            if (ticks > TimeSpan.MaxValue.Ticks)
            {
                return false;
            }
        }

        value = TimeSpan.FromTicks((long)decimal.Round(ticks));
        return true;
    }

    /// <summary>Makes every TimeSpan the configuration binder reads accept <see cref="TryParse"/>'s forms. Idempotent.</summary>
    internal static void UseForConfiguration() => _ = Registration.Value;
}

/// <summary>TimeSpan from config text through <see cref="Duration.TryParse"/>.</summary>
internal sealed class DurationConverter : TimeSpanConverter
{
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is not string text)
        {
            return base.ConvertFrom(context, culture, value);
        }

        return Duration.TryParse(text, out var duration)
            ? duration
            : throw new FormatException($"'{text}' is not {Duration.Forms}.");
    }
}
