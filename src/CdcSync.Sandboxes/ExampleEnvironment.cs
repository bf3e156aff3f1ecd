using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Sandboxes;

/// <summary>
/// The environment variables examples/salesforce-netsuite.json reads its hub and credentials from
/// (<c>${...}</c>), pointed at running sandboxes with their fixed test credentials.
/// </summary>
public static class ExampleEnvironment
{
    public static IReadOnlyDictionary<string, string> For(string hubConnectionString, SalesforceSandbox salesforce, NetSuiteSandbox netsuite) =>
        new Dictionary<string, string>
        {
            ["CDCSYNC_DB"] = hubConnectionString,
            ["SALESFORCE_LOGIN_URL"] = salesforce.BaseUrl.ToString(),
            ["SALESFORCE_CLIENT_ID"] = SalesforceSandboxOptions.DefaultClientId,
            ["SALESFORCE_CLIENT_SECRET"] = SalesforceSandboxOptions.DefaultClientSecret,
            ["SALESFORCE_PUBSUB_ENDPOINT"] = salesforce.PubSubEndpoint,
            ["SALESFORCE_PUBSUB_CA_FILE"] = salesforce.PubSubCertificatePath,
            ["NETSUITE_ACCOUNT_ID"] = NetSuiteSandboxOptions.DefaultAccountId,
            ["NETSUITE_BASE_URL"] = netsuite.BaseUrl.ToString(),
            ["NETSUITE_CONSUMER_KEY"] = NetSuiteSandboxOptions.DefaultConsumerKey,
            ["NETSUITE_CONSUMER_SECRET"] = NetSuiteSandboxOptions.DefaultConsumerSecret,
            ["NETSUITE_TOKEN_ID"] = NetSuiteSandboxOptions.DefaultTokenId,
            ["NETSUITE_TOKEN_SECRET"] = NetSuiteSandboxOptions.DefaultTokenSecret,
        };

    /// <summary>Sets them for this process only.</summary>
    public static void Apply(string hubConnectionString, SalesforceSandbox salesforce, NetSuiteSandbox netsuite)
    {
        foreach (var (name, value) in For(hubConnectionString, salesforce, netsuite))
        {
            Environment.SetEnvironmentVariable(name, value);
        }
    }
}
