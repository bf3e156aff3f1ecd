using System.Net;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.Salesforce;
using CdcSync.Replication;
using CdcSync.Resilience;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>
/// The connector's OAuth 2.0 JWT bearer flow against the Salesforce sandbox, which verifies the
/// assertion against the connected app's certificate; keys made at test time.
/// </summary>
public sealed class SalesforceJwtTests
{
    [Fact]
    public async Task JwtFlow_KeyFile_TokenObtainedRecordsWrittenAndRead_ReacquiredAfterExpiry()
    {
        using var key = JwtTestKey.Create();
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(JwtFlow_KeyFile_TokenObtainedRecordsWrittenAndRead_ReacquiredAfterExpiry));
        hub.Sandbox.Options.JwtCertificate = key.Certificate;
        hub.Sandbox.Insert("Account", new JsonObject { ["Name"] = "Made In The Org" });
        var options = hub.Options(clientSecret: string.Empty);
        UseJwt(options, hub.Sandbox, key);
        Assert.True(new SalesforceOptionsValidator().Validate(options.Name, options).Succeeded);
        var client = hub.Client(options);
        await using var connector = hub.Outbound(client);

        var hubId = await hub.InsertAccountAsync("Written With JWT");
        var tx = hub.NextTransaction();
        await connector.WriteAsync([await hub.UpsertEventAsync("sf_accounts", hubId, tx)], CancellationToken.None);
        await connector.CommitAsync(tx.CommitLsn, CancellationToken.None);
        Assert.Equal(1, hub.Sandbox.Options.TokenRequestCount);

        // A revoked session (401 INVALID_SESSION_ID) gets a new token from a freshly signed assertion, once.
        hub.Sandbox.Options.ExpireAccessTokens();
        var names = await QueryNamesAsync(client);

