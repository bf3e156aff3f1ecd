using System.Globalization;
using System.Text;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// The bitmap encoding of a change event header's <c>changedFields</c>, <c>nulledFields</c> and
/// <c>diffFields</c> as the Pub/Sub API delivers them (Pub/Sub API guide, "Event Deserialization
/// Considerations"): an array of strings whose first element is a hexadecimal bitmap of the event
/// schema's top-level fields (bit n set = the field at position n of the Avro record, counting from
/// the least significant bit), followed by one <c>"{position}-{bitmap}"</c> element per compound field
/// (an address, a person's name) naming which of its nested fields are meant, e.g.
/// <c>["0x650004E0", "4-0x10", "7-0x06"]</c>. Digits are upper case, in whole bytes.
/// </summary>
internal static class FieldBitmap
{
    /// <param name="topLevel">Positions of top-level fields in the event's Avro record.</param>
    /// <param name="nested">Per compound field position, the positions of its nested fields.</param>
    /// <returns>An empty list when no field is named.</returns>
    public static IReadOnlyList<string> Encode(IEnumerable<int> topLevel, IReadOnlyDictionary<int, IReadOnlyCollection<int>> nested)
    {
        var result = new List<string>();
        var top = topLevel.ToList();
        if (top.Count > 0)
        {
            result.Add(Hex(top));
        }

        foreach (var (parent, children) in nested.OrderBy(n => n.Key))
        {
            if (children.Count > 0)
            {
                result.Add(parent.ToString(CultureInfo.InvariantCulture) + "-" + Hex(children));
            }
        }

        return result;
    }

    /// <summary>The positions a bitmap string names (the inverse of the encoding of one element).</summary>
    public static IReadOnlyList<int> Decode(string bitmap)
    {
        if (!bitmap.StartsWith("0x", StringComparison.Ordinal))
        {
            throw new FormatException($"A field bitmap starts with 0x: '{bitmap}'.");
        }

        var digits = bitmap[2..];
        var positions = new List<int>();
        for (var i = 0; i < digits.Length; i++)
        {
            var nibble = int.Parse(digits[digits.Length - 1 - i].ToString(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            for (var bit = 0; bit < 4; bit++)
            {
                if ((nibble & (1 << bit)) != 0)
                {
                    positions.Add((i * 4) + bit);
                }
            }
        }

        return positions;
    }

    private static string Hex(IEnumerable<int> positions)
    {
        var list = positions.ToList();
        var bytes = new byte[(list.Max() / 8) + 1];
        foreach (var position in list)
        {
            // Big-endian: the last byte holds bits 0..7.
            bytes[bytes.Length - 1 - (position / 8)] |= (byte)(1 << (position % 8));
        }

        var hex = new StringBuilder("0x", 2 + (bytes.Length * 2));
        foreach (var b in bytes)
        {
            hex.Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }

        return hex.ToString();
    }
}
