using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// Checks an OAuth 2.0 JWT bearer assertion (RFC 7523) as Salesforce does: RS256 signature against the
/// connected app's certificate (<see cref="SalesforceSandboxOptions.JwtCertificate"/>), iss = the
/// consumer key, aud = an accepted login URL, exp not passed (less the configured clock skew), sub a
/// pre-authorized user. A refusal carries Salesforce's OAuth error and description.
/// </summary>
internal sealed class JwtBearerGrant(SalesforceSandboxOptions options)
{
    public const string GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    /// <summary>The username the assertion signs in as, or the OAuth error Salesforce answers.</summary>
    public (string? Username, string? Error, string? Description) Verify(string? assertion, Uri instanceUrl)
    {
        var parts = assertion?.Split('.') ?? [];
        if (parts.Length != 3 || Json(parts[0]) is not { } header || Json(parts[1]) is not { } claims || Bytes(parts[2]) is not { } signature)
        {
            return Invalid("invalid assertion");
        }

        if (Text(claims, "iss") != options.ClientId)
        {
            return (null, "invalid_client_id", "client identifier invalid");
        }

        using var key = options.JwtCertificate?.GetRSAPublicKey();
        if (Text(header, "alg") != "RS256"
            || key is null
            || !key.VerifyData(Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}"), signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
        {
            return Invalid("invalid assertion");
        }

        var audience = Text(claims, "aud")?.TrimEnd('/');
        if (audience is null || !(options.JwtAudiences.Any(a => a.TrimEnd('/') == audience) || instanceUrl.ToString().TrimEnd('/') == audience))
        {
            return Invalid("audience is invalid");
        }

        if (claims["exp"] is not JsonValue exp || !exp.TryGetValue<long>(out var seconds)
            || options.TimeProvider.GetUtcNow() >= DateTimeOffset.FromUnixTimeSeconds(seconds) + options.JwtClockSkew)
        {
            return Invalid("expired authorization code");
        }

        var subject = Text(claims, "sub");
        if (subject is null || !options.JwtUsernames.Contains(subject, StringComparer.OrdinalIgnoreCase))
        {
            return Invalid("user hasn't approved this consumer");
        }

        return (subject, null, null);
    }

    private static (string?, string?, string?) Invalid(string description) => (null, "invalid_grant", description);

    private static string? Text(JsonObject json, string name) =>
        json[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static JsonObject? Json(string part)
    {
        try
        {
            return Bytes(part) is { } bytes ? JsonNode.Parse(bytes) as JsonObject : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static byte[]? Bytes(string part)
    {
        try
        {
            return Base64Url.DecodeFromChars(part);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
