using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.NetSuite;
using RestSharp;
using RestSharp.Authenticators;
using RestSharp.Authenticators.OAuth;

namespace CdcSync.Tests.Sandboxes.NetSuite;

/// <summary>
/// Drives the NetSuite sandbox with RestSharp, whose OAuth1Authenticator signs every request
/// (HMAC-SHA256, realm = account id) independently of our own connector's signer, so the sandbox's
/// token-based-authentication check and our signer cannot drift into agreeing on a bug.
/// </summary>
public sealed class NetSuiteSandboxTests
{
    [Fact]
    public async Task RestSharpOAuth1_EverydayCalls_AllSucceed()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var client = Client(sandbox, sandbox.Options.TokenSecret);
        var calls = new List<(string Call, HttpStatusCode Status)>();

        async Task<RestResponse> CallAsync(string name, RestRequest request, HttpStatusCode expected)
        {
            var response = await client.ExecuteAsync(request);
            calls.Add((name, response.StatusCode));
            Assert.True(response.StatusCode == expected, $"{name}: {(int)response.StatusCode} {response.Content}");
            return response;
        }

        var create = await CallAsync("create customer", Json(Method.Post, "services/rest/record/v1/customer", new JsonObject
        {
            ["companyName"] = "Acme Tools",
            ["externalId"] = "hub-acme",
            ["phone"] = "415-555-0100",
            ["comments"] = "Key account, prefers email.",
        }), HttpStatusCode.NoContent);
        var customerId = long.Parse(create.Headers!.First(h => h.Name == "Location").Value!.ToString()!.Split('/')[^1]);

        var get = await CallAsync("get customer", new RestRequest($"services/rest/record/v1/customer/{customerId}"), HttpStatusCode.OK);
        Assert.Equal("Key account, prefers email.", JsonNode.Parse(get.Content!)!["comments"]!.GetValue<string>());

        await CallAsync("update customer", Json(Method.Patch, $"services/rest/record/v1/customer/{customerId}", new JsonObject { ["comments"] = "Moved to net 30." }), HttpStatusCode.NoContent);
        await CallAsync("upsert customer by external id", Json(Method.Put, "services/rest/record/v1/customer/eid:hub-beta", new JsonObject { ["companyName"] = "Beta Supply" }), HttpStatusCode.NoContent);

