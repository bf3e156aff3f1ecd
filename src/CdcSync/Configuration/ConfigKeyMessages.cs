using System.Text;

namespace CdcSync.Configuration;

/// <summary>
/// Turns the failures of a generated options validator into one line each naming the config key:
/// <c>Config key Connectors:crm:Objects:0:SObject: The SObject field is required.</c>
/// </summary>
/// <remarks>
/// A failure is <c>Member: message</c> (ValidateOptionsResultBuilder's form) and names only the
/// last member. Where the member sits comes from the display name the generator gives it: the
/// options name, then <c>.Member</c> or <c>[index]</c> per level (<c>Connectors:crm.Objects[0].SObject</c>),
/// which a message shows through its <c>{0}</c>. So an ErrorMessage on a class held by another must
/// contain <c>{0}</c>; at the top of a section the member alone says where it is.
/// </remarks>
internal static class ConfigKeyMessages
{
    public static List<string> Describe(string path, IEnumerable<string> failures) =>
        failures.Select(failure => Describe(path, failure)).ToList();

    private static string Describe(string path, string failure)
    {
        var (member, message) = Split(failure);
        if (FindDisplayName(path, message, member) is var (start, length, key))
        {
            // "The field Connectors:crm.Resilience.MaxRetryAttempts must be ..." reads "The field MaxRetryAttempts must be ...": the key leads the line.
            return $"Config key {key}: {(member is null ? message : message.Remove(start, length).Insert(start, member))}";
        }

        return $"Config key {(member is null ? path : $"{path}:{member}")}: {message}";
    }

    /// <summary>The first member a failure names, and its message; no member when the failure has no <c>Member: </c> prefix.</summary>
    private static (string? Member, string Message) Split(string failure)
    {
        var colon = failure.IndexOf(": ", StringComparison.Ordinal);
        if (colon <= 0)
        {
            return (null, failure);
        }

        var members = failure[..colon].Split(", ");
        return members.All(m => m.Length > 0 && IdentifierLength(m, 0) == m.Length)
            ? (members[0], failure[(colon + 2)..])
            : (null, failure);
    }

    /// <summary>Where the message shows <paramref name="member"/>'s display name, and the config key it stands for.</summary>
    private static (int Start, int Length, string Key)? FindDisplayName(string path, string message, string? member)
    {
        for (var at = message.IndexOf(path, StringComparison.Ordinal); at >= 0; at = message.IndexOf(path, at + 1, StringComparison.Ordinal))
        {
            var key = new StringBuilder(path);
            var end = at + path.Length;
            string? last = null;
            while (end < message.Length)
            {
                if (message[end] == '.' && IdentifierLength(message, end + 1) is > 0 and var name)
                {
                    last = message.Substring(end + 1, name);
                    key.Append(':').Append(last);
                    end += 1 + name;
                }
                else if (message[end] == '[' && DigitsLength(message, end + 1) is > 0 and var digits && end + 1 + digits < message.Length && message[end + 1 + digits] == ']')
                {
                    last = null;
                    key.Append(':').Append(message, end + 1, digits);
                    end += digits + 2;
                }
                else
                {
                    break;
                }
            }

            if (end > at + path.Length && (member is null || last == member))
            {
                return (at, end - at, key.ToString());
            }
        }

        return null;
    }

    private static int IdentifierLength(string text, int start)
    {
        var end = start;
        while (end < text.Length && (char.IsAsciiLetter(text[end]) || text[end] == '_' || (end > start && char.IsAsciiDigit(text[end]))))
        {
            end++;
        }

        return end - start;
    }

    private static int DigitsLength(string text, int start)
    {
        var end = start;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        return end - start;
    }
}
