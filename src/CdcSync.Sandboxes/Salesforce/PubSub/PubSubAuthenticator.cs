namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// The Pub/Sub API's session authentication: an access token the sandbox issued (and has not
/// expired or revoked), the org's instance URL and its org id (15 or 18 characters, as clients send it).
/// </summary>
internal sealed class PubSubAuthenticator(Func<string, bool> isValidToken, Func<Uri> instanceUrl, string orgId)
{
    /// <summary>The org's tenant GUID, as TopicInfo reports it.</summary>
    public string TenantGuid => "core/sandbox/" + orgId;

    public bool IsValid(string? accessToken, string? instance, string? tenantId)
    {
        if (string.IsNullOrEmpty(accessToken) || string.IsNullOrEmpty(instance) || string.IsNullOrEmpty(tenantId))
        {
            return false;
        }

        // The sandbox serves REST over plain HTTP; clients that insist on an https:// instance URL
        // (as real orgs have) send the same host and port with that scheme, which is taken as the same instance.
        var own = instanceUrl();
        var sameInstance = Uri.TryCreate(instance, UriKind.Absolute, out var given)
            && given.Scheme is "http" or "https"
            && string.Equals(given.Host, own.Host, StringComparison.OrdinalIgnoreCase)
            && given.Port == own.Port
            && given.AbsolutePath.TrimEnd('/').Length == 0;
        var sameOrg = tenantId == orgId || (tenantId.Length >= 15 && orgId.StartsWith(tenantId, StringComparison.Ordinal));
        return sameInstance && sameOrg && isValidToken(accessToken);
    }
}