        var opportunity = await CallAsync("create opportunity", Json(Method.Post, "services/rest/record/v1/opportunity", new JsonObject
        {
            ["entity"] = new JsonObject { ["id"] = customerId.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            ["title"] = "Acme renewal 2027",
            ["entityStatus"] = new JsonObject { ["id"] = "10" },
            ["projectedTotal"] = 12500.5,
            ["expectedCloseDate"] = "2027-03-31",
            ["memo"] = "Two-year term",
            ["externalId"] = "hub-opp-1",
        }), HttpStatusCode.NoContent);
        var opportunityId = long.Parse(opportunity.Headers!.First(h => h.Name == "Location").Value!.ToString()!.Split('/')[^1]);

        var opp = JsonNode.Parse((await CallAsync("get opportunity", new RestRequest($"services/rest/record/v1/opportunity/eid:hub-opp-1"), HttpStatusCode.OK)).Content!)!;
        Assert.Equal(opportunityId.ToString(System.Globalization.CultureInfo.InvariantCulture), opp["id"]!.GetValue<string>());
        Assert.Equal("Acme Tools", opp["entity"]!["refName"]!.GetValue<string>());
        Assert.Equal("Proposal", opp["entityStatus"]!["refName"]!.GetValue<string>());
        Assert.Equal("In Progress", opp["status"]!["refName"]!.GetValue<string>());
        Assert.Equal(50, opp["probability"]!.GetValue<double>());

        var suiteQl = Json(Method.Post, "services/rest/query/v1/suiteql", new JsonObject
        {
            ["q"] = $"SELECT id, title, entity, probability, projectedtotal, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS modified FROM opportunity WHERE entity = {customerId} ORDER BY id",
        });
        suiteQl.AddHeader("Prefer", "transient");
        suiteQl.AddQueryParameter("limit", "10");
        var rows = JsonNode.Parse((await CallAsync("SuiteQL opportunity", suiteQl, HttpStatusCode.OK)).Content!)!["items"]!.AsArray();
        Assert.Equal("Acme renewal 2027", Assert.Single(rows)!["title"]!.GetValue<string>());
        Assert.Equal(customerId.ToString(System.Globalization.CultureInfo.InvariantCulture), rows[0]!["entity"]!.GetValue<string>());

        var catalog = JsonNode.Parse((await CallAsync("metadata catalog", new RestRequest("services/rest/record/v1/metadata-catalog/"), HttpStatusCode.OK)).Content!)!;
        Assert.Contains(catalog["items"]!.AsArray(), i => i!["name"]!.GetValue<string>() == "opportunity");
        var schemaRequest = new RestRequest("services/rest/record/v1/metadata-catalog/opportunity");
        schemaRequest.AddHeader("Accept", "application/schema+json");
        var schema = JsonNode.Parse((await CallAsync("opportunity schema", schemaRequest, HttpStatusCode.OK)).Content!)!;
        var properties = schema["properties"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Contains("expectedCloseDate", properties);
        Assert.Contains("projectedTotal", properties);
        Assert.Equal("customer", schema["properties"]!["entity"]!["x-ns-referenced-record"]!.GetValue<string>());
        var swaggerRequest = new RestRequest("services/rest/record/v1/metadata-catalog/customer");
        swaggerRequest.AddHeader("Accept", "application/swagger+json");
        var swagger = JsonNode.Parse((await CallAsync("customer OpenAPI", swaggerRequest, HttpStatusCode.OK)).Content!)!;
        Assert.Equal("Comments", swagger["components"]!["schemas"]!["customer"]!["properties"]!["comments"]!["title"]!.GetValue<string>());

        await CallAsync("delete opportunity", new RestRequest($"services/rest/record/v1/opportunity/{opportunityId}", Method.Delete), HttpStatusCode.NoContent);
        var deleted = Json(Method.Post, "services/rest/query/v1/suiteql", new JsonObject
        {
            ["q"] = "SELECT recordid, type, TO_CHAR(deleteddate, 'YYYY-MM-DD HH24:MI:SS') AS deleted FROM deletedrecord WHERE type = 'opportunity'",
        });
        deleted.AddHeader("Prefer", "transient");
        var deletedRows = JsonNode.Parse((await CallAsync("SuiteQL deletedrecord", deleted, HttpStatusCode.OK)).Content!)!["items"]!.AsArray();
        Assert.Equal(opportunityId.ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Single(deletedRows)!["recordid"]!.GetValue<string>());

        var list = new RestRequest("services/rest/record/v1/customer");
        list.AddQueryParameter("limit", "1");
        var page = JsonNode.Parse((await CallAsync("list customers", list, HttpStatusCode.OK)).Content!)!;
        Assert.True(page["hasMore"]!.GetValue<bool>());
        Assert.Equal(2, page["totalResults"]!.GetValue<int>());

        Assert.Equal(13, calls.Count);
        Assert.Equal(0, sandbox.Options.AuthenticationFailures);

        // create, update, upsert, create opportunity, delete opportunity
        Assert.Equal(5, sandbox.Stats.Writes);
        Assert.Equal(2, sandbox.Stats.WritesOf("customer", customerId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task RestSharpOAuth1_WrongTokenSecret_Rejected401InvalidLogin()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var client = Client(sandbox, "not-the-token-secret");

        var response = await client.ExecuteAsync(new RestRequest("services/rest/record/v1/customer/100"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("INVALID_LOGIN", JsonNode.Parse(response.Content!)!["o:errorDetails"]![0]!["o:errorCode"]!.GetValue<string>());
        Assert.Equal(1, sandbox.Options.AuthenticationFailures);
    }

    [Fact]
    public async Task Opportunity_EntityNotACustomer_Rejected400NamingEntity()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        var response = await client.ExecuteAsync(Json(Method.Post, "services/rest/record/v1/opportunity", new JsonObject
        {
            ["entity"] = new JsonObject { ["id"] = "999999" },
            ["title"] = "Orphan",
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var detail = JsonNode.Parse(response.Content!)!["o:errorDetails"]![0]!;
        Assert.Equal("entity", detail["o:errorPath"]!.GetValue<string>());
        Assert.Equal(0, sandbox.Count("opportunity"));
    }

    [Fact]
    public async Task Customer_UnknownField_Rejected400NamingFieldAndCatalog()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        var response = await client.ExecuteAsync(Json(Method.Post, "services/rest/record/v1/customer", new JsonObject { ["companyName"] = "X", ["description"] = "no such field" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var detail = JsonNode.Parse(response.Content!)!["o:errorDetails"]![0]!;
        Assert.Equal("description", detail["o:errorPath"]!.GetValue<string>());
        Assert.Contains("metadata-catalog/customer", detail["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteCustomer_ReferencedByOpportunity_Rejected400AndKept()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var customer = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Held" });
        sandbox.SeedRecord("opportunity", new JsonObject { ["entity"] = new JsonObject { ["id"] = customer.ToString(System.Globalization.CultureInfo.InvariantCulture) }, ["title"] = "Deal" });
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        var response = await client.ExecuteAsync(new RestRequest($"services/rest/record/v1/customer/{customer}", Method.Delete));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(sandbox.GetCustomer(customer));
        Assert.Equal(0, sandbox.Stats.Writes);
    }

    [Fact]
    public async Task Faults_UnknownKey_Rejected400NamingKeyAndChangesNothing()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var http = new HttpClient { BaseAddress = sandbox.BaseUrl };

        var response = await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["errorRate"] = 0.5, ["latencyMS"] = 10 }));
        var nested = await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["normalize"] = new JsonObject { ["phones"] = "digits" } }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("'latencyMS'", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, nested.StatusCode);
        Assert.Contains("'normalize.phones'", await nested.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, sandbox.Options.ErrorRate);
        Assert.True(sandbox.Normalizer.IsOff);
    }

    [Fact]
    public async Task Faults_NormalizeAndOutage_AppliedOverHttpAndClearedByReset()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var http = new HttpClient { BaseAddress = sandbox.BaseUrl };
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        var set = await http.PostAsync("_sandbox/faults", Body(new JsonObject
        {
            ["normalize"] = new JsonObject { ["phone"] = "digits", ["trim"] = true, ["case"] = new JsonObject { ["email"] = "lower" } },
        }));
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        var created = await client.ExecuteAsync(Json(Method.Post, "services/rest/record/v1/customer", new JsonObject
        {
            ["companyName"] = "  Gamma Labs  ",
            ["phone"] = "+1 (415) 555-0100",
            ["email"] = "Ops@Gamma.Example",
        }));
        Assert.Equal(HttpStatusCode.NoContent, created.StatusCode);
        var id = long.Parse(created.Headers!.First(h => h.Name == "Location").Value!.ToString()!.Split('/')[^1]);
        var stored = sandbox.GetCustomer(id)!;
        Assert.Equal("Gamma Labs", stored["companyName"]!.GetValue<string>());
        Assert.Equal("14155550100", stored["phone"]!.GetValue<string>());
        Assert.Equal("ops@gamma.example", stored["email"]!.GetValue<string>());

        await client.ExecuteAsync(Json(Method.Patch, $"services/rest/record/v1/customer/{id}", new JsonObject { ["phone"] = "415.555.0199" }));
        var stats = JsonNode.Parse(await http.GetStringAsync("_sandbox/stats"))!;
        Assert.Equal(2, stats["writesPerRecord"]![$"customer/{id}"]!.GetValue<long>());
        Assert.Equal(1, stats["requestsPerEndpoint"]!["PATCH /services/rest/record/v1/{type}/{key}"]!.GetValue<long>());

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("_sandbox/faults", Body(new JsonObject { ["outageSeconds"] = 300 }))).StatusCode);
        var during = await client.ExecuteAsync(new RestRequest($"services/rest/record/v1/customer/{id}"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);

        var reset = await http.PostAsync("_sandbox/reset", Body(new JsonObject { ["records"] = true }));
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.True(sandbox.Normalizer.IsOff);
        Assert.Equal(0, sandbox.Stats.Writes);
        Assert.Equal(0, sandbox.CustomerCount);
        var after = await client.ExecuteAsync(Json(Method.Post, "services/rest/record/v1/customer", new JsonObject { ["companyName"] = "Delta" }));
        Assert.Equal(HttpStatusCode.NoContent, after.StatusCode);
        Assert.NotEqual(id, long.Parse(after.Headers!.First(h => h.Name == "Location").Value!.ToString()!.Split('/')[^1]));
    }

    [Fact]
    public async Task SuiteQl_InLikeBetweenAndDeletedRecord_FilterAsOracleDoes()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var acme = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Acme Tools" });
        var beta = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Beta Supply" });
        var gamma = sandbox.SeedCustomer(new JsonObject { ["companyName"] = "Gamma Tools" });
        sandbox.SeedRecord("opportunity", new JsonObject { ["entity"] = new JsonObject { ["id"] = $"{acme}" }, ["title"] = "Small", ["projectedTotal"] = 500 });
        sandbox.SeedRecord("opportunity", new JsonObject { ["entity"] = new JsonObject { ["id"] = $"{beta}" }, ["title"] = "Large", ["projectedTotal"] = 50000 });
        Assert.True(sandbox.DeleteRecord("customer", gamma));
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        async Task<List<string>> ColumnAsync(string q, string column)
        {
            var request = Json(Method.Post, "services/rest/query/v1/suiteql", new JsonObject { ["q"] = q });
            request.AddHeader("Prefer", "transient");
            var response = await client.ExecuteAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, response.Content);
            return [.. JsonNode.Parse(response.Content!)!["items"]!.AsArray().Select(i => i![column]!.GetValue<string>())];
        }

        Assert.Equal(["Acme Tools"], await ColumnAsync("SELECT companyname FROM customer WHERE companyname LIKE '%Tools' ORDER BY id", "companyname"));
        Assert.Equal(["Beta Supply"], await ColumnAsync($"SELECT companyname FROM customer WHERE id NOT IN ({acme}) ORDER BY id", "companyname"));
        Assert.Equal(["Small"], await ColumnAsync("SELECT title FROM opportunity WHERE projectedtotal BETWEEN 100 AND 1000", "title"));
        Assert.Equal(["Large"], await ColumnAsync($"SELECT title FROM opportunity WHERE entity IN ({beta}, 999)", "title"));
        Assert.Equal(["Large"], await ColumnAsync("SELECT title FROM transaction WHERE type = 'Opprtnty' AND projectedtotal > 1000", "title"));
        Assert.Equal([$"{gamma}"], await ColumnAsync("SELECT recordid FROM deletedrecord WHERE type = 'customer'", "recordid"));
        Assert.Equal(["Gamma Tools"], await ColumnAsync("SELECT name FROM deletedrecord", "name"));
    }

