using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>The sandbox's Bulk API 2.0 query jobs over real HTTP: states, CSV pages, error shapes, the failure knob, API counting.</summary>
public sealed class SalesforceBulkQuerySandboxTests
{
    private const string Jobs = "services/data/v61.0/jobs/query";

    [Fact]
    public async Task QueryJob_Lifecycle_StatesCsvPagesAndLocatorNullOnTheLastPage()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        for (var i = 0; i < 5; i++)
        {
            sandbox.Insert("Account", new JsonObject { ["Name"] = $"Acme {i}", ["NumberOfEmployees"] = i, ["Phone"] = i == 0 ? "555 \"0\", ext 1" : null });
        }

        using var http = await ClientAsync(sandbox);
        var created = await JsonAsync(await http.PostAsync(Jobs, Body(new JsonObject { ["operation"] = "query", ["query"] = "SELECT Id, Name, Phone, NumberOfEmployees, IsDeleted, CreatedDate FROM Account" })));
        Assert.Equal("UploadComplete", created["state"]!.GetValue<string>());
        Assert.Equal("Account", created["object"]!.GetValue<string>());
        Assert.StartsWith("750", created["id"]!.GetValue<string>(), StringComparison.Ordinal);
        var job = Jobs + "/" + created["id"];

        var early = await http.GetAsync(job + "/results");
        await AssertErrorAsync(early, HttpStatusCode.BadRequest, "INVALIDJOBSTATE");
        Assert.Equal("InProgress", (await JsonAsync(await http.GetAsync(job)))["state"]!.GetValue<string>());
        var done = await JsonAsync(await http.GetAsync(job));
        Assert.Equal("JobComplete", done["state"]!.GetValue<string>());
        Assert.Equal(5, done["numberRecordsProcessed"]!.GetValue<int>());
        Assert.Equal("V2Query", done["jobType"]!.GetValue<string>());

        var first = await http.GetAsync(job + "/results?maxRecords=3");
        Assert.Equal("text/csv", first.Content.Headers.ContentType!.MediaType);
        Assert.Equal("3", first.Headers.GetValues("Sforce-NumberOfRecords").Single());
        var locator = first.Headers.GetValues("Sforce-Locator").Single();
        Assert.NotEqual("null", locator);
        var lines = (await first.Content.ReadAsStringAsync()).Split('\n');
        Assert.Equal("\"Id\",\"Name\",\"Phone\",\"NumberOfEmployees\",\"IsDeleted\",\"CreatedDate\"", lines[0]);
        Assert.Matches("^\"001[0-9A-Za-z]{15}\",\"Acme 0\",\"555 \"\"0\"\", ext 1\",\"0\",\"false\",\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\"$", lines[1]);
        Assert.EndsWith(",\"\",\"1\",\"false\"," + lines[2].Split(',')[^1], lines[2], StringComparison.Ordinal);

        var last = await http.GetAsync(job + "/results?maxRecords=3&locator=" + locator);
        Assert.Equal("null", last.Headers.GetValues("Sforce-Locator").Single());
        Assert.Equal("2", last.Headers.GetValues("Sforce-NumberOfRecords").Single());
        var again = await http.GetAsync(job + "/results?maxRecords=3&locator=" + locator);
        Assert.Equal(await last.Content.ReadAsStringAsync(), await again.Content.ReadAsStringAsync());

        await AssertErrorAsync(await http.PatchAsync(job, Body(new JsonObject { ["state"] = "Aborted" })), HttpStatusCode.BadRequest, "INVALIDJOBSTATE");
        await AssertErrorAsync(await http.GetAsync("services/data/v60.0/jobs/query/" + created["id"] + "/results"), HttpStatusCode.Conflict, "INVALIDJOBSTATE");
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync(job)).StatusCode);
        await AssertErrorAsync(await http.GetAsync(job), HttpStatusCode.NotFound, "NOT_FOUND");

        // Every jobs/query request is an API call, like any other.
        Assert.Equal(11, sandbox.Stats.RequestsTo("GET /services/data/v{version}/jobs/query/{id}") + sandbox.Stats.RequestsTo("GET /services/data/v{version}/jobs/query/{id}/results")
            + sandbox.Stats.RequestsTo("POST /services/data/v{version}/jobs/query") + sandbox.Stats.RequestsTo("PATCH /services/data/v{version}/jobs/query/{id}")
            + sandbox.Stats.RequestsTo("DELETE /services/data/v{version}/jobs/query/{id}"));
        Assert.Equal(11, sandbox.Options.ApiRequestCount);
        var limits = await JsonAsync(await http.GetAsync("services/data/v61.0/limits"));
        Assert.Equal(9_999, limits["DailyBulkV2QueryJobs"]!["Remaining"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("SELECT COUNT() FROM Account", "API_ERROR")]
    [InlineData("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "API_ERROR")]
    [InlineData("SELECT Id FROM Account OFFSET 5", "API_ERROR")]
    [InlineData("SELECT Id, Nope__c FROM Account", "INVALID_FIELD")]
    [InlineData("SELECT Id FROM Account WHERE", "MALFORMED_QUERY")]
    public async Task CreateJob_SoqlBulkRefuses_ReturnsSalesforceError(string soql, string errorCode)
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);

        var response = await http.PostAsync(Jobs, Body(new JsonObject { ["operation"] = "query", ["query"] = soql }));

        await AssertErrorAsync(response, HttpStatusCode.BadRequest, errorCode);
    }

    [Fact]
    public async Task BulkJobFailuresKnob_NextJobEndsFailedWithErrorMessage_ThenJobsCompleteAgain()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        using var http = await ClientAsync(sandbox);
        var steer = await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["bulkJobFailures"] = 1 }));
        Assert.Equal(1, (await JsonAsync(steer))["bulkJobFailures"]!.GetValue<int>());

        async Task<JsonNode> RunAsync()
        {
            var id = (await JsonAsync(await http.PostAsync(Jobs, Body(new JsonObject { ["operation"] = "queryAll", ["query"] = "SELECT Id FROM Account" }))))["id"];
            await http.GetAsync(Jobs + "/" + id);
            return await JsonAsync(await http.GetAsync(Jobs + "/" + id));
        }

        var failed = await RunAsync();
        Assert.Equal("Failed", failed["state"]!.GetValue<string>());
        Assert.Contains("bulkJobFailures", failed["errorMessage"]!.GetValue<string>(), StringComparison.Ordinal);
        var complete = await RunAsync();
        Assert.Equal("JobComplete", complete["state"]!.GetValue<string>());
        await AssertErrorAsync(await http.GetAsync($"{Jobs}/{complete["id"]}/results?locator=not-a-locator"), HttpStatusCode.BadRequest, "INVALIDLOCATOR");
        await AssertErrorAsync(await http.GetAsync($"{Jobs}/{complete["id"]}/results?maxRecords=0"), HttpStatusCode.BadRequest, "INVALIDPARAMETER");

        var list = await JsonAsync(await http.GetAsync(Jobs));
        Assert.True(list["done"]!.GetValue<bool>());
        Assert.Equal(["Failed", "JobComplete"], list["records"]!.AsArray().Select(j => j!["state"]!.GetValue<string>()).ToArray());
        await AssertErrorAsync(await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["bulkJobFailures"] = -1 })), HttpStatusCode.BadRequest, "INVALID_FIELD");
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string errorCode)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal(errorCode, JsonNode.Parse(text)![0]!["errorCode"]!.GetValue<string>());
    }

    private static async Task<JsonNode> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"HTTP {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
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
}