        Assert.Equal(["Made In The Org", "Written With JWT"], names);
        Assert.Equal(2, hub.Sandbox.Options.TokenRequestCount);
        Assert.NotNull(await hub.ScalarAsync<string>("SELECT id FROM sf_accounts WHERE hub_id = $1", hubId));
        Assert.Contains(hub.Logs.Lines, l => l.Contains("jwt-bearer grant", StringComparison.Ordinal));
        Assert.DoesNotContain(hub.Logs.Lines, l => l.Contains(key.SecretFragment, StringComparison.Ordinal) || l.Contains("PRIVATE KEY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task JwtFlow_KeyInConfigValueWithEscapedNewlines_Authenticates()
    {
        using var key = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(key);
        var options = Options(sandbox, key);
        options.PrivateKeyFile = null;
        options.PrivateKey = key.PrivateKeyPem.Replace("\n", "\\n", StringComparison.Ordinal);

        Assert.True(new SalesforceOptionsValidator().Validate(options.Name, options).Succeeded);
        Assert.Empty(await QueryNamesAsync(new SalesforceClient(options, new HttpClient())));
    }

    [Fact]
    public async Task JwtFlow_ExpiredAssertion_RefusedAsPermanentWithSalesforcesErrorAndTheFix()
    {
        using var key = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(key);
        // The connector's clock is an hour behind the org's: its assertions expired before they were sent.
        var clock = new ManualTimeProvider();
        sandbox.Options.TimeProvider = new OffsetTimeProvider(clock.GetUtcNow() + TimeSpan.FromHours(1));

        var e = await Assert.ThrowsAsync<SalesforceApiException>(() => QueryNamesAsync(new SalesforceClient(Options(sandbox, key), new HttpClient(), timeProvider: clock)));

        Assert.Contains("HTTP 400 invalid_grant: expired authorization code. The assertion had expired when Salesforce read it; check this machine's clock (NTP).", e.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.Permanent, e.Kind);
        Assert.True(e.IsAuthentication);
    }

    [Fact]
    public async Task JwtFlow_WrongAudience_RefusedNamingTheAudienceKey()
    {
        using var key = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(key);
        var options = Options(sandbox, key);
        options.Audience = "https://acme.my.salesforce.com";

        var e = await Assert.ThrowsAsync<SalesforceApiException>(() => QueryNamesAsync(new SalesforceClient(options, new HttpClient())));

        Assert.Contains("invalid_grant: audience is invalid. Set Connectors:crm:Audience to https://login.salesforce.com (production) or https://test.salesforce.com (sandbox org).", e.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.Permanent, e.Kind);
    }

    [Fact]
    public async Task JwtFlow_CertificateOfAnotherKey_RefusedAsInvalidAssertion_KeyNeverInLogsOrMessage()
    {
        using var key = JwtTestKey.Create();
        using var other = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(other);
        var logs = new Logs();

        var e = await Assert.ThrowsAsync<SalesforceApiException>(() => QueryNamesAsync(new SalesforceClient(Options(sandbox, key), new HttpClient(), logs.Factory.CreateLogger<SalesforceClient>())));

        Assert.Equal(
            $"Salesforce token request to {sandbox.BaseUrl}services/oauth2/token (jwt-bearer grant) failed: HTTP 400 invalid_grant: invalid assertion. Salesforce could not verify the assertion's signature: the certificate uploaded to the connected app (Connectors:crm:ClientId) must be the one made with the private key in Connectors:crm:PrivateKeyFile.",
            e.Message);
        Assert.Equal(FailureKind.Permanent, e.Kind);
        Assert.Equal(HttpStatusCode.BadRequest, e.StatusCode);
        Assert.Equal(1, sandbox.Options.TokenRequestCount);
        var logged = Assert.Single(logs.Lines, l => l.Contains("token request", StringComparison.Ordinal));
        Assert.Contains("invalid_grant", logged, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(key.SecretFragment, StringComparison.Ordinal));
    }

    [Fact]
    public async Task JwtFlow_UserNotPreAuthorizedOrWrongConsumerKey_RefusedWithTheFix()
    {
        using var key = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(key);
        var stranger = Options(sandbox, key);
        stranger.Username = "someone.else@example.com";
        var wrongApp = Options(sandbox, key);
        wrongApp.ClientId = "3MVG9-not-this-app";

        var notApproved = await Assert.ThrowsAsync<SalesforceApiException>(() => QueryNamesAsync(new SalesforceClient(stranger, new HttpClient())));
        var unknownApp = await Assert.ThrowsAsync<SalesforceApiException>(() => QueryNamesAsync(new SalesforceClient(wrongApp, new HttpClient())));

        Assert.Contains("invalid_grant: user hasn't approved this consumer. Pre-authorize someone.else@example.com (Connectors:crm:Username)", notApproved.Message, StringComparison.Ordinal);
        Assert.Contains("invalid_client_id: client identifier invalid. Connectors:crm:ClientId must be the connected app's consumer key.", unknownApp.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JwtConfig_MissingOrWrongKeyAndNoUsername_OneLineEachNamingTheKey_NoKeyText()
    {
        using var key = JwtTestKey.Create();
        var dir = Path.GetDirectoryName(key.PrivateKeyFile)!;
        var certificateFile = Path.Combine(dir, "server.crt");
        File.WriteAllText(certificateFile, key.Certificate.ExportCertificatePem());
        var ecKeyFile = Path.Combine(dir, "ec.key");
        using (var ec = System.Security.Cryptography.ECDsa.Create())
        {
            File.WriteAllText(ecKeyFile, ec.ExportPkcs8PrivateKeyPem());
        }

        Assert.Equal(
            [
                "Config key Connectors:crm:Username: AuthFlow jwt signs in as a Salesforce user; set Username to that user's username (e.g. integration@example.com), a user pre-authorized for the connected app.",
                $"Config key Connectors:crm:PrivateKeyFile: File {dir}/missing.key does not exist; point PrivateKeyFile to the PEM private key made for the connected app's certificate (see docs/SALESFORCE_JWT.md).",
            ],
            Problems(new() { ["PrivateKeyFile"] = Path.Combine(dir, "missing.key") }, username: null));
        Assert.Equal(
            [$"Config key Connectors:crm:PrivateKeyFile: File {certificateFile} holds a certificate, not its private key; the certificate goes to the connected app, PrivateKeyFile takes the private key openssl wrote with it."],
            Problems(new() { ["PrivateKeyFile"] = certificateFile }));
        Assert.Equal(
            [$"Config key Connectors:crm:PrivateKeyFile: File {ecKeyFile} is not an RSA private key (Salesforce's JWT bearer flow signs with RS256); make an RSA key: openssl req -x509 -newkey rsa:2048 -nodes ... (see docs/SALESFORCE_JWT.md)."],
            Problems(new() { ["PrivateKeyFile"] = ecKeyFile }));
        var garbled = Problems(new() { ["PrivateKey"] = "-----BEGIN PRIVATE KEY-----\n" + key.SecretFragment });
        Assert.Equal(["Config key Connectors:crm:PrivateKey: The PrivateKey value is not a PEM private key (no -----BEGIN PRIVATE KEY----- block); PrivateKey takes the key file openssl wrote (see docs/SALESFORCE_JWT.md)."], garbled);
        Assert.Equal(
            ["Config key Connectors:crm:PrivateKeyFile: AuthFlow jwt signs its assertion with the private key of the connected app's certificate; set PrivateKeyFile to the PEM key file, or PrivateKey to the PEM text (e.g. \"${SALESFORCE_PRIVATE_KEY}\") (see docs/SALESFORCE_JWT.md)."],
            Problems([]));
        // No client secret is asked for; a good key passes.
        Assert.Empty(Problems(new() { ["PrivateKeyFile"] = key.PrivateKeyFile }));
    }

    [Fact]
    public async Task Check_AssertionRefused_PermanentProblemWithSalesforcesErrorAndFix_KeyFromEnvironmentNeverPrinted()
    {
        using var key = JwtTestKey.Create();
        using var other = JwtTestKey.Create();
        await using var sandbox = await StartSandboxAsync(other);
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var config = Path.Combine(Path.GetDirectoryName(key.PrivateKeyFile)!, "config.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "Hub": { "ConnectionString": "{{hub}}" },
              "Connectors": {
                "crm": {
                  "Type": "salesforce", "LoginUrl": "{{sandbox.BaseUrl}}", "AuthFlow": "jwt",
                  "ClientId": "{{SalesforceSandboxOptions.DefaultClientId}}", "Username": "{{SalesforceSandboxOptions.DefaultUsername}}",
                  "PrivateKey": "${SALESFORCE_PRIVATE_KEY}", "Audience": "{{sandbox.BaseUrl.ToString().TrimEnd('/')}}",
                  "Objects": [ { "SObject": "Account", "Table": "sf_accounts" } ]
                }
              },
              "Routes": { "public.sf_accounts": ["crm"] }
            }
            """);
        var env = new Dictionary<string, string?> { ["SALESFORCE_PRIVATE_KEY"] = key.PrivateKeyPem };

        var refused = await CliProcess.RunAsync(env, "check", "--config", config);
        sandbox.Options.JwtCertificate = key.Certificate;
        var accepted = await CliProcess.RunAsync(env, "check", "--config", config);

        Assert.Equal(2, refused.ExitCode);
        var line = Assert.Single(refused.Stderr.Split('\n'), l => l.Contains("Connector crm", StringComparison.Ordinal));
        Assert.StartsWith("error: Connector crm: Salesforce token request to", line, StringComparison.Ordinal);
        Assert.Contains("HTTP 400 invalid_grant: invalid assertion. Salesforce could not verify the assertion's signature: the certificate uploaded to the connected app (Connectors:crm:ClientId) must be the one made with the private key in Connectors:crm:PrivateKey.", line, StringComparison.Ordinal);
        Assert.DoesNotContain(key.SecretFragment, refused.Stdout + refused.Stderr, StringComparison.Ordinal);
        Assert.True(accepted.ExitCode == 0, accepted.Stdout + accepted.Stderr);
        Assert.Equal(2, sandbox.Options.TokenRequestCount);
    }

    private static List<string> Problems(Dictionary<string, string?> settings, string? username = SalesforceSandboxOptions.DefaultUsername)
    {
        var values = new Dictionary<string, string?>
        {
            ["Connectors:crm:Type"] = "salesforce",
            ["Connectors:crm:LoginUrl"] = "https://login.salesforce.com",
            ["Connectors:crm:AuthFlow"] = "jwt",
            ["Connectors:crm:ClientId"] = "3MVG9-consumer-key",
            ["Connectors:crm:Username"] = username,
        };
        foreach (var (name, value) in settings)
        {
            values["Connectors:crm:" + name] = value;
        }

        var section = new ConfigurationBuilder().AddInMemoryCollection(values).Build().GetSection("Connectors:crm");
        var problems = new List<string>();
        ConfigOptions.Bind(section, "Connectors:crm", new SalesforceOptionsValidator(), problems);
        return problems;
    }

    private static async Task<SalesforceSandbox> StartSandboxAsync(JwtTestKey key)
    {
        var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        sandbox.Options.JwtCertificate = key.Certificate;
        return sandbox;
    }

    private static SalesforceOptions Options(SalesforceSandbox sandbox, JwtTestKey key)
    {
        var options = new SalesforceOptions
        {
            Name = "crm",
            Resilience = new HttpResilienceOptions { MaxRetryAttempts = 1, RetryBaseDelay = TimeSpan.FromMilliseconds(20), RetryMaxDelay = TimeSpan.FromMilliseconds(50) },
        };
        UseJwt(options, sandbox, key);
        return options;
    }

    private static void UseJwt(SalesforceOptions options, SalesforceSandbox sandbox, JwtTestKey key)
    {
        options.Name = "crm";
        options.LoginUrl = sandbox.BaseUrl;
        options.AuthFlow = SalesforceAuthFlow.Jwt;
        options.ClientId = SalesforceSandboxOptions.DefaultClientId;
        options.Username = SalesforceSandboxOptions.DefaultUsername;
        options.PrivateKeyFile = key.PrivateKeyFile;
        // The sandbox's own URL stands in for https://login.salesforce.com.
        options.Audience = sandbox.BaseUrl.ToString().TrimEnd('/');
    }

    private static async Task<List<string>> QueryNamesAsync(SalesforceClient client)
    {
        var result = await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/query?q={Uri.EscapeDataString("SELECT Name FROM Account ORDER BY Name")}", null, null, CancellationToken.None);
        return result!["records"]!.AsArray().Select(r => r!["Name"]!.GetValue<string>()).ToList();
    }

    /// <summary>A clock standing still at a given instant (the org's, ahead of the connector's).</summary>
    private sealed class OffsetTimeProvider(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
