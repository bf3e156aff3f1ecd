using System.Globalization;
using System.Numerics;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// The bitmap encoding of <c>changedFields</c>, <c>nulledFields</c> and <c>diffFields</c> (Pub/Sub API,
/// "Event Deserialization Considerations"): an array of hexadecimal strings. The first,
/// <c>0x...</c>, has bit i set when the field at position i of the event's Avro schema is in the
/// set; an element <c>n-0x...</c> does the same for the component fields of the compound field
/// at position n (an address, a name).
/// </summary>
internal static class ChangeEventBitmap
{
    /// <summary>Top-level positions, and per compound position the positions of its components.</summary>
    public static (HashSet<int> Fields, Dictionary<int, HashSet<int>> Nested) Decode(IEnumerable<string> elements)
    {
        var fields = new HashSet<int>();
        var nested = new Dictionary<int, HashSet<int>>();
        foreach (var element in elements)
        {
            var dash = element.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                fields.UnionWith(Bits(element));
            }
            else if (int.TryParse(element.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var parent))
            {
                if (!nested.TryGetValue(parent, out var set))
                {
                    nested[parent] = set = [];
                }

                set.UnionWith(Bits(element[(dash + 1)..]));
            }
            else
            {
                throw new FormatException($"'{element}' is not a change event bitmap element (0x.. or n-0x..).");
            }
        }

        return (fields, nested);
    }

    private static IEnumerable<int> Bits(string hex)
    {
        var digits = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex[2..] : hex;
        if (digits.Length == 0)
        {
            yield break;
        }

        // A leading 0 keeps BigInteger from reading a high first digit as a sign.
        if (!BigInteger.TryParse("0" + digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException($"'{hex}' is not a hexadecimal change event bitmap.");
        }

        for (var i = 0; !value.IsZero; i++, value >>= 1)
        {
            if (!value.IsEven)
            {
                yield return i;
            }
        }
    }
}
