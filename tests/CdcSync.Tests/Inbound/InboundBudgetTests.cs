using CdcSync.Connectors;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.Salesforce;
using CdcSync.Inbound;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Connectors.Salesforce;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Inbound;

/// <summary>
/// Idle polling respects the org's API budget: the interval backs off while nothing changes and
/// never drops below what keeps a day of idle polls within the configured share of the daily
/// allowance Salesforce reports (<c>Sforce-Limit-Info</c>); activity resets it. Time is simulated.
/// </summary>
public sealed class InboundBudgetTests
{
    [Fact]
    public void NextIdleInterval_EmptyPolls_DoubleUpToTheMaximum_AndActivityResets()
    {
        var options = new InboundOptions { MaxIdleInterval = TimeSpan.FromSeconds(30) };
        var interval = TimeSpan.FromSeconds(2);
        var seen = new List<TimeSpan>();
        for (var i = 0; i < 6; i++)
        {
            interval = InboundPoller.NextIdleInterval(interval, active: false, TimeSpan.FromSeconds(2), options, budget: null);
            seen.Add(interval);
        }

        Assert.Equal([4, 8, 16, 30, 30, 30], seen.Select(s => s.TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(2), InboundPoller.NextIdleInterval(interval, active: true, TimeSpan.FromSeconds(2), options, budget: null));
    }

    [Fact]
    public void NextIdleInterval_SmallDailyAllowance_SpacesIdlePollsToStayWithinTheShare()
    {
        var options = new InboundOptions { MaxIdleInterval = TimeSpan.FromSeconds(30), IdleApiShare = 0.05 };

        // 15,000 calls a day, 5 % for idle polling = 750 calls; 3 calls a poll = 250 polls = one per 345.6 s.
        var interval = InboundPoller.NextIdleInterval(TimeSpan.FromSeconds(30), active: false, TimeSpan.FromSeconds(2), options, new ApiBudget(100, 15_000, 3));

        Assert.Equal(345.6, interval.TotalSeconds, precision: 1);
        Assert.True(86_400 / interval.TotalSeconds * 3 <= 15_000 * 0.05 + 0.001);
    }

    [Fact]
    public async Task Usage_FromTheLimitInfoHeaderAndFromLimits_MatchesTheOrgsAllowance()
    {
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 12_345 }, CancellationToken.None);
        var client = new SalesforceClient(
            new SalesforceOptions { LoginUrl = sandbox.BaseUrl, ClientId = SalesforceSandboxOptions.DefaultClientId, ClientSecret = SalesforceSandboxOptions.DefaultClientSecret },
            new HttpClient());
        Assert.Null(client.Usage);

        await client.RefreshUsageAsync(CancellationToken.None);

        Assert.Equal(12_345, client.Usage!.Value.Max);
        Assert.InRange(client.Usage.Value.Used, 1, sandbox.Options.ApiRequestCount);
    }

    [Fact]
    public async Task IdleWorker_SixSimulatedHours_SpendsAtMostItsShareOfTheDailyAllowance()
    {
        var hubConnection = await TestPostgres.CreateMigratedHubAsync();
        await using var hub = NpgsqlDataSource.Create(hubConnection);
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 20_000 }, CancellationToken.None);
        var options = new SalesforceOptions
        {
            LoginUrl = sandbox.BaseUrl,
            ClientId = SalesforceSandboxOptions.DefaultClientId,
            ClientSecret = SalesforceSandboxOptions.DefaultClientSecret,
            Objects = EndToEnd.ExampleConfig.SalesforceObjects(),
            Inbound = new InboundOptions { Enabled = true, MaxIdleInterval = TimeSpan.FromMinutes(1), IdleApiShare = 0.02 },
        };
        var client = new SalesforceClient(options, new HttpClient());
        var inbound = new SalesforceInboundConnector(client, hub);
        var time = new ManualTimeProvider();
        var poller = new InboundPoller(inbound, new HubOptions { ConnectionString = hubConnection, InboundPollInterval = TimeSpan.FromSeconds(1) }, time, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var run = poller.RunAsync(stop.Token);

        await NextWaitAsync(time, run);     // the first poll (token, describes, queries) is done
        var callsBefore = sandbox.Options.ApiRequestCount;
        var simulated = TimeSpan.Zero;
        var polls = 0;
        while (simulated < TimeSpan.FromHours(6))
        {
            simulated += time.AdvanceToNextTimer();
            await NextWaitAsync(time, run);
            polls++;
        }

        // 20,000 calls a day, 2 % = 400 a day for idle polling, 100 in six hours (plus the poll in flight).
        var calls = sandbox.Options.ApiRequestCount - callsBefore;
        Assert.InRange(calls, 1, 100 + options.Objects.Count);
        Assert.True(polls >= 10, $"only {polls} polls in six simulated hours");

        // A change: the next poll reads it, and the one after comes at the base interval again.
        sandbox.Insert("Account", new JsonObject { ["Name"] = "Woken Up Inc" });
        time.AdvanceToNextTimer();
        await NextWaitAsync(time, run);
        Assert.Equal(1L, await CountAsync(hub, "SELECT count(*) FROM sf_accounts WHERE name = 'Woken Up Inc'"));
        Assert.Equal(TimeSpan.FromSeconds(1), time.AdvanceToNextTimer());

        await stop.CancelAsync();
        await run;
    }

    /// <summary>Waits (in real time, bounded) until the poller has finished its poll and armed its next wait.</summary>
    private static async Task NextWaitAsync(ManualTimeProvider time, Task run)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (time.Waiting == 0)
        {
            if (run.IsCompleted)
            {
                await run;
                Assert.Fail("the poller stopped");
            }

            await Task.Delay(10, timeout.Token);
        }
    }

    private static async Task<long> CountAsync(NpgsqlDataSource hub, string sql)
    {
        await using var cmd = hub.CreateCommand(sql);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
