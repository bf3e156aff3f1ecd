using System.Text;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// Salesforce record ids: a 3-character key prefix (001 Account, 003 Contact), 12 base-62
/// characters, and a 3-character suffix that encodes the case of the first 15 so that the 18-character
/// form survives case-insensitive systems.
/// </summary>
internal static class SalesforceIds
{
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    private const string SuffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

    public static string Create(string keyPrefix, long sequence)
    {
        // Pod "5g" then a zero-padded base-62 counter, like ids of one org on one instance.
        var body = new char[10];
        var n = sequence;
        for (var i = body.Length - 1; i >= 0; i--)
        {
            body[i] = Base62[(int)(n % 62)];
            n /= 62;
        }

        var id15 = keyPrefix + "5g" + new string(body);
        return id15 + Suffix(id15);
    }

    public static string Suffix(string id15)
    {
        var sb = new StringBuilder(3);
        for (var chunk = 0; chunk < 3; chunk++)
        {
            var bits = 0;
            for (var i = 0; i < 5; i++)
            {
                if (char.IsAsciiLetterUpper(id15[(chunk * 5) + i]))
                {
                    bits |= 1 << i;
                }
            }

            sb.Append(SuffixAlphabet[bits]);
        }

        return sb.ToString();
    }

    /// <summary>Normalizes a 15- or 18-character id to 18 characters; null when it is not an id.</summary>
    public static string? Normalize(string? id)
    {
        if (id is null || (id.Length != 15 && id.Length != 18) || !id.All(char.IsAsciiLetterOrDigit))
        {
            return null;
        }

        var id15 = id[..15];
        var full = id15 + Suffix(id15);
        return id.Length == 18 && !string.Equals(full, id, StringComparison.OrdinalIgnoreCase) ? null : full;
    }
}
