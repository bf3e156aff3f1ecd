using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Steering;

/// <summary>How a sandbox rewrites the phone numbers it receives.</summary>
public enum PhoneFormat
{
    /// <summary>Stored as received.</summary>
    None,

    /// <summary>Digits only: <c>+1 (415) 555-0100</c> becomes <c>14155550100</c>.</summary>
    Digits,

    /// <summary>E.164: <c>+14155550100</c>; ten digits are taken as a North American number.</summary>
    E164,

    /// <summary>North American display format: <c>(415) 555-0100</c>; other numbers stay as received.</summary>
    NorthAmerican,
}

/// <summary>
/// What a sandbox does to the values it receives before storing them, the way real systems
/// reformat phone numbers, trim text or change case. Off by default. It exists so that tests can
/// check that an echo of a normalized value converges instead of looping.
/// </summary>
public sealed class ValueNormalizer
{
    private volatile PhoneFormat _phone;
    private volatile bool _trim;

    public PhoneFormat Phone { get => _phone; set => _phone = value; }

    /// <summary>Trims leading and trailing white space of every text field.</summary>
    public bool Trim { get => _trim; set => _trim = value; }

    /// <summary>Field name (as the API spells it, case-insensitive) to "upper" or "lower".</summary>
    public ConcurrentDictionary<string, string> Case { get; } = new(StringComparer.OrdinalIgnoreCase);

    public bool IsOff => _phone == PhoneFormat.None && !_trim && Case.IsEmpty;

    public void Reset()
    {
        Phone = PhoneFormat.None;
        Trim = false;
        Case.Clear();
    }

    /// <summary>The stored form of a text value of <paramref name="field"/>.</summary>
    public string Normalize(string field, string value, bool isPhone)
    {
        if (_trim)
        {
            value = value.Trim();
        }

        if (isPhone && _phone != PhoneFormat.None)
        {
            value = FormatPhone(value, _phone);
        }

        if (Case.TryGetValue(field, out var textCase))
        {
            value = textCase == "upper" ? value.ToUpperInvariant() : value.ToLowerInvariant();
        }

        return value;
    }

    /// <summary>Normalizes a JSON value in place of a text field; other values are returned as they are.</summary>
    public JsonNode? Normalize(string field, JsonNode? value, bool isPhone) =>
        !IsOff && value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String
            ? JsonValue.Create(Normalize(field, v.GetValue<string>(), isPhone))
            : value;

    /// <summary>Reads the <c>normalize</c> knob: <c>{"phone": "none|digits|e164|northAmerican", "trim": bool, "case": {"Field": "upper|lower"}}</c>.</summary>
    /// <exception cref="SteeringException">An unknown key or value, named.</exception>
    public void Apply(JsonObject knob)
    {
        foreach (var (key, value) in knob)
        {
            switch (key)
            {
                case "phone":
                    Phone = Enum.TryParse<PhoneFormat>(value?.ToString(), ignoreCase: true, out var format) && Enum.IsDefined(format)
                        ? format
                        : throw new SteeringException($"normalize.phone: '{value}' is not one of none, digits, e164, northAmerican.");
                    break;
                case "trim":
                    Trim = SteeringKnobs.Bool(value, "normalize.trim");
                    break;
                case "case":
                    if (value is not JsonObject fields)
                    {
                        throw new SteeringException("normalize.case: expected an object {\"Field\": \"upper|lower\"}.");
                    }

                    foreach (var (field, textCase) in fields)
                    {
                        var c = textCase?.ToString().ToLowerInvariant();
                        if (c is null or "none")
                        {
                            Case.TryRemove(field, out _);
                        }
                        else
                        {
                            Case[field] = c is "upper" or "lower" ? c : throw new SteeringException($"normalize.case.{field}: '{textCase}' is not one of upper, lower, none.");
                        }
                    }

                    break;
                default:
                    throw new SteeringException($"Unknown key 'normalize.{key}': the keys are phone, trim, case.");
            }
        }
    }

    public JsonObject ToJson() => new()
    {
        ["phone"] = Phone.ToString(),
        ["trim"] = Trim,
        ["case"] = new JsonObject([.. Case.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))]),
    };

    private static string FormatPhone(string value, PhoneFormat format)
    {
        var digits = new StringBuilder();
        foreach (var c in value)
        {
            if (char.IsAsciiDigit(c))
            {
                digits.Append(c);
            }
        }

        var d = digits.ToString();
        if (d.Length == 0)
        {
            return value;
        }

        // Ten digits, or eleven starting with 1, are a North American number (country code 1).
        var national = d.Length == 11 && d[0] == '1' ? d[1..] : d.Length == 10 ? d : null;
        return format switch
        {
            PhoneFormat.Digits => d,
            PhoneFormat.E164 => national is not null ? "+1" + national : "+" + d,
            PhoneFormat.NorthAmerican when national is not null => $"({national[..3]}) {national[3..6]}-{national[6..]}",
            _ => value,
        };
    }
}
