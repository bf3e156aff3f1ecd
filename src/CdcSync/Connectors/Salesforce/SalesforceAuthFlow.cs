namespace CdcSync.Connectors.Salesforce;

/// <summary>How the connector gets its access token from the org's OAuth 2.0 token endpoint.</summary>
public enum SalesforceAuthFlow
{
    /// <summary><c>grant_type=client_credentials</c>: consumer key and secret, the connected app's run-as user.</summary>
    ClientCredentials,

    /// <summary><c>grant_type=refresh_token</c>: a refresh token from an earlier interactive approval.</summary>
    RefreshToken,

    /// <summary>
    /// OAuth 2.0 JWT bearer flow (<c>grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer</c>): an RS256
    /// assertion signed with the private key of the certificate uploaded to the connected app; no secret or
    /// refresh token to rotate.
    /// </summary>
    Jwt,
}
