using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// The org's OAuth 2.0 token endpoint (<c>{LoginUrl}/services/oauth2/token</c>) for the configured
/// flow: the request to send (a fresh JWT assertion each time for the JWT bearer flow) and what its
/// answer means: a session, or a <see cref="SalesforceApiException"/> whose message carries
/// Salesforce's error and the fix, never a secret. The client sends it through its resilience
/// pipeline; `check` sends it once.
/// </summary>
internal sealed class SalesforceTokenEndpoint
{
    private const string JwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    private readonly SalesforceOptions _options;
    private readonly SalesforceJwtAssertion? _assertion;

    /// <param name="path">Where the connector's settings live (<c>Connectors:crm</c>), for messages.</param>
    public SalesforceTokenEndpoint(SalesforceOptions options, string path, TimeProvider timeProvider)
    {
        _options = options;
        Path = path;
        if (options.Flow == SalesforceAuthFlow.Jwt)
        {
            _assertion = new SalesforceJwtAssertion(SalesforcePrivateKey.Load(options, path), options.ClientId, options.Username!, options.Audience, timeProvider);
        }
    }

    public Uri Url => _options.TokenUrl;

    /// <summary>Where the connector's settings live, e.g. <c>Connectors:crm</c>.</summary>
    public string Path { get; }

    /// <summary>The grant as logs and messages name it.</summary>
    public string Grant => _options.Flow switch
    {
        SalesforceAuthFlow.Jwt => "jwt-bearer",
        SalesforceAuthFlow.RefreshToken => "refresh_token",
        _ => "client_credentials",
    };

    public HttpRequestMessage CreateRequest()
    {
        var form = _options.Flow switch
        {
            SalesforceAuthFlow.Jwt => new List<KeyValuePair<string, string>>
            {
                new("grant_type", JwtBearerGrant),
                new("assertion", _assertion!.Create()),
            },
            SalesforceAuthFlow.RefreshToken =>
            [
                new("grant_type", "refresh_token"),
                new("client_id", _options.ClientId),
                new("client_secret", _options.ClientSecret),
                new("refresh_token", _options.RefreshToken!),
            ],
            _ =>
            [
                new("grant_type", "client_credentials"),
                new("client_id", _options.ClientId),
                new("client_secret", _options.ClientSecret),
            ],
        };
        return new HttpRequestMessage(HttpMethod.Post, Url) { Content = new FormUrlEncodedContent(form) };
    }

    /// <summary>The session a successful answer grants; throws <see cref="SalesforceApiException"/> otherwise.</summary>
    public async Task<SalesforceSession> ReadAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            string? error = null;
            string? description = null;
            try
            {
                var json = JsonNode.Parse(text) as JsonObject;
                error = json?["error"]?.ToString();
                description = json?["error_description"]?.ToString();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                // Not an OAuth error body (a proxy's HTML page): the status says enough.
            }

            var transient = (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests;
            throw new SalesforceApiException(
                $"Salesforce token request to {Url} ({Grant} grant) failed: HTTP {(int)response.StatusCode} {error ?? "(no OAuth error)"}: {description}. {Fix(transient, error, description)}",
                response.StatusCode,
                error,
                transient,
                isAuthentication: !transient);
        }

        JsonObject? token;
        try
        {
            token = JsonNode.Parse(text) as JsonObject;
        }
        catch (JsonException)
        {
            token = null;
        }

        var accessToken = token?["access_token"] is JsonValue a && a.TryGetValue<string>(out var at) ? at : null;
        var instanceUrl = token?["instance_url"] is JsonValue i && i.TryGetValue<string>(out var iu) ? iu : null;
        if (string.IsNullOrEmpty(accessToken) || string.IsNullOrEmpty(instanceUrl))
        {
            throw new SalesforceApiException($"Salesforce's token response from {Url} has no access_token or instance_url.", response.StatusCode, null, false);
        }

        // The identity URL ends in /id/{org id}/{user id}: the org id is the Pub/Sub API's tenant id.
        var identity = token?["id"] is JsonValue d && d.TryGetValue<string>(out var du) ? du : null;
        var parts = identity?.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var orgId = parts is { Length: >= 3 } && parts[^3] == "id" ? parts[^2] : null;
        return new SalesforceSession(accessToken, new Uri(instanceUrl.TrimEnd('/') + "/")) { OrgId = orgId };
    }

    private string Fix(bool transient, string? error, string? description)
    {
        if (transient)
        {
            return "Salesforce is unavailable; the connector retries.";
        }

        switch (_options.Flow)
        {
            case SalesforceAuthFlow.RefreshToken:
                return $"Check {Path}:ClientId, {Path}:ClientSecret and {Path}:RefreshToken (the refresh token may have been revoked).";
            case SalesforceAuthFlow.ClientCredentials:
                return $"Check {Path}:ClientId and {Path}:ClientSecret, and that the connected app allows the client credentials flow with a run-as user.";
        }

        // Salesforce's error_description for the JWT bearer flow says which check failed.
        return (error, description) switch
        {
            ("invalid_client_id", _) => $"{Path}:ClientId must be the connected app's consumer key.",
            (_, "audience is invalid") => $"Set {Path}:Audience to https://login.salesforce.com (production) or https://test.salesforce.com (sandbox org).",
            (_, "expired authorization code") => "The assertion had expired when Salesforce read it; check this machine's clock (NTP).",
            (_, "invalid assertion") => $"Salesforce could not verify the assertion's signature: the certificate uploaded to the connected app ({Path}:ClientId) must be the one made with the private key in {Path}:{(string.IsNullOrWhiteSpace(_options.PrivateKey) ? "PrivateKeyFile" : "PrivateKey")}.",
            (_, "user hasn't approved this consumer") => $"Pre-authorize {_options.Username} ({Path}:Username): in the connected app's policies set Permitted Users to 'Admin approved users are pre-authorized' and add the user's profile or permission set.",
            _ => $"Check {Path}:ClientId, {Path}:Username, the private key and the connected app's certificate (see docs/SALESFORCE_JWT.md).",
        };
    }
}

/// <summary>An access token and the instance it is good for.</summary>
internal sealed record SalesforceSession(string AccessToken, Uri InstanceUrl)
{
    /// <summary>The org's id, from the token response's identity URL (null when it names none).</summary>
    public string? OrgId { get; init; }

    // Keep the token out of anything that prints the record.
    public override string ToString() => $"Session at {InstanceUrl}";
}
