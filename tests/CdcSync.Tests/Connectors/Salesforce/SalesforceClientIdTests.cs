using System.Net.Http.Headers;
using CdcSync.Connectors.Salesforce;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Connectors.Salesforce;

public sealed class SalesforceClientIdTests
{
    [Fact]
    public async Task EveryCall_CarriesTheHubsClientId_UniquePerHubAndStableAcrossRestarts()
    {
        await using var hub = await SalesforceTestHub.CreateAsync(nameof(EveryCall_CarriesTheHubsClientId_UniquePerHubAndStableAcrossRestarts));
        await using var other = NpgsqlDataSource.Create(await TestPostgres.CreateMigratedHubAsync(nameof(EveryCall_CarriesTheHubsClientId_UniquePerHubAndStableAcrossRestarts), "_other"));
        var seen = new List<HttpRequestHeaders>();
        var client = new SalesforceClient(hub.Options(), new HttpClient(new Recorder(seen, new SocketsHttpHandler())), clientId: new SalesforceClientId(hub.DataSource));

        await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/query?q={Uri.EscapeDataString("SELECT Id FROM Account")}", null, null, CancellationToken.None);
        await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/limits", null, null, CancellationToken.None);

        var id = await new SalesforceClientId(hub.DataSource).GetAsync(CancellationToken.None);
        Assert.Matches("^[A-Za-z0-9]{20,40}$", id);
        var apiCalls = seen.Where(h => h.Authorization is not null).ToList();
        Assert.Equal(2, apiCalls.Count);
        Assert.All(apiCalls, h => Assert.Equal($"client={id}", Assert.Single(h.GetValues("Sforce-Call-Options"))));
        Assert.NotEqual(id, await new SalesforceClientId(other).GetAsync(CancellationToken.None));
    }

    private sealed class Recorder(List<HttpRequestHeaders> seen, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (seen)
            {
                seen.Add(request.Headers);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
