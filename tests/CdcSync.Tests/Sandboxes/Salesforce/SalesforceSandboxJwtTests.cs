using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Salesforce;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Connectors.Salesforce;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>The sandbox's token endpoint for the JWT bearer grant, over raw HTTP: Salesforce's shapes and the clock rules.</summary>
public sealed class SalesforceSandboxJwtTests
{
    [Fact]
    public async Task JwtGrant_ExpPassedWithinClockSkew_Accepted_PastIt_RefusedAsExpired()
    {
        using var key = JwtTestKey.Create();
        var clock = new SettableClock();
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { JwtCertificate = key.Certificate, TimeProvider = clock, JwtClockSkew = TimeSpan.FromSeconds(30) }, CancellationToken.None);
        using var http = new HttpClient { BaseAddress = sandbox.BaseUrl };
        using var rsa = RSA.Create();
        rsa.ImportFromPem(key.PrivateKeyPem);
        var assertion = new SalesforceJwtAssertion(rsa, sandbox.Options.ClientId, SalesforceSandboxOptions.DefaultUsername, sandbox.BaseUrl.ToString(), clock).Create();

        clock.Now += SalesforceJwtAssertion.Lifetime + TimeSpan.FromSeconds(20);
        var (withinSkew, granted) = await RequestAsync(http, assertion);
        clock.Now += TimeSpan.FromSeconds(10);
        var (pastSkew, refusal) = await RequestAsync(http, assertion);

        Assert.Equal(HttpStatusCode.OK, withinSkew);
        Assert.Equal("api", granted["scope"]!.GetValue<string>());
        Assert.Null(granted["refresh_token"]);
        Assert.Equal(sandbox.BaseUrl.ToString().TrimEnd('/'), granted["instance_url"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, pastSkew);
        Assert.Equal("""{"error":"invalid_grant","error_description":"expired authorization code"}""", refusal.ToJsonString());
    }

    [Theory]
    [InlineData("not-a-jwt", "invalid assertion")]
    [InlineData("eyJhbGciOiJub25lIn0.eyJpc3MiOiJjZGNzeW5jLXNhbmRib3gtY2xpZW50In0.", "invalid assertion")]
    public async Task JwtGrant_MalformedOrUnsigned_InvalidAssertion(string assertion, string description)
    {
        using var key = JwtTestKey.Create();
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { JwtCertificate = key.Certificate }, CancellationToken.None);
        using var http = new HttpClient { BaseAddress = sandbox.BaseUrl };

        var (status, body) = await RequestAsync(http, assertion);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body["error"]!.GetValue<string>());
        Assert.Equal(description, body["error_description"]!.GetValue<string>());
    }

    private static async Task<(HttpStatusCode Status, JsonObject Body)> RequestAsync(HttpClient http, string assertion)
    {
        using var response = await http.PostAsync("services/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ["assertion"] = assertion,
        }));
        return (response.StatusCode, (JsonObject)JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    /// <summary>A clock the test sets; the sandbox and the assertion read the same one.</summary>
    private sealed class SettableClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
