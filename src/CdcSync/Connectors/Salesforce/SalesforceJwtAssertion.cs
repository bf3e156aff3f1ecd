using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Builds the OAuth 2.0 JWT bearer assertion Salesforce takes (RFC 7523): header <c>{"alg":"RS256"}</c>,
/// claims iss (consumer key), sub (username), aud (login URL), exp (3 minutes ahead, the longest
/// Salesforce's docs allow), signed RSASSA-PKCS1-v1_5 with SHA-256. Three base64url parts; small enough
/// that no JWT library is worth a dependency.
/// </summary>
internal sealed class SalesforceJwtAssertion(RSA key, string issuer, string subject, string audience, TimeProvider timeProvider)
{
    /// <summary>How far ahead of now an assertion expires.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(3);

    private static readonly string Header = Encode("""{"alg":"RS256"}"""u8);

    /// <summary>A freshly signed assertion; make one per token request, so a retry never sends an expired one.</summary>
    public string Create()
    {
        var claims = new JsonObject
        {
            ["iss"] = issuer,
            ["sub"] = subject,
            ["aud"] = audience,
            ["exp"] = (timeProvider.GetUtcNow() + Lifetime).ToUnixTimeSeconds(),
        };
        var signingInput = $"{Header}.{Encode(Encoding.UTF8.GetBytes(claims.ToJsonString()))}";
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{signingInput}.{Encode(signature)}";
    }

    private static string Encode(ReadOnlySpan<byte> bytes) => Base64Url.EncodeToString(bytes);
}
