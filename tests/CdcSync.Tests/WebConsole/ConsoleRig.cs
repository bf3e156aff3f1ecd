using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Inbound;
using CdcSync.Operations;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Connectors.Salesforce;
using CdcSync.Tests.EndToEnd;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using CdcSync.WebConsole;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Tests.WebConsole;

/// <summary>
/// The two-way product with its console, for the browser tests: a migrated hub with the phone
/// field under manual review, both sandboxes, the real worker (pipeline, resyncs, status history)
/// that can be stopped and started, the console served on a free port, three users (operator,
/// reviewer, viewer), one browser, and one Account linked to its NetSuite customer.
/// </summary>
public sealed class ConsoleRig : IAsyncLifetime
{
    public const string Password = "console-test-password";
    public const string OperatorName = "olga";
    public const string ReviewerName = "rita";
    public const string ViewerName = "vic";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private CancellationTokenSource? _stop;
    private Task? _run;
    private Worker? _worker;
    private ConsoleServer? _server;

    public NpgsqlDataSource Hub { get; private set; } = null!;

    public SalesforceSandbox Salesforce { get; private set; } = null!;

    public NetSuiteSandbox NetSuite { get; private set; } = null!;

    internal CdcSyncOptions Options { get; private set; } = null!;

    public ConsoleBrowser Browser { get; private set; } = null!;

    public Logs Logs { get; } = new();

    /// <summary>The Account in Salesforce and its customer in NetSuite, linked.</summary>
    public string Account { get; private set; } = "";

    public long Customer { get; private set; }

    public Guid AccountHubId { get; private set; }

    public async Task InitializeAsync()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(nameof(ConsoleRig));
        Hub = NpgsqlDataSource.Create(hub);
        await ExecuteAsync(
            """
            INSERT INTO cdc.conflict_policies (object, field, policy) VALUES ('sf_accounts', 'phone', 'manual'), ('ns_customers', 'phone', 'manual')
            ON CONFLICT (object, field) DO UPDATE SET policy = EXCLUDED.policy
            """);
        Salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 1_000_000_000 }, CancellationToken.None);
        NetSuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var settings = TwoWayRig.Settings(hub, "console_browser", Salesforce, NetSuite);
        settings["Hub:InboundPollInterval"] = "00:00:00.300";
        settings["Hub:MetricsUrl"] = "";
        settings["Console:Url"] = "http://127.0.0.1:0";
        // Each test signs in; the limit itself is ConsoleAccessTests'.
        settings["Console:SignInAttemptsPerMinute"] = "100";
        Options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

        var users = new ConsoleUsers(Hub);
        await users.AddAsync(OperatorName, ConsoleRole.Operator, Password, CancellationToken.None);
        await users.AddAsync(ReviewerName, ConsoleRole.Reviewer, Password, CancellationToken.None);
        await users.AddAsync(ViewerName, ConsoleRole.Viewer, Password, CancellationToken.None);
        _server = await ConsoleServer.StartAsync(Options, Hub, Logs.Factory, CancellationToken.None);
        Browser = new ConsoleBrowser { BaseUrl = _server.Address };

        await StartWorkerAsync();
        Account = Salesforce.Insert("Account", new JsonObject { ["Name"] = "Console Co", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Oakland" });
        await WaitAsync("the customer in NetSuite, linked back", async () =>
        {
            AccountHubId = await ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", Account) ?? Guid.Empty;
            Customer = AccountHubId == Guid.Empty ? 0 : NetSuite.FindByExternalId("sf-" + AccountHubId) ?? 0;
            return Customer != 0 && Salesforce.Get(Account)?["NetSuite_Id__c"] is not null;
        });
        await QuietAsync();
    }

    public async Task StartWorkerAsync()
    {
        _stop = new CancellationTokenSource();
        var options = Options;
        var hub = Hub;
        _worker = new Worker(
            options,
            n => ConnectorRegistry.Default.CreateOutbound(n, options.Connectors[n], hub, Logs.Factory),
            n => ConnectorRegistry.Default.CreateInbound(n, options.Connectors[n], hub, Logs.Factory),
            Logs.Factory,
            hubSource: hub);
        var worker = _worker;
        var token = _stop.Token;
        _run = Task.Run(() => worker.RunAsync(token));
        await WaitAsync("the worker to stream", () => Task.FromResult(worker.State == WorkerState.Streaming && worker.Runner?.Health == PipelineHealth.Running), TestPipeline.StreamingTimeout);
    }

    public async Task StopWorkerAsync()
    {
        if (_stop is null || _run is null)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
        (_stop, _run) = (null, null);
    }

    /// <summary>One poll of each inbound connector, applied as the worker's pollers apply it (both systems' edits reach the hub in this order).</summary>
    public async Task CatchUpAsync()
    {
        var writer = new StagingWriter(Hub);
        foreach (var name in Options.Connectors.Keys)
        {
            var inbound = ConnectorRegistry.Default.CreateInbound(name, Options.Connectors[name], Hub, Logs.Factory)!;
            InboundPage page;
            do
            {
                page = await inbound.ReadChangesAsync(await writer.ReadCursorAsync(inbound.Name, CancellationToken.None), CancellationToken.None);
                await writer.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
            }
            while (page.HasMore);
        }
    }

    /// <summary>Until neither sandbox has taken a write for 2 s: every echo played out.</summary>
    public async Task QuietAsync()
    {
        var last = (Salesforce.Stats.Writes, NetSuite.Stats.Writes);
        var since = DateTime.UtcNow;
        using var cts = new CancellationTokenSource(Timeout);
        while (DateTime.UtcNow - since < TimeSpan.FromSeconds(2))
        {
            cts.Token.ThrowIfCancellationRequested();
            await Task.Delay(200);
            var now = (Salesforce.Stats.Writes, NetSuite.Stats.Writes);
            if (now != last)
            {
                (last, since) = (now, DateTime.UtcNow);
            }
        }
    }

    public async Task WaitAsync(string what, Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        while (!await condition())
        {
            if (_run is { IsFaulted: true })
            {
                await _run;
            }

            if (cts.IsCancellationRequested)
            {
                var warnings = Logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).TakeLast(8);
                Assert.Fail($"timed out waiting for {what}; worker {_worker?.State} {_worker?.Stage}\n{string.Join('\n', warnings)}");
            }

            await Task.Delay(100);
        }
    }

    public async Task ExecuteAsync(string sql, params object[] parameters)
    {
        await using var cmd = Hub.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T?> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var cmd = Hub.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    /// <summary>A dead letter of NetSuite's for the linked customer's hub row, its payload carrying a sensitive field.</summary>
    public async Task<long> AddDeadLetterAsync(string error)
    {
        var customerHubId = await ScalarAsync<Guid>("SELECT hub_id FROM ns_customers WHERE internalid = $1", Customer.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // At most one open dead letter per record: close an earlier test's first.
        await ExecuteAsync("UPDATE cdc.dead_letters SET status = 'discarded' WHERE status = 'open'");
        return await ScalarAsync<long>(
            """
            INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error)
            VALUES ('netsuite', 'ns_customers', $1, jsonb_build_object('operation', 'update', 'record', jsonb_build_object('companyName', 'Console Co', 'email', 'secret.person@example.com')), $2)
            RETURNING id
            """, customerHubId.ToString(), error);
    }

    public async Task DisposeAsync()
    {
        Browser?.Dispose();
        await StopWorkerAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        await Salesforce.DisposeAsync();
        await NetSuite.DisposeAsync();
        await Hub.DisposeAsync();
    }
}
