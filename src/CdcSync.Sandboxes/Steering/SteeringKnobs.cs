using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Steering;

/// <summary>Typed reads of steering knobs; a wrong type is a <see cref="SteeringException"/> naming the key.</summary>
internal static class SteeringKnobs
{
    public static bool Bool(JsonNode? value, string key) =>
        value is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False
            ? v.GetValue<bool>()
            : throw new SteeringException($"{key}: expected true or false, got {value?.ToJsonString() ?? "null"}.");

    public static double Number(JsonNode? value, string key, double min, double max)
    {
        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var d && d >= min && d <= max)
        {
            return d;
        }

        throw new SteeringException($"{key}: expected a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}, got {value?.ToJsonString() ?? "null"}.");
    }

    public static string? Text(JsonNode? value, string key) => value switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw new SteeringException($"{key}: expected a string or null, got {value.ToJsonString()}."),
    };

    public static void RejectUnknown(JsonObject body, string prefix, params string[] known)
    {
        foreach (var (key, _) in body)
        {
            if (!known.Contains(key, StringComparer.Ordinal))
            {
                throw new SteeringException($"Unknown key '{prefix}{key}': the keys are {string.Join(", ", known)}.");
            }
        }
    }
}
