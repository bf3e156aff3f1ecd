using System.CommandLine;
using System.CommandLine.Parsing;
using CdcSync.Configuration;

namespace CdcSync.Cli.Commands;

/// <summary>Command-line options holding a duration: the forms config values accept (30s, 5m, 1h, 00:05:00).</summary>
internal static class DurationOption
{
    public static Option<TimeSpan> Create(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        HelpName = "duration",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result => Parse(name, result, defaultValue),
    };

    private static TimeSpan Parse(string name, ArgumentResult result, TimeSpan defaultValue)
    {
        // The parser hands over no token when the option is absent and its default applies.
        if (result.Tokens.Count == 0)
        {
            return defaultValue;
        }

        var text = result.Tokens[^1].Value;
        if (Duration.TryParse(text, out var value))
        {
            return value;
        }

        result.AddError(Duration.Problem(name, text));
        return default;
    }
}
