using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Conflicts;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Schema;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;
using Serilog;
using Serilog.Extensions.Logging;

namespace CdcSync.Cli.Commands;

/// <summary>
/// The newcomer's first run, the whole loop on embedded defaults: a throwaway hub, both API
/// sandboxes in this process, the worker running examples/salesforce-netsuite.json; Accounts
/// created in Salesforce reach NetSuite, a NetSuite edit reaches Salesforce, concurrent edits are
/// decided by the shipped policy (last write wins) and recorded. Every step prints its measured
/// latency. Everything it starts it stops, so it can run again at once.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var scripts = CliOptions.Scripts();
        var follow = new Option<bool>("--follow") { Description = "Keep the hub, sandboxes and worker running after the walkthrough, until Ctrl-C." };
        var accounts = CliOptions.AtLeast(new Option<int>("--accounts") { Description = "Accounts to create in Salesforce.", DefaultValueFactory = _ => 3 }, 1);
        var timeout = CliOptions.AtLeast(DurationOption.Create("--step-timeout", "How long a step may take before the demo gives up, e.g. 90s, 2m.", TimeSpan.FromSeconds(60)), TimeSpan.FromSeconds(1));
        var command = new Command("demo", "Two-way sync end to end on a throwaway hub with both API sandboxes: create, edit, a conflict decided by policy, the audit trail.")
        {
            db, scripts, follow, accounts, timeout,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            if (parse.GetValue(accounts) is < 1 or > 1000)
            {
                throw new OperatorException("--accounts must be between 1 and 1000.");
            }

            var root = ScriptSet.Locate(parse.GetValue(scripts));
            var given = parse.GetValue(db) ?? Environment.GetEnvironmentVariable("CDCSYNC_DB");
            await using var hub = await DemoHub.StartAsync(root, string.IsNullOrWhiteSpace(given) ? null : given, ct);
            var demo = new Demo(root, hub.ConnectionString, hub.IsThrowaway, parse.GetValue(timeout));
            await demo.RunAsync(parse.GetValue(accounts), parse.GetValue(follow), ct);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The walkthrough itself; owns the sandboxes and the worker.</summary>
    private sealed class Demo(string root, string hubConnectionString, bool showConnectionString, TimeSpan stepTimeout)
    {
        private readonly TimeProvider _time = TimeProvider.System;
        private int _step;

        public async Task RunAsync(int accountCount, bool follow, CancellationToken ct)
        {
            Step($"hub {HubConnection.Describe(hubConnectionString)}");
            await MigrateCommand.PrepareHubAsync(hubConnectionString, "CDCSYNC_DB", ct);
            var migrated = await new HubMigrator(hubConnectionString, ScriptSet.Load(root)).MigrateAsync(ct);
            if (!migrated.Succeeded)
            {
                throw new OperatorException(migrated.Error ?? "migration failed");
            }

            Detail($"schema and transforms deployed ({migrated.Applied.Count} scripts)");

            await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), ct);
            await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), ct);
            Step($"sandboxes: Salesforce {salesforce.BaseUrl}, NetSuite {netsuite.BaseUrl}");

            await using var hub = NpgsqlDataSource.Create(hubConnectionString);
            using var logger = new LoggerConfiguration()
                .MinimumLevel.Warning()
                .WriteTo.Console(outputTemplate: "   [{Level:u3}] {Message:lj}{NewLine}", standardErrorFromLevel: Serilog.Events.LogEventLevel.Verbose)
                .CreateLogger();
            using var loggers = new SerilogLoggerFactory(logger);
            var options = Options(salesforce, netsuite);
            var worker = new Worker(options, hub, loggers);
            try
            {
                var started = _time.GetTimestamp();
                worker.Start();
                // Creating the slot waits for every open transaction on the server (a shared CDCSYNC_DB
                // may be busy): that step gets longer than the others, and says what it waits for.
                await WaitAsync("the worker to start streaming", () => Task.FromResult(worker.Running), worker, ct, TimeSpan.FromMinutes(3));
                Step($"worker running examples/salesforce-netsuite.json (slot {options.Hub.Slot}, policy last_write_wins)", started);

                // Create Accounts in Salesforce; each must appear in NetSuite and be linked back.
                var created = new List<(string AccountId, long InternalId, string Name)>();
                Step($"creating {accountCount} Account(s) in Salesforce");
                for (var i = 1; i <= accountCount; i++)
                {
                    var name = $"Demo Company {i} {Guid.NewGuid().ToString("N")[..6]}";
                    var t = _time.GetTimestamp();
                    var accountId = salesforce.Insert("Account", new JsonObject
                    {
                        ["Name"] = name, ["Phone"] = $"(415) 555-01{i % 100:00}", ["BillingCity"] = "San Francisco", ["BillingCountry"] = "United States",
                    });
                    long internalId = 0;
                    await WaitAsync($"{name} in NetSuite", async () =>
                    {
                        var hubId = await ScalarAsync<Guid?>(hub, "SELECT hub_id FROM sf_accounts WHERE id = @accountId", new { accountId }, ct);
                        internalId = hubId is null ? 0 : netsuite.FindByExternalId("sf-" + hubId) ?? 0;
                        return internalId != 0;
                    }, worker, ct);
                    var arrived = _time.GetElapsedTime(t);
                    var nsId = internalId.ToString(CultureInfo.InvariantCulture);
                    await WaitAsync($"NetSuite's id back on {accountId}", () =>
                        Task.FromResult(salesforce.Get(accountId)?["NetSuite_Id__c"]?.ToString() == nsId), worker, ct);
                    Detail($"Account {accountId} -> NetSuite customer {nsId} in {Seconds(arrived)}; NetSuite_Id__c back in Salesforce after {Seconds(_time.GetElapsedTime(t))}");
                    created.Add((accountId, internalId, name));
                }

                // An edit in NetSuite follows in Salesforce.
                var (account, customer, accountName) = created[0];
                var edited = _time.GetTimestamp();
                netsuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550142" });
                Step($"NetSuite: phone of customer {customer} ({accountName}) set to 4155550142");
                await WaitAsync("the phone in Salesforce", () => Task.FromResult(Digits(salesforce.Get(account)?["Phone"]) == "4155550142"), worker, ct);
                Detail($"Salesforce Account {account} Phone = {salesforce.Get(account)?["Phone"]} after {Seconds(_time.GetElapsedTime(edited))}");

                // Concurrent edits of one field: both made while the worker is paused (as during
                // a network outage), NetSuite's a second later, so last write wins must pick it
                // whichever system the worker happens to read first.
                Step("conflicting edits of the same phone while the worker is paused");
                await worker.StopAsync();
                salesforce.Update(account, new JsonObject { ["Phone"] = "(415) 555-0177" });
                Detail("Salesforce: Phone = (415) 555-0177");
                await Task.Delay(TimeSpan.FromSeconds(1.2), _time, ct);   // NetSuite stamps whole seconds
                netsuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550188" });
                Detail("NetSuite:   phone = 4155550188 (later)");
                var resumed = _time.GetTimestamp();
                // Read both systems once, as the worker's pollers do, before writing resumes: the
                // hub sees both edits and the policy decides. (A worker that writes one edit to
                // the other system before reading that system's own edit overwrites it there
                // unseen; see docs/CONFLICTS.md, "What is detected".)
                await CatchUpAsync(options, hub, loggers, ct);
                Detail($"both systems read once (as the worker's pollers do) in {Seconds(_time.GetElapsedTime(resumed))}; worker resumed");
                worker.Start();
                ConflictRecord? conflict = null;
                var conflicts = new ConflictService(hub);
                await WaitAsync("both systems to agree on the phone", async () =>
                {
                    conflict = (await conflicts.ListAsync(all: true, recordKey: null, limit: 10, ct)).FirstOrDefault(c => c.Field == "phone");
                    return Digits(salesforce.Get(account)?["Phone"]) == Digits(netsuite.GetCustomer(customer)?["phone"]);
                }, worker, ct);
                var agreed = Digits(netsuite.GetCustomer(customer)?["phone"]);
                Step($"worker resumed: both systems hold {agreed} after {Seconds(_time.GetElapsedTime(resumed))}", null);
                if (conflict is null)
                {
                    Detail("no conflict was recorded: the worker read one edit and wrote it before it read the other one (see docs/CONFLICTS.md, 'What is detected')");
                }
                else
                {
                    Detail($"conflict {conflict.Id}: {conflict.Object}.{conflict.Field}, policy {conflict.Policy}: {conflict.Decision}");
                    Detail($"  base {conflict.BaseValue}; hub {conflict.HubValue} from {conflict.HubSystem} at {Stamp(conflict.HubModifiedAt)}; incoming {conflict.IncomingValue} from {conflict.IncomingSystem} at {Stamp(conflict.IncomingModifiedAt)}");
                    Detail($"  with --follow the hub stays up: cdcsync conflicts show {conflict.Id} --db <hub>");
                }

                var audit = await new Audit.AuditService(hub).HistoryAsync(account, 200, ct);
                Step($"audit trail of {account}: {audit.Entries.Count} applied change(s) across {audit.Identities.Count} linked record(s)");
                foreach (var e in audit.Entries.TakeLast(6))
                {
                    Detail($"{e.AppliedAt.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {e.SourceSystem} -> {e.TargetSystem} {e.Object} {e.Operation} {e.Changes}");
                }

                if (follow)
                {
                    Console.WriteLine();
                    // The connection string only for the throwaway cluster, whose password is the
                    // fixed 'cdcsync'; a hub the user gave is described without its password.
                    Console.WriteLine($"Following: hub {(showConnectionString ? hubConnectionString : HubConnection.Describe(hubConnectionString) + " (your CDCSYNC_DB credentials)")}");
                    Console.WriteLine($"  Salesforce sandbox {salesforce.BaseUrl} (client id {SalesforceSandboxOptions.DefaultClientId}), NetSuite sandbox {netsuite.BaseUrl}");
                    Console.WriteLine("  Ctrl-C stops everything the demo started.");
                    // The embedded Salesforce sandbox's web host registers its own SIGINT/SIGTERM
                    // handling, which keeps the command line's cancellation from ending the wait:
                    // listen for the signals here as well.
                    using var stopped = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopped.Cancel(); });
                    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopped.Cancel(); });
                    await Task.Delay(Timeout.InfiniteTimeSpan, _time, stopped.Token).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                    Console.WriteLine("stopping...");
                }
            }
            finally
            {
                await worker.StopAsync();
            }

            Console.WriteLine();
            Console.WriteLine("Done; the demo stopped everything it started. Next: ./cdcsync --help, docs/CONFLICTS.md, docs/TRANSFORMS.md.");
        }

        /// <summary>One poll of every inbound connector, the way <c>InboundPoller</c> applies it (page, then cursor, in one hub transaction).</summary>
        private static async Task CatchUpAsync(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers, CancellationToken ct)
        {
            var writer = new StagingWriter(hub);
            foreach (var name in options.Connectors.Keys)
            {
                if (ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hub, loggers) is not { } inbound)
                {
                    continue;
                }

                InboundPage page;
                do
                {
                    page = await inbound.ReadChangesAsync(await writer.ReadCursorAsync(inbound.Name, ct), ct);
                    await writer.ApplyInboundAsync(inbound.Name, page.Records, page.NextCursor, ct);
                }
                while (page.HasMore);

                (inbound as IDisposable)?.Dispose();
            }
        }

        /// <summary>examples/salesforce-netsuite.json against these sandboxes, polling fast enough for a demo.</summary>
        private CdcSyncOptions Options(SalesforceSandbox salesforce, NetSuiteSandbox netsuite)
        {
            // The shipped config reads its hub and credentials from the environment (${...}).
            CdcSync.Sandboxes.ExampleEnvironment.Apply(hubConnectionString, salesforce, netsuite);

            var example = Path.Combine(root, "examples", "salesforce-netsuite.json");
            var overrides = new Dictionary<string, string?>
            {
                ["Hub:Slot"] = "cdcsync_demo",
                ["Hub:Publication"] = "cdcsync_demo",
                ["Hub:InboundPollInterval"] = "00:00:00.500",
                ["Hub:StatusInterval"] = "00:00:00.200",
                ["Hub:HeartbeatInterval"] = "00:00:01",
                ["Hub:MaxRestartDelay"] = "00:00:02",
                ["Connectors:salesforce:Inbound:MaxIdleInterval"] = "00:00:01",
                ["Connectors:netsuite:Inbound:MaxIdleInterval"] = "00:00:01",
            };
            return ConnectorConfig.Bind(new ConfigurationBuilder()
                .AddConfiguration(ConfigLoader.Build(example))
                .AddInMemoryCollection(overrides)
                .Build());
        }

        private async Task WaitAsync(string what, Func<Task<bool>> condition, Worker worker, CancellationToken ct, TimeSpan? atLeast = null)
        {
            var start = _time.GetTimestamp();
            var limit = atLeast is { } floor && floor > stepTimeout ? floor : stepTimeout;
            while (!await condition())
            {
                if (_time.GetElapsedTime(start) > limit)
                {
                    throw new OperatorException($"demo: timed out after {limit.TotalSeconds:0} s waiting for {what} (worker: {worker.Describe()}); the worker's warnings are above.");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, ct);
            }
        }

        private void Step(string text, long? since = null) =>
            Console.WriteLine($"{++_step}. {text}" + (since is { } t ? $" ({Seconds(_time.GetElapsedTime(t))})" : ""));

        private static void Detail(string text) => Console.WriteLine("   " + text);

        private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";

        private static string Stamp(DateTime? t) => t?.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) ?? "unknown";

        private static string Digits(JsonNode? phone) => new((phone?.ToString() ?? "").Where(char.IsAsciiDigit).ToArray());

        private static async Task<T?> ScalarAsync<T>(NpgsqlDataSource source, string sql, object? parameters, CancellationToken ct)
        {
            await using var conn = await source.OpenConnectionAsync(ct);
            return await conn.ExecuteScalarAsync<T>(new CommandDefinition(sql, parameters, cancellationToken: ct));
        }
    }

    /// <summary>The pipeline in this process; stopping and starting it again resumes from the slot.</summary>
    private sealed class Worker(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        private PipelineRunner? _runner;
        private CancellationTokenSource? _stop;
        private Task? _run;

        public bool Running => _runner?.Health == PipelineHealth.Running;

        public string Describe() => _run is { IsFaulted: true } ? "failed: " + _run.Exception!.GetBaseException().Message : $"{_runner?.Health} {_runner?.Stage} {_runner?.LastError}";

        public void Start()
        {
            _stop = new CancellationTokenSource();
            _runner = new PipelineRunner(
                options,
                name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hub, loggers),
                loggers,
                name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hub, loggers));
            var token = _stop.Token;
            _run = Task.Run(() => _runner.RunAsync(token), CancellationToken.None);
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

    /// <summary>
    /// The demo's hub: a fresh database on the server the user gave (dropped afterwards), or a
    /// throwaway PostgreSQL cluster in a temp folder (stopped and deleted afterwards). Never the
    /// leftovers of an earlier run: the sandboxes hand out the same Ids every time.
    /// </summary>
    private sealed class DemoHub : IAsyncDisposable
    {
        private readonly string? _clusterDir;
        private readonly string? _adminConnectionString;
        private readonly string _database;
        private readonly string _root;

        private DemoHub(string root, string connectionString, string database, string? clusterDir, string? adminConnectionString)
        {
            _root = root;
            ConnectionString = connectionString;
            _database = database;
            _clusterDir = clusterDir;
            _adminConnectionString = adminConnectionString;
        }

        public string ConnectionString { get; }

        /// <summary>A cluster the demo started itself (fixed credentials), not the user's server.</summary>
        public bool IsThrowaway => _clusterDir is not null;

        public static async Task<DemoHub> StartAsync(string root, string? given, CancellationToken ct)
        {
            if (given is not null)
            {
                var admin = HubConnection.Parse(given, "CDCSYNC_DB").ConnectionString;
                var database = "cdcsync_demo_" + TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
                await using (var conn = await HubConnection.OpenAsync(admin, "CDCSYNC_DB", ct))
                {
                    try
                    {
                        await conn.ExecuteAsync(new CommandDefinition($"CREATE DATABASE {HubSql.Quote(database)}", commandTimeout: 180, cancellationToken: ct));
                    }
                    catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                    {
                        throw new OperatorException($"the demo creates a fresh database next to the hub you gave and may not ({e.MessageText}); grant CREATEDB to the user, or unset CDCSYNC_DB to let the demo start its own PostgreSQL.");
                    }
                }

                Console.WriteLine($"0. fresh database {database} on {HubConnection.Describe(admin)} (dropped at the end)");
                return new DemoHub(root, new NpgsqlConnectionStringBuilder(admin) { Database = database }.ConnectionString, database, null, admin);
            }

            var script = Path.Combine(root, "scripts", "devdb.sh");
            if (!File.Exists(script))
            {
                throw new OperatorException("CDCSYNC_DB is not set and scripts/devdb.sh is not here to start a local hub; run the demo from the repository or set CDCSYNC_DB.");
            }

            var dir = Path.Combine(Path.GetTempPath(), "cdcsync-demo-" + Guid.NewGuid().ToString("N")[..12]);
            Console.WriteLine($"0. starting a throwaway PostgreSQL in {dir} (stopped and deleted at the end)...");
            var (code, output) = await DevDbAsync(script, "start", dir, ct);
            var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("export CDCSYNC_DB=", StringComparison.Ordinal));
            if (code != 0 || line is null)
            {
                await DevDbAsync(script, "stop", dir, CancellationToken.None);
                throw new OperatorException("scripts/devdb.sh could not start a local PostgreSQL (see its message above); install PostgreSQL server binaries or set CDCSYNC_DB.");
            }

            return new DemoHub(root, line["export CDCSYNC_DB=".Length..].Trim().Trim('\''), "cdcsync", dir, null);
        }

        public async ValueTask DisposeAsync()
        {
            NpgsqlConnection.ClearAllPools();
            if (_clusterDir is not null)
            {
                await DevDbAsync(Path.Combine(_root, "scripts", "devdb.sh"), "stop", _clusterDir, CancellationToken.None);
                return;
            }

            await using var conn = new NpgsqlConnection(_adminConnectionString);
            await conn.OpenAsync();
            await conn.ExecuteAsync(new CommandDefinition(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = @database AND NOT active", new { database = _database }));

            // DROP DATABASE waits for a checkpoint: over 30 s (the default command timeout) on a busy server.
            await conn.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {HubSql.Quote(_database)} WITH (FORCE)", commandTimeout: 180));
        }

        private static async Task<(int Code, string Output)> DevDbAsync(string script, string verb, string dir, CancellationToken ct)
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", [script, verb, dir]) { RedirectStandardOutput = true })!;
            var output = await process.StandardOutput.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            return (process.ExitCode, output);
        }
    }
}
