using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace CdcSync.Configuration;

/// <summary>
/// Bounds of a TimeSpan option, written and reported the way operators write durations
/// (<c>100ms</c>, <c>5m</c>, <c>1h</c>; see <see cref="Duration"/>). Not <c>[Range(typeof(TimeSpan), ...)]</c>:
/// the options validation source generator swaps RangeAttribute for a copy of its own that drops
/// ErrorMessage (dotnet/runtime#123137) and prints the bounds as <c>00:00:00.1000000</c>, a form
/// nobody writes in a config. Other validation attributes it uses as they are.
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
internal sealed class DurationRangeAttribute : ValidationAttribute
{
    private readonly TimeSpan _minimum;
    private readonly TimeSpan _maximum;

    /// <param name="minimum">Smallest accepted duration, in <see cref="Duration"/>'s forms (<c>0</c>, <c>100ms</c>).</param>
    /// <param name="maximum">Largest accepted duration, in the same forms (<c>1h</c>, <c>30d</c>).</param>
    public DurationRangeAttribute(string minimum, string maximum)
        : base("The field {0} must be a duration between {1} and {2}.")
    {
        // A bad bound is a bug in an options class; it surfaces the first time that class is validated.
        _minimum = Duration.TryParse(minimum, out var min) ? min : throw new ArgumentException($"'{minimum}' is not a duration.", nameof(minimum));
        _maximum = Duration.TryParse(maximum, out var max) ? max : throw new ArgumentException($"'{maximum}' is not a duration.", nameof(maximum));
        Minimum = minimum;
        Maximum = maximum;
    }

    /// <summary>The lower bound as written, for the message.</summary>
    public string Minimum { get; }

    /// <summary>The upper bound as written, for the message.</summary>
    public string Maximum { get; }

    public override bool IsValid(object? value) => value switch
    {
        null => true,
        TimeSpan duration => duration >= _minimum && duration <= _maximum,
        _ => throw new InvalidOperationException($"[DurationRange] is for TimeSpan properties, not {value.GetType().Name}."),
    };

    public override string FormatErrorMessage(string name) =>
        string.Format(CultureInfo.InvariantCulture, ErrorMessageString, name, Minimum, Maximum);
}
