using CdcSync.Inbound;
using CdcSync.Tests.Pipeline;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Conflicts;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.EndToEnd;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// Concurrent edits over the sandboxes with the real connectors and worker: a linked Account and
/// customer, the same phone edited in both systems while the worker is stopped, NetSuite's edit a
/// second later; both systems are read once (what the pollers do first) and the worker resumes.
/// Each policy's decision must end in both systems and in cdc.conflicts.
/// </summary>
public sealed class ConflictEndToEndTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly CdcSync.Tests.Connectors.Salesforce.Logs _logs = new();

    [Theory]
    [InlineData("last_write_wins", null, "4155550188", "netsuite")]
    [InlineData("source_priority", "salesforce", "4155550177", "salesforce")]
    [InlineData("custom", "public.keep_smaller", "4155550177", "salesforce")]
    public async Task ConcurrentEdits_AreDecidedByThePolicy_InBothSystems_AndRecorded(string policy, string? setting, string winner, string winningSystem)
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(nameof(ConcurrentEdits_AreDecidedByThePolicy_InBothSystems_AndRecorded) + policy);
        await using var source = NpgsqlDataSource.Create(hub);
        await ExecuteAsync(source,
            """
            CREATE FUNCTION public.keep_smaller(base jsonb, hub jsonb, incoming jsonb, hub_at timestamptz, incoming_at timestamptz)
            RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
                SELECT CASE WHEN regexp_replace(hub #>> '{}', '\D', '', 'g') <= regexp_replace(incoming #>> '{}', '\D', '', 'g') THEN hub ELSE incoming END
            $$
            """);
        await ExecuteAsync(source,
            """
            INSERT INTO cdc.conflict_policies (object, field, policy, priority_system, custom_function)
            SELECT o, 'phone', $1, CASE WHEN $1 = 'source_priority' THEN $2 END, CASE WHEN $1 = 'custom' THEN $2::regproc END
              FROM unnest(ARRAY['sf_accounts', 'ns_customers']) o
            ON CONFLICT (object, field) DO UPDATE SET policy = EXCLUDED.policy, priority_system = EXCLUDED.priority_system, custom_function = EXCLUDED.custom_function
            """, policy, (object?)setting ?? DBNull.Value);

        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var options = Options(hub, salesforce, netsuite, "e2e_conflict_" + policy);
        var worker = new Worker(options, source, _logs.Factory);
        try
        {
            await worker.StartAsync();
            var account = salesforce.Insert("Account", new JsonObject { ["Name"] = "Conflict Co", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Oakland" });
            long customer = 0;
            await WaitAsync("the customer in NetSuite, linked back", async () =>
            {
                var hubId = await ScalarAsync<Guid?>(source, "SELECT hub_id FROM sf_accounts WHERE id = $1", account);
                customer = hubId is null ? 0 : netsuite.FindByExternalId("sf-" + hubId) ?? 0;
                return customer != 0 && salesforce.Get(account)?["NetSuite_Id__c"]?.ToString() == customer.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }, worker);
            await Task.Delay(TimeSpan.FromSeconds(2));        // echoes settle

            await worker.StopAsync();
            var salesforceWrites = salesforce.Stats.Writes;
            salesforce.Update(account, new JsonObject { ["Phone"] = "(415) 555-0177", ["Website"] = "conflict.example" });
            await Task.Delay(TimeSpan.FromSeconds(1.2));      // NetSuite stamps whole seconds
            netsuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550188" });

            await CatchUpAsync(options, source);
            await worker.StartAsync();
            await WaitAsync("both systems to hold the decision", () => Task.FromResult(
                Digits(salesforce.Get(account)?["Phone"]) == winner && Digits(netsuite.GetCustomer(customer)?["phone"]) == winner), worker);
            await Task.Delay(TimeSpan.FromSeconds(3));        // nothing flips afterwards
            Assert.Equal(winner, Digits(salesforce.Get(account)?["Phone"]));
            Assert.Equal(winner, Digits(netsuite.GetCustomer(customer)?["phone"]));
            Assert.Equal("https://conflict.example", netsuite.GetCustomer(customer)?["url"]?.ToString());   // the unconflicted edit flows

            var conflict = Assert.Single(await new ConflictService(source).ListAsync(true, null, 10, CancellationToken.None));
            Assert.Equal((policy, "phone", "resolved"), (conflict.Policy, conflict.Field, conflict.Status));
            Assert.EndsWith(winningSystem, conflict.Decision);   // "took x" or "kept x", depending on which system was read first
            Assert.Equal(winner, Digits(System.Text.Json.Nodes.JsonNode.Parse(conflict.DecidedValue!)));
            Assert.NotNull(conflict.HubModifiedAt);
            Assert.NotNull(conflict.IncomingModifiedAt);
            Assert.True(salesforce.Stats.Writes - salesforceWrites <= 4, $"Salesforce writes after the edits: {salesforce.Stats.Writes - salesforceWrites}");
        }
        finally
        {
            await worker.StopAsync();
        }
    }

    [Theory]
    [InlineData("netsuite", "4155550188")]
    [InlineData("salesforce", "4155550177")]
    public async Task ManualReview_HoldsTheField_UntilResolved_ThenBothSystemsGetTheDecision(string take, string decided)
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(nameof(ManualReview_HoldsTheField_UntilResolved_ThenBothSystemsGetTheDecision) + take);
        await using var source = NpgsqlDataSource.Create(hub);
        await ExecuteAsync(source, "UPDATE cdc.conflict_policies SET policy = 'manual' WHERE field = '*'");
        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var options = Options(hub, salesforce, netsuite, "e2e_conflict_manual_" + take);
        var worker = new Worker(options, source, _logs.Factory);
        try
        {
            await worker.StartAsync();
            var account = salesforce.Insert("Account", new JsonObject { ["Name"] = "Manual Co", ["Phone"] = "(415) 555-0100" });
            long customer = 0;
            await WaitAsync("the customer in NetSuite, linked back", async () =>
            {
                var hubId = await ScalarAsync<Guid?>(source, "SELECT hub_id FROM sf_accounts WHERE id = $1", account);
                customer = hubId is null ? 0 : netsuite.FindByExternalId("sf-" + hubId) ?? 0;
                return customer != 0 && salesforce.Get(account)?["NetSuite_Id__c"] is not null;
            }, worker);
            await Task.Delay(TimeSpan.FromSeconds(2));

            await worker.StopAsync();
            salesforce.Update(account, new JsonObject { ["Phone"] = "(415) 555-0177" });
            await Task.Delay(TimeSpan.FromSeconds(1.2));
            netsuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550188", ["companyName"] = "Manual Company" });
            await CatchUpAsync(options, source);
            await worker.StartAsync();

            var service = new ConflictService(source);
            await WaitAsync("an open conflict", async () => (await service.ListAsync(false, null, 10, CancellationToken.None)).Count == 1, worker);
            await WaitAsync("the name to flow", () => Task.FromResult(salesforce.Get(account)?["Name"]?.ToString() == "Manual Company"), worker);
            await Task.Delay(TimeSpan.FromSeconds(2));
            // Held: Salesforce's edit is not applied while the conflict is open; the hub keeps
            // NetSuite's value (already queued for Salesforce when the conflict was detected).
            await WaitAsync("the hub's value in both systems", () => Task.FromResult(
                Digits(salesforce.Get(account)?["Phone"]) == "4155550188" && Digits(netsuite.GetCustomer(customer)?["phone"]) == "4155550188"), worker);
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal("4155550188", Digits(salesforce.Get(account)?["Phone"]));
            Assert.Equal("4155550188", Digits(netsuite.GetCustomer(customer)?["phone"]));
            Assert.Equal("4155550188", await ScalarAsync<string>(source, "SELECT phone FROM sf_accounts WHERE id = $1", account));

            var open = Assert.Single(await service.ListAsync(false, null, 10, CancellationToken.None));
            await service.ResolveTakingAsync(open.Id, take, "test", CancellationToken.None);
            await WaitAsync("both systems to hold the decision", () => Task.FromResult(
                Digits(salesforce.Get(account)?["Phone"]) == decided && Digits(netsuite.GetCustomer(customer)?["phone"]) == decided), worker);
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal(decided, Digits(salesforce.Get(account)?["Phone"]));
            Assert.Equal(decided, Digits(netsuite.GetCustomer(customer)?["phone"]));
        }
        finally
        {
            await worker.StopAsync();
        }
    }

    private static CdcSyncOptions Options(string hub, SalesforceSandbox salesforce, NetSuiteSandbox netsuite, string slot)
    {
        var settings = TwoWayRig.Settings(hub, slot, salesforce, netsuite);
        settings["Hub:InboundPollInterval"] = "00:00:00.300";
        settings["Connectors:salesforce:Inbound:MaxIdleInterval"] = "00:00:00.500";
        settings["Connectors:netsuite:Inbound:MaxIdleInterval"] = "00:00:00.500";
        return ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
    }

    /// <summary>One poll of each inbound connector, applied as the worker's pollers apply it.</summary>
    private async Task CatchUpAsync(CdcSyncOptions options, NpgsqlDataSource source)
    {
        var writer = new StagingWriter(source);
        foreach (var name in options.Connectors.Keys)
        {
            var inbound = ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], source, _logs.Factory)!;
            InboundPage page;
            do
            {
                page = await inbound.ReadChangesAsync(await writer.ReadCursorAsync(inbound.Name, CancellationToken.None), CancellationToken.None);
                await writer.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, CancellationToken.None);
            }
            while (page.HasMore);
        }
    }

    private static string Digits(JsonNode? phone) => new((phone?.ToString() ?? "").Where(char.IsAsciiDigit).ToArray());

    private async Task WaitAsync(string what, Func<Task<bool>> condition, Worker worker)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (!await condition())
        {
            if (cts.IsCancellationRequested)
            {
                var warnings = _logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).TakeLast(8);
                Assert.Fail($"timed out waiting for {what}; worker {worker.Describe()}\n{string.Join('\n', warnings)}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task ExecuteAsync(NpgsqlDataSource source, string sql, params object[] parameters)
    {
        await using var cmd = source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await cmd.ExecuteNonQueryAsync();
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

    private sealed class Worker(CdcSyncOptions options, NpgsqlDataSource source, Microsoft.Extensions.Logging.ILoggerFactory loggers)
    {
        private CancellationTokenSource? _stop;
        private Task? _run;
        private PipelineRunner? _runner;

        public string Describe() => $"{_runner?.Health} {_runner?.Stage} {_runner?.LastError}";

        /// <summary>Starts the pipeline and waits until it streams (creating the slot may wait for other suites' transactions).</summary>
        public async Task StartAsync()
        {
            Start();
            await TestPipeline.WaitUntilAsync(() => Task.FromResult(_runner!.Health == PipelineHealth.Running || _run!.IsCompleted), TestPipeline.StreamingTimeout);
            if (_run!.IsFaulted)
            {
                await _run;
            }
        }

        private void Start()
        {
            _stop = new CancellationTokenSource();
            _runner = new PipelineRunner(
                options,
                name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], source, loggers),
                loggers,
                name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], source, loggers));
            var token = _stop.Token;
            _run = Task.Run(() => _runner.RunAsync(token));
        }

        public async Task StopAsync()
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
            _stop = null;
            _run = null;
        }
    }
}
