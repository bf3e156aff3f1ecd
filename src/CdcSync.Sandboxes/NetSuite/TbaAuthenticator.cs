using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>
/// Verifies token-based authentication the way NetSuite does: an OAuth 1.0a header signed with
/// HMAC-SHA256 over the RFC 5849 base string, key <c>consumerSecret&amp;tokenSecret</c>, realm = account
/// id, a fresh timestamp and a nonce never seen before. Every failure is the same 401 INVALID_LOGIN.
/// </summary>
internal sealed class TbaAuthenticator(NetSuiteSandboxOptions options)
{
    private readonly ConcurrentDictionary<string, long> _nonces = new(StringComparer.Ordinal);
    private long _lastPurge;

    public bool IsValid(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("OAuth ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var p = ParseHeader(header[6..]);
        if (p is null
            || p.GetValueOrDefault("realm") != options.AccountId
            || p.GetValueOrDefault("oauth_consumer_key") != options.ConsumerKey
            || p.GetValueOrDefault("oauth_token") != options.TokenId
            || p.GetValueOrDefault("oauth_signature_method") != "HMAC-SHA256"
            || p.GetValueOrDefault("oauth_version", "1.0") != "1.0"
            || p.GetValueOrDefault("oauth_nonce") is not { Length: >= 6 } nonce
            || !long.TryParse(p.GetValueOrDefault("oauth_timestamp"), NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp)
            || p.GetValueOrDefault("oauth_signature") is not { } signature)
        {
            return false;
        }

        var now = options.TimeProvider.GetUtcNow().ToUnixTimeSeconds();
        if (Math.Abs(now - timestamp) > options.TimestampTolerance.TotalSeconds)
        {
            return false;
        }

        var expected = Sign(context, p);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature)))
        {
            return false;
        }

        // Checked last so that a bad signature cannot burn someone else's nonce.
        PurgeNonces(now);
        return _nonces.TryAdd(nonce + "|" + timestamp.ToString(CultureInfo.InvariantCulture), now);
    }

    private string Sign(HttpContext context, Dictionary<string, string> oauth)
    {
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.ToUriComponent();
        var q = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var rawPath = q < 0 ? rawTarget : rawTarget[..q];
        var scheme = request.Scheme.ToLowerInvariant();
        var host = request.Host.Host.ToLowerInvariant();
        var port = request.Host.Port;
        var defaultPort = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        var baseUri = scheme + "://" + host + (port is null || defaultPort ? string.Empty : ":" + port.Value.ToString(CultureInfo.InvariantCulture)) + rawPath;

        var pairs = new List<(string Key, string Value)>();
        foreach (var (key, value) in oauth)
        {
            if (key is not ("realm" or "oauth_signature"))
            {
                pairs.Add((Encode(key), Encode(value)));
            }
        }

        foreach (var (key, values) in request.Query)
        {
            foreach (var value in values)
            {
                pairs.Add((Encode(key), Encode(value ?? string.Empty)));
            }
        }

        pairs.Sort((a, b) => a.Key != b.Key ? string.CompareOrdinal(a.Key, b.Key) : string.CompareOrdinal(a.Value, b.Value));
        var normalized = string.Join("&", pairs.Select(x => x.Key + "=" + x.Value));
        var baseString = request.Method.ToUpperInvariant() + "&" + Encode(baseUri) + "&" + Encode(normalized);
        var signingKey = Encoding.ASCII.GetBytes(Encode(options.ConsumerSecret) + "&" + Encode(options.TokenSecret));
        return Convert.ToBase64String(HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(baseString)));
    }

    private static Dictionary<string, string>? ParseHeader(string value)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                return null;
            }

            var v = part[(eq + 1)..].Trim();
            if (v.Length < 2 || v[0] != '"' || v[^1] != '"')
            {
                return null;
            }

            result[part[..eq].Trim()] = Uri.UnescapeDataString(v[1..^1]);
        }

        return result;
    }

    /// <summary>RFC 3986 percent-encoding of everything but unreserved characters, as OAuth 1.0a requires (what <see cref="Uri.EscapeDataString(string)"/> does).</summary>
    private static string Encode(string value) => Uri.EscapeDataString(value);

    private void PurgeNonces(long now)
    {
        var last = Interlocked.Read(ref _lastPurge);
        if (now - last < 60 || Interlocked.CompareExchange(ref _lastPurge, now, last) != last)
        {
            return;
        }

        var horizon = now - (long)options.TimestampTolerance.TotalSeconds - 60;
        foreach (var (nonce, seen) in _nonces)
        {
            if (seen < horizon)
            {
                _nonces.TryRemove(nonce, out _);
            }
        }
    }
}
