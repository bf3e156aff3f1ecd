using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>
/// Drives the sandbox's Bulk API 2.0 query jobs with jsforce's <c>bulk2</c> API (tests/clients/jsforce/bulk2.mjs):
/// a query whose results span several pages (jsforce sends no maxRecords, so the sandbox's page size
/// is set small), queryAll with deleted records, CSV quoting, refused SOQL, abort, list and delete.
/// </summary>
public sealed class SalesforceBulkClientLibraryTests
{
    private const int Accounts = 230;
    private const int Deleted = 7;

    [Fact]
    public async Task Jsforce_Bulk2Query_ReadsEveryPageAndQueryAllSeesDeleted()
    {
        var client = Path.Combine(Repo.Root, "tests", "clients", "jsforce");
        await SalesforceClientLibraryTests.InstallAsync(client);
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { BulkResultsPageSize = 50 }, CancellationToken.None);
        var tag = "bulk2-" + Guid.NewGuid().ToString("N")[..8];
        var ids = new List<string>();
        for (var i = 0; i < Accounts; i++)
        {
            ids.Add(sandbox.Insert("Account", new JsonObject
            {
                ["Name"] = $"{tag} {i}",
                ["Phone"] = "+1 415 555 " + i.ToString("0000", System.Globalization.CultureInfo.InvariantCulture),
                ["AnnualRevenue"] = i * 1000.5,
                ["Description"] = i == 1 ? "Says \"hi\", twice,\nover two lines" : null,
            }));
        }

        foreach (var id in ids.TakeLast(Deleted))
        {
            sandbox.Delete(id);
        }

        var output = await SalesforceClientLibraryTests.RunAsync("node", ["bulk2.mjs"], client, new()
        {
            ["SF_URL"] = sandbox.BaseUrl.ToString().TrimEnd('/'),
            ["SF_CLIENT_ID"] = sandbox.Options.ClientId,
            ["SF_CLIENT_SECRET"] = sandbox.Options.ClientSecret,
            ["BULK_TAG"] = tag,
            ["BULK_ACCOUNTS"] = Accounts.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BULK_DELETED"] = Deleted.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        var calls = JsonNode.Parse(output.Trim().Split('\n')[^1])!["calls"]!.AsArray();
        var failed = calls.Where(c => !c!["ok"]!.GetValue<bool>()).Select(c => $"{c!["call"]}: {c["error"]}").ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {calls.Count} jsforce calls failed:\n" + string.Join("\n", failed));
        Assert.Equal(8, calls.Count);

        // One page for the single-row query, 223 live accounts in pages of 40 (6), 230 in pages of 100 (3), 2 single pages.
        Assert.Equal(12, sandbox.Stats.RequestsTo("GET /services/data/v{version}/jobs/query/{id}/results"));
    }
}
