using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// NetSuite token-based authentication: an OAuth 1.0a <c>Authorization</c> header signed with
/// HMAC-SHA256 (RFC 5849 base string, key <c>consumerSecret&amp;tokenSecret</c>). Each request needs a
/// fresh nonce and timestamp, so a retried request is signed again.
/// </summary>
internal sealed class TbaSigner(NetSuiteOptions options, TimeProvider timeProvider)
{
    public string CreateHeader(HttpMethod method, Uri uri)
    {
        var oauth = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["oauth_consumer_key"] = options.ConsumerKey,
            ["oauth_nonce"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
            ["oauth_signature_method"] = "HMAC-SHA256",
            ["oauth_timestamp"] = timeProvider.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
            ["oauth_token"] = options.TokenId,
            ["oauth_version"] = "1.0",
        };

        var pairs = oauth.Select(kv => (Key: Encode(kv.Key), Value: Encode(kv.Value))).ToList();
        foreach (var part in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            var value = eq < 0 ? string.Empty : Uri.UnescapeDataString(part[(eq + 1)..]);
            pairs.Add((Encode(key), Encode(value)));
        }

        pairs.Sort((a, b) => a.Key != b.Key ? string.CompareOrdinal(a.Key, b.Key) : string.CompareOrdinal(a.Value, b.Value));
        // Lower-case scheme and host, no default port, the path as sent (RFC 5849 3.4.1.2).
        var authority = uri.IsDefaultPort ? uri.Host : uri.Host + ":" + uri.Port.ToString(CultureInfo.InvariantCulture);
        var baseUri = uri.Scheme.ToLowerInvariant() + "://" + authority.ToLowerInvariant() + uri.AbsolutePath;
        var baseString = method.Method.ToUpperInvariant() + "&" + Encode(baseUri) + "&" + Encode(string.Join("&", pairs.Select(p => p.Key + "=" + p.Value)));
        var signingKey = Encoding.ASCII.GetBytes(Encode(options.ConsumerSecret) + "&" + Encode(options.TokenSecret));
        var signature = Convert.ToBase64String(HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(baseString)));

        var header = new StringBuilder("OAuth realm=\"").Append(Encode(options.AccountId)).Append('"');
        foreach (var (name, value) in oauth)
        {
            header.Append(',').Append(name).Append("=\"").Append(Encode(value)).Append('"');
        }

        return header.Append(",oauth_signature=\"").Append(Encode(signature)).Append('"').ToString();
    }

    /// <summary>RFC 3986 percent-encoding of everything but unreserved characters, as OAuth 1.0a requires (what <see cref="Uri.EscapeDataString(string)"/> does).</summary>
    internal static string Encode(string value) => Uri.EscapeDataString(value);
}