    [Fact]
    public async Task AddressBookLink_Followed_ReturnsTheLines()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var id = sandbox.SeedCustomer(new JsonObject
        {
            ["companyName"] = "Acme",
            ["addressBook"] = new JsonObject { ["items"] = new JsonArray(new JsonObject { ["label"] = "HQ", ["addressBookAddress"] = new JsonObject { ["city"] = "Oakland" } }) },
        });
        using var client = Client(sandbox, sandbox.Options.TokenSecret);

        var record = JsonNode.Parse((await client.ExecuteAsync(new RestRequest($"services/rest/record/v1/customer/{id}"))).Content!)!;
        var link = record["addressBook"]!["links"]![0]!["href"]!.GetValue<string>();
        var lines = await client.ExecuteAsync(new RestRequest(new Uri(link)));

        Assert.Equal(HttpStatusCode.OK, lines.StatusCode);
        Assert.Equal("Oakland", JsonNode.Parse(lines.Content!)!["items"]![0]!["addressBookAddress"]!["city"]!.GetValue<string>());
    }

    [Fact]
    public async Task LatencyHeader_NotANumber_Rejected400NamingHeader()
    {
        await using var sandbox = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var client = Client(sandbox, sandbox.Options.TokenSecret);
        var request = new RestRequest("services/rest/record/v1/customer");
        request.AddHeader("X-Sandbox-Latency-Ms", "soon");

        var response = await client.ExecuteAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("X-Sandbox-Latency-Ms", response.Content, StringComparison.Ordinal);
    }

    private static RestClient Client(NetSuiteSandbox sandbox, string tokenSecret)
    {
        var authenticator = OAuth1Authenticator.ForAccessToken(
            sandbox.Options.ConsumerKey, sandbox.Options.ConsumerSecret, sandbox.Options.TokenId, tokenSecret, OAuthSignatureMethod.HmacSha256);
        authenticator.Realm = sandbox.Options.AccountId;
        return new RestClient(new RestClientOptions(sandbox.BaseUrl) { Authenticator = authenticator });
    }

    private static RestRequest Json(Method method, string path, JsonObject body)
    {
        var request = new RestRequest(path, method);
        request.AddStringBody(body.ToJsonString(), DataFormat.Json);
        return request;
    }

    private static StringContent Body(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
