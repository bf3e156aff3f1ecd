using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Connectors.Salesforce;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// The whole product in one process: a migrated hub with its transforms, both sandboxes over
/// loopback HTTP, and a pipeline running the real Salesforce and NetSuite connectors both ways.
/// </summary>
public sealed class SalesforceToNetSuiteTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AccountCreatedInSalesforce_ArrivesInNetSuite_AndInternalIdComesBack()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();

        // The Salesforce sandbox logs every request it serves (ASP.NET Core hosting diagnostics): the
        // test counts the writes it received from those lines.
        var sandboxLogs = new Logs();
        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), sandboxLogs.Factory, CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hubSource = NpgsqlDataSource.Create(hub);

        var settings = new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Hub:Slot"] = "e2e_sf_ns",
            ["Hub:Publication"] = "e2e_sf_ns",
            ["Hub:HeartbeatInterval"] = "00:00:01",
            ["Hub:StatusInterval"] = "00:00:00.200",
            ["Hub:InboundPollInterval"] = "00:00:00.500",
            ["Hub:MaxRestartDelay"] = "00:00:02",
            ["Routes:public.sf_accounts:0"] = "salesforce",
            ["Routes:public.sf_contacts:0"] = "salesforce",
            ["Routes:public.ns_customers:0"] = "netsuite",

            ["Connectors:salesforce:Type"] = "salesforce",
            ["Connectors:salesforce:LoginUrl"] = salesforce.BaseUrl.ToString(),
            ["Connectors:salesforce:ClientId"] = SalesforceSandboxOptions.DefaultClientId,
            ["Connectors:salesforce:ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
            ["Connectors:salesforce:Inbound:Enabled"] = "true",

            ["Connectors:netsuite:Type"] = "netsuite",
            ["Connectors:netsuite:AccountId"] = NetSuiteSandboxOptions.DefaultAccountId,
            ["Connectors:netsuite:BaseUrl"] = netsuite.BaseUrl.ToString(),
            ["Connectors:netsuite:ConsumerKey"] = NetSuiteSandboxOptions.DefaultConsumerKey,
            ["Connectors:netsuite:ConsumerSecret"] = NetSuiteSandboxOptions.DefaultConsumerSecret,
            ["Connectors:netsuite:TokenId"] = NetSuiteSandboxOptions.DefaultTokenId,
            ["Connectors:netsuite:TokenSecret"] = NetSuiteSandboxOptions.DefaultTokenSecret,
            ["Connectors:netsuite:Inbound:Enabled"] = "true",
        };
        foreach (var (key, value) in ExampleConfig.MappingSettings())
        {
            settings[key] = value;
        }

        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        var pipelineLogs = new Logs();
        var runner = new PipelineRunner(
            options,
            name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, pipelineLogs.Factory),
            pipelineLogs.Factory,
            name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hubSource, pipelineLogs.Factory));

        using var stop = new CancellationTokenSource();
        var run = Task.Run(() => runner.RunAsync(stop.Token));
        try
        {
            await WaitUntilAsync("the pipeline to stream", () => Task.FromResult(runner.Health == PipelineHealth.Running || run.IsCompleted), run, runner, pipelineLogs, CdcSync.Tests.Pipeline.TestPipeline.StreamingTimeout);

            // A user creates an account and its contact in Salesforce.
            var accountId = salesforce.Insert("Account", new JsonObject { ["Name"] = "Globex Corporation", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Springfield", ["BillingCountry"] = "United States" });
            salesforce.Insert("Contact", new JsonObject { ["LastName"] = "Simpson", ["FirstName"] = "Homer", ["Email"] = "homer@globex.example", ["AccountId"] = accountId });

            Guid hubId = default;
            await WaitUntilAsync("the account in sf_accounts", async () =>
            {
                var found = await ScalarAsync<Guid?>(hubSource, "SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
                hubId = found ?? default;
                return found is not null;
            }, run, runner, pipelineLogs);

            var externalId = "sf-" + hubId;
            await WaitUntilAsync("the mapped row in ns_customers", async () =>
                await ScalarAsync<string>(hubSource, "SELECT companyname FROM ns_customers WHERE externalid = $1", externalId) == "Globex Corporation", run, runner, pipelineLogs);

            long internalId = 0;
            await WaitUntilAsync("the customer in the NetSuite sandbox", () =>
            {
                internalId = netsuite.FindByExternalId(externalId) ?? 0;
                return Task.FromResult(internalId != 0);
            }, run, runner, pipelineLogs);
            var customer = netsuite.GetCustomer(internalId)!;
            Assert.Equal("Globex Corporation", customer["companyName"]?.GetValue<string>());
            Assert.Equal(externalId, customer["externalId"]?.GetValue<string>());

            var internalIdText = internalId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WaitUntilAsync("the internal id in the hub", async () =>
                await ScalarAsync<string>(hubSource, "SELECT internalid FROM ns_customers WHERE externalid = $1", externalId) == internalIdText, run, runner, pipelineLogs);
            await WaitUntilAsync("the internal id in Salesforce's NetSuite_Id__c", () =>
                Task.FromResult(salesforce.Get(accountId)?["NetSuite_Id__c"]?.GetValue<string>() == internalIdText), run, runner, pipelineLogs);

            // Let every echo play out: inbound polls both systems every 0.5 s, the slot is acknowledged every 0.2 s.
            await Task.Delay(TimeSpan.FromSeconds(4));
            var accountStamp = salesforce.Get(accountId)!["SystemModstamp"]?.ToString();
            var customerModified = netsuite.GetCustomer(internalId)!["lastModifiedDate"]?.ToString();
            var writesBefore = SalesforceWrites(sandboxLogs);
            await Task.Delay(TimeSpan.FromSeconds(4));

            // Loop-freedom: nothing changes any more on either side.
            Assert.Equal(accountStamp, salesforce.Get(accountId)!["SystemModstamp"]?.ToString());
            Assert.Equal(customerModified, netsuite.GetCustomer(internalId)!["lastModifiedDate"]?.ToString());
            Assert.Equal(writesBefore, SalesforceWrites(sandboxLogs));

            // Salesforce got exactly one write request (the NetSuite-id link on the account, a composite
            // request of one conditional update); NetSuite holds one customer.
            var writes = SalesforceWrites(sandboxLogs);
            Assert.True(writes.Count == 1, "Salesforce write requests:\n" + string.Join('\n', writes));
            Assert.True(writes[0].Contains("/composite", StringComparison.Ordinal), writes[0]);
            Assert.Equal(1, salesforce.Stats.WritesOf("Account", accountId));
            Assert.Equal(1, netsuite.CustomerCount);
            Assert.Equal(1, await ScalarAsync<long>(hubSource, "SELECT count(*) FROM ns_customers"));
            Assert.Equal(1, await ScalarAsync<long>(hubSource, "SELECT count(*) FROM sf_accounts"));
            Assert.Equal(0, await ScalarAsync<long>(hubSource, "SELECT count(*) FROM cdc.dead_letters"));
            Assert.Single(salesforce.Records("Account"));
            Assert.Single(salesforce.Records("Contact"));
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await run;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>The write requests (POST, PATCH, DELETE on the data API) the Salesforce sandbox served, in order.</summary>
    private static List<string> SalesforceWrites(Logs logs) =>
        logs.Lines
            .Where(l => l.Contains("Request starting", StringComparison.Ordinal))
            .Where(l => l.Contains(" POST ", StringComparison.Ordinal) || l.Contains(" PATCH ", StringComparison.Ordinal) || l.Contains(" DELETE ", StringComparison.Ordinal))
            .Where(l => l.Contains("/services/data/", StringComparison.Ordinal))
            .ToList();

    private static async Task WaitUntilAsync(string what, Func<Task<bool>> condition, Task run, PipelineRunner runner, Logs logs, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        while (!await condition())
        {
            if (run.IsFaulted)
            {
                await run;
            }

            if (cts.IsCancellationRequested)
            {
                var errors = logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).TakeLast(10);
                Assert.Fail($"timed out waiting for {what}; pipeline {runner.Health} {runner.LastError}\n{string.Join('\n', errors)}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<T?> ScalarAsync<T>(NpgsqlDataSource source, string sql, params object[] parameters)
    {
        await using var cmd = source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }
}
