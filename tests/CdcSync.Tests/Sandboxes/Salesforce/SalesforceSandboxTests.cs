using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>The Salesforce sandbox over real HTTP on loopback: SOQL forms and errors, describe, steering knobs.</summary>
public sealed class SalesforceSandboxTests
{
    private const string Api = "services/data/v61.0/";

    [Fact]
    public async Task Query_InvalidField_ReturnsInvalidFieldWithCaretRowAndColumn()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var response = await http.GetAsync(Api + "query?q=" + Uri.EscapeDataString("SELECT Id, Nope__c FROM Account"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())![0]!;
        Assert.Equal("INVALID_FIELD", error["errorCode"]!.GetValue<string>());
        Assert.Equal(
            "\nSELECT Id, Nope__c FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nope__c' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            error["message"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("SELECT Id FROM Account WHERE", "MALFORMED_QUERY")]
    [InlineData("SELECT Id FROM Account WHERE Name LIKE Acme", "MALFORMED_QUERY")]
    [InlineData("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY")]
    [InlineData("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:x", "MALFORMED_QUERY")]
    [InlineData("SELECT Id FROM Account WHERE AnnualRevenue > '5'", "INVALID_FIELD")]
    [InlineData("SELECT Id, Parent.Name FROM Contact", "INVALID_FIELD")]
    [InlineData("SELECT Id, (SELECT Id FROM Nopes) FROM Account", "INVALID_TYPE")]
    [InlineData("SELECT Id FROM Nope", "INVALID_TYPE")]
    [InlineData("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD")]
    [InlineData("SELECT Id FROM Opportunity ORDER BY Description", "INVALID_FIELD")]
    public async Task Query_BadSoql_ReturnsSalesforceErrorCode(string soql, string errorCode)
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var response = await http.GetAsync(Api + "query?q=" + Uri.EscapeDataString(soql));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())![0]!;
        Assert.Equal(errorCode, error["errorCode"]!.GetValue<string>());
        Assert.Contains("ERROR at Row:1:Column:", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Query_DateLiterals_FollowTheSandboxClock()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 18, 15, 0, 0, TimeSpan.Zero));
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { TimeProvider = clock }, CancellationToken.None);
        var old = sandbox.Insert("Account", new JsonObject { ["Name"] = "Old" });
        clock.Advance(TimeSpan.FromDays(3));
        var recent = sandbox.Insert("Account", new JsonObject { ["Name"] = "Recent" });
        using var http = await ClientAsync(sandbox);

        async Task<List<string>> IdsAsync(string where) =>
            [.. (await QueryAsync(http, "SELECT Id FROM Account WHERE " + where))["records"]!.AsArray().Select(r => r!["Id"]!.GetValue<string>())];

        Assert.Equal([recent], await IdsAsync("CreatedDate = TODAY"));
        Assert.Equal([recent], await IdsAsync("CreatedDate = LAST_N_DAYS:1"));
        Assert.Equal([old], await IdsAsync("CreatedDate = N_DAYS_AGO:3"));
        Assert.Equal([old], await IdsAsync("CreatedDate < YESTERDAY"));
        Assert.Equal(2, (await IdsAsync("CreatedDate = THIS_MONTH")).Count);
        Assert.Empty(await IdsAsync("CreatedDate > TODAY"));
    }

    [Fact]
    public async Task Query_CountParentAndChildren_ReturnSalesforceShapes()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        var account = sandbox.Insert("Account", new JsonObject { ["Name"] = "Acme" });
        var lonely = sandbox.Insert("Account", new JsonObject { ["Name"] = "Lonely" });
        sandbox.Insert("Contact", new JsonObject { ["LastName"] = "Rivera", ["AccountId"] = account });
        sandbox.Insert("Contact", new JsonObject { ["LastName"] = "Orphan" });
        using var http = await ClientAsync(sandbox);

        var count = await QueryAsync(http, "SELECT COUNT() FROM Contact");
        Assert.Equal(2, count["totalSize"]!.GetValue<int>());
        Assert.Empty(count["records"]!.AsArray());

        var aggregate = await QueryAsync(http, "SELECT COUNT(AccountId) linked FROM Contact");
        Assert.Equal(1, aggregate["records"]![0]!["linked"]!.GetValue<int>());
        Assert.Equal("AggregateResult", aggregate["records"]![0]!["attributes"]!["type"]!.GetValue<string>());

        var contacts = (await QueryAsync(http, "SELECT LastName, Account.Name FROM Contact ORDER BY Account.Name NULLS LAST"))["records"]!.AsArray();
        Assert.Equal("Acme", contacts[0]!["Account"]!["Name"]!.GetValue<string>());
        Assert.Equal("Account", contacts[0]!["Account"]!["attributes"]!["type"]!.GetValue<string>());
        Assert.Null(contacts[1]!["Account"]);

        var accounts = (await QueryAsync(http, "SELECT Name, (SELECT LastName FROM Contacts) FROM Account ORDER BY Name"))["records"]!.AsArray();
        Assert.Equal(account, accounts[0]!["attributes"]!["url"]!.GetValue<string>().Split('/')[^1]);
        Assert.Equal(1, accounts[0]!["Contacts"]!["totalSize"]!.GetValue<int>());
        Assert.Equal("Rivera", accounts[0]!["Contacts"]!["records"]![0]!["LastName"]!.GetValue<string>());
        Assert.Equal(lonely, accounts[1]!["attributes"]!["url"]!.GetValue<string>().Split('/')[^1]);
        Assert.Null(accounts[1]!["Contacts"]);
    }

    [Fact]
    public async Task QueryAll_DeletedOpportunity_ReturnedWithIsDeletedTrue()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        var account = sandbox.Insert("Account", new JsonObject { ["Name"] = "Acme" });
        var opportunity = sandbox.Insert("Opportunity", new JsonObject { ["Name"] = "Deal", ["AccountId"] = account, ["StageName"] = "Closed Won", ["CloseDate"] = "2026-01-31" });
        using var http = await ClientAsync(sandbox);

        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync(Api + "sobjects/Opportunity/" + opportunity)).StatusCode);

        Assert.Empty((await QueryAsync(http, "SELECT Id FROM Opportunity"))["records"]!.AsArray());
        var all = (await QueryAsync(http, "SELECT Id, IsDeleted, IsWon, Probability FROM Opportunity", "queryAll"))["records"]!.AsArray();
        var row = Assert.Single(all)!;
        Assert.True(row["IsDeleted"]!.GetValue<bool>());
        Assert.True(row["IsWon"]!.GetValue<bool>());
        Assert.Equal(100, row["Probability"]!.GetValue<double>());
    }

    [Fact]
    public async Task GetDeleted_WindowAroundTheDeletion_ListsIdAndDate()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 18, 15, 0, 30, TimeSpan.Zero));
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { TimeProvider = clock }, CancellationToken.None);
        var account = sandbox.Insert("Account", new JsonObject { ["Name"] = "Gone" });
        clock.Advance(TimeSpan.FromMinutes(5));
        sandbox.Delete(account);
        clock.Advance(TimeSpan.FromMinutes(5));
        using var http = await ClientAsync(sandbox);

        var deleted = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects/Account/deleted/?start=2026-03-18T15:04:00%2B00:00&end=2026-03-18T15:06:00%2B00:00"))!;
        var before = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects/Account/deleted/?start=2026-03-18T15:00:00%2B00:00&end=2026-03-18T15:05:00%2B00:00"))!;
        var updated = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects/Account/updated/?start=2026-03-18T15:00:00%2B00:00&end=2026-03-18T15:20:00%2B00:00"))!;
        var backwards = await http.GetAsync(Api + "sobjects/Account/deleted/?start=2026-03-18T15:06:00%2B00:00&end=2026-03-18T15:04:00%2B00:00");

        var entry = Assert.Single(deleted["deletedRecords"]!.AsArray())!;
        Assert.Equal(account, entry["id"]!.GetValue<string>());
        Assert.Equal("2026-03-18T15:05:30.000+0000", entry["deletedDate"]!.GetValue<string>());
        Assert.Empty(before["deletedRecords"]!.AsArray());
        Assert.Empty(updated["ids"]!.AsArray());
        Assert.Equal(HttpStatusCode.BadRequest, backwards.StatusCode);
        Assert.Equal("INVALID_REPLICATION_DATE", JsonNode.Parse(await backwards.Content.ReadAsStringAsync())![0]!["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Describe_Opportunity_ListsFieldsWithTypesAndFlags()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var global = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects"))!;
        var describe = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects/Opportunity/describe"))!;

        Assert.Equal(["Account", "Contact", "Opportunity"], global["sobjects"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()).Order());
        var fields = describe["fields"]!.AsArray().ToDictionary(f => f!["name"]!.GetValue<string>(), f => f!);
        Assert.Equal("currency", fields["Amount"]["type"]!.GetValue<string>());
        Assert.Equal("percent", fields["Probability"]["type"]!.GetValue<string>());
        Assert.Equal("date", fields["CloseDate"]["type"]!.GetValue<string>());
        Assert.Equal("Account", fields["AccountId"]["relationshipName"]!.GetValue<string>());
        Assert.True(fields["CdcSync_Id__c"]["externalId"]!.GetValue<bool>());
        Assert.False(fields["IsWon"]["updateable"]!.GetValue<bool>());
        Assert.False(fields["StageName"]["nillable"]!.GetValue<bool>());
        Assert.True(fields["NetSuite_Id__c"]["custom"]!.GetValue<bool>());
        Assert.Contains(fields["StageName"]["picklistValues"]!.AsArray(), v => v!["value"]!.GetValue<string>() == "Negotiation/Review");
        var account = JsonNode.Parse(await http.GetStringAsync(Api + "sobjects/Account/describe"))!;
        Assert.Contains(account["childRelationships"]!.AsArray(), r => r!["relationshipName"]!.GetValue<string>() == "Opportunities");
        Assert.Contains(account["fields"]!.AsArray(), f => f!["name"]!.GetValue<string>() == "Description" && f["type"]!.GetValue<string>() == "textarea");
    }

    [Fact]
    public async Task LimitInfoHeader_CountsApiCalls()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 500 }, CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var first = await http.GetAsync(Api + "limits");
        var second = await http.GetAsync(Api + "sobjects");

        Assert.Equal("api-usage=1/500", first.Headers.GetValues("Sforce-Limit-Info").Single());
        Assert.Equal("api-usage=2/500", second.Headers.GetValues("Sforce-Limit-Info").Single());
        Assert.Equal(499, JsonNode.Parse(await first.Content.ReadAsStringAsync())!["DailyApiRequests"]!["Remaining"]!.GetValue<long>());
    }

    [Fact]
    public async Task Faults_UnknownKey_Rejected400NamingKeyAndChangesNothing()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = new HttpClient { BaseAddress = sandbox.BaseUrl };

        var response = await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["errorRate"] = 0.5, ["outage"] = 10 }));
        var badKind = await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["burst"] = new JsonObject { ["kind"] = "Teapot" } }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("'outage'", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badKind.StatusCode);
        Assert.Contains("burst.kind", await badKind.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, sandbox.Options.ErrorRate);
    }

    [Fact]
    public async Task Stats_RequestWithInjectedLatency_TimeInTheSandboxCountedPerEndpoint()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var steer = new HttpClient { BaseAddress = sandbox.BaseUrl };
        using var http = await ClientAsync(sandbox);
        Assert.Equal(HttpStatusCode.OK, (await steer.PostAsync("_sandbox/faults", Body(new JsonObject { ["latencyMs"] = 60 }))).StatusCode);

        var created = await http.PostAsync(Api + "sobjects/Account", Body(new JsonObject { ["Name"] = "Timed" }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        // The response's end is noted after the client has it: wait for the count to appear.
        const string endpoint = "POST /services/data/v{version}/sobjects/{type}";
        for (var i = 0; i < 100 && sandbox.Stats.MillisecondsIn(endpoint) == 0; i++)
        {
            await Task.Delay(20);
        }

        // At least the injected 60 ms, less the runtime timer's granularity (it can fire a
        // millisecond or two before the stopwatch says 60 ms have passed).
        Assert.Equal(1, sandbox.Stats.RequestsTo(endpoint));
        Assert.InRange(sandbox.Stats.MillisecondsIn(endpoint), 50, 60_000);
        Assert.Equal(sandbox.Stats.MillisecondsIn(endpoint), sandbox.Stats.MeanMillisecondsIn(endpoint));
        var stats = JsonNode.Parse(await steer.GetStringAsync("_sandbox/stats"))!;
        Assert.InRange(stats["millisecondsPerEndpoint"]![endpoint]!.GetValue<double>(), 50, 60_000);
    }

    [Fact]
    public async Task Normalize_PhoneAndCase_StoredNormalizedAndWritesCounted()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var steer = new HttpClient { BaseAddress = sandbox.BaseUrl };
        using var http = await ClientAsync(sandbox);
        var set = await steer.PostAsync("_sandbox/faults", Body(new JsonObject
        {
            ["normalize"] = new JsonObject { ["phone"] = "northAmerican", ["trim"] = true, ["case"] = new JsonObject { ["BillingState"] = "upper" } },
        }));
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        var created = await http.PostAsync(Api + "sobjects/Account", Body(new JsonObject { ["Name"] = " Acme ", ["Phone"] = "+1 415 555 0100", ["BillingState"] = "ca" }));
        var id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        await http.PatchAsync(Api + "sobjects/Account/" + id, Body(new JsonObject { ["Phone"] = "4155550199" }));

        var stored = sandbox.Get(id)!;
        Assert.Equal("Acme", stored["Name"]!.GetValue<string>());
        Assert.Equal("(415) 555-0199", stored["Phone"]!.GetValue<string>());
        Assert.Equal("CA", stored["BillingState"]!.GetValue<string>());
        var stats = JsonNode.Parse(await steer.GetStringAsync("_sandbox/stats"))!;
        Assert.Equal(2, stats["writesPerRecord"]!["Account/" + id]!.GetValue<long>());
        Assert.Equal(1, stats["requestsPerEndpoint"]!["PATCH /services/data/v{version}/sobjects/{type}/{id}"]!.GetValue<long>());

        Assert.Equal(HttpStatusCode.OK, (await steer.PostAsync("_sandbox/reset", null)).StatusCode);
        Assert.True(sandbox.Normalizer.IsOff);
        Assert.Equal(0, sandbox.Stats.Writes);
        Assert.Single(sandbox.Records("Account"));

        Assert.Equal(HttpStatusCode.OK, (await steer.PostAsync("_sandbox/reset", Body(new JsonObject { ["records"] = true }))).StatusCode);
        Assert.Empty(sandbox.Records("Account"));
        var again = await http.PostAsync(Api + "sobjects/Account", Body(new JsonObject { ["Name"] = "Acme" }));
        Assert.NotEqual(id, JsonNode.Parse(await again.Content.ReadAsStringAsync())!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task LatencyHeader_Negative_Rejected400NamingHeader()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);
        using var request = new HttpRequestMessage(HttpMethod.Get, Api + "limits");
        request.Headers.Add("X-Sandbox-Latency-Ms", "-5");

        var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("X-Sandbox-Latency-Ms", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Opportunity_WithoutCloseDate_RejectedRequiredFieldMissing()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var response = await http.PostAsync(Api + "sobjects/Opportunity", Body(new JsonObject { ["Name"] = "Deal", ["StageName"] = "Prospecting" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())![0]!;
        Assert.Equal("REQUIRED_FIELD_MISSING", error["errorCode"]!.GetValue<string>());
        Assert.Equal("CloseDate", error["fields"]![0]!.GetValue<string>());
    }

    private static async Task<JsonNode> QueryAsync(HttpClient http, string soql, string resource = "query")
    {
        var response = await http.GetAsync(Api + resource + "?q=" + Uri.EscapeDataString(soql));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!;
    }

    private static async Task<HttpClient> ClientAsync(SalesforceSandbox sandbox)
    {
        var http = new HttpClient { BaseAddress = sandbox.BaseUrl };
        var token = await http.PostAsync("services/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = sandbox.Options.ClientId,
            ["client_secret"] = sandbox.Options.ClientSecret,
        }));
        var accessToken = JsonNode.Parse(await token.Content.ReadAsStringAsync())!["access_token"]!.GetValue<string>();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return http;
    }

    private static StringContent Body(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
