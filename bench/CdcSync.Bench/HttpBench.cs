using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Schema;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Bench;

internal sealed record HttpRepResult(
    string Connector,
    int Rep,
    int Records,
    int LatencyMs,
    double Seconds,
    double RecordsPerSecond,
    double LimitPerSecond,
    double ShareOfLimit,
    long ApiWrites,
    long Requests,
    double ApiMsPerWriteRequest = 0,
    double ShareOfApiPace = 0);

/// <summary>
/// Outbound HTTP connectors against the sandboxes with per-request latency injected
/// (<c>POST /_sandbox/faults {"latencyMs": L}</c>): N rows inserted into the connector's staging
/// table in one hub transaction, timed from that commit until the sandbox holds N records.
/// The theoretical limit is requests in flight × records per request / latency: NetSuite at its
/// concurrency limit (5 in flight, one record each), Salesforce with sObject Collections of 200,
/// one collection in flight (the connector sends a chunk's collections one after another).
/// </summary>
internal sealed class HttpBench(Settings settings)
{
    private const string Database = "cdcsync_bench_http";

    public async Task<List<HttpRepResult>> RunAsync()
    {
        var results = new List<HttpRepResult>();
        foreach (var connector in new[] { "netsuite", "salesforce" })
        {
            var records = connector == "netsuite" ? settings.NetSuiteRecords : settings.SalesforceRecords;
            if (records == 0)
            {
                continue; // --ns-records 0 or --sf-records 0 leaves that connector out
            }

            for (var rep = 1 - settings.Warmup; rep <= settings.Reps; rep++)
            {
                var label = rep <= 0 ? "warm-up" : $"repetition {rep}/{settings.Reps}";
                Console.WriteLine($"== http {connector}: {label}, {records} records, {settings.LatencyMs} ms per request");
                var result = await RepAsync(connector, rep, rep <= 0 ? Math.Max(1, records / 10) : records);
                Console.WriteLine($"   {JsonSerializer.Serialize(result)}");
                if (rep > 0)
                {
                    results.Add(result);
                }
            }
        }

        return results;
    }

    private async Task<HttpRepResult> RepAsync(string connector, int rep, int records)
    {
        var admin = Pg.WithDatabase(settings.HubConnectionString, "postgres");
        var slot = "bench_http";
        // A previous (interrupted) run may have left the slot with its walsender still attached.
        await Pg.ExecAsync(admin, $"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active");
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Pg.ExecAsync(admin, $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'");
                break;
            }
            catch (PostgresException e) when (e.SqlState == "55006" && attempt < 100)
            {
                await Task.Delay(100);
            }
        }

        await Pg.ExecAsync(admin, $"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await Pg.ExecAsync(admin, $"CREATE DATABASE {Database}");
        var hubCs = Pg.WithDatabase(settings.HubConnectionString, Database);
        var migration = await new HubMigrator(hubCs, ScriptSet.Load(ScriptSet.Locate(settings.Repo))).MigrateAsync(CancellationToken.None);
        if (!migration.Succeeded)
        {
            throw new InvalidOperationException($"cdcsync migrate failed: {migration.Error}");
        }

        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 100_000_000 }, CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        using var http = new HttpClient();
        var sandboxUrl = connector == "netsuite" ? netsuite.BaseUrl : salesforce.BaseUrl;
        using (var faults = await http.PostAsJsonAsync(new Uri(sandboxUrl, "_sandbox/faults"), new { latencyMs = settings.LatencyMs }))
        {
            faults.EnsureSuccessStatusCode();
        }

        var configPath = Path.Combine(Path.GetTempPath(), $"cdcsync-bench-http-{Environment.ProcessId}.json");
        await File.WriteAllTextAsync(configPath, Config(connector, hubCs, slot, salesforce.BaseUrl, netsuite.BaseUrl));
        var options = ConnectorConfig.Bind(ConfigLoader.Build(configPath));
        File.Delete(configPath);

        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true));
        await using var hubSource = NpgsqlDataSource.Create(hubCs);
        using var stop = new CancellationTokenSource();
        var runner = new PipelineRunner(options, name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, loggers), loggers);
        var run = Task.Run(() => runner.RunAsync(stop.Token));
        try
        {
            // The slot exists (and so captures the insert) once the runner is streaming.
            var waited = Stopwatch.StartNew();
            while (await Pg.ScalarAsync<long>(hubCs, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active") == 0)
            {
                if (run.IsCompleted || waited.Elapsed > TimeSpan.FromMinutes(2))
                {
                    await run;
                    throw new TimeoutException($"the worker did not start streaming: {runner.LastError}");
                }

                await Task.Delay(50);
            }

            var insert = connector == "netsuite"
                ? $"INSERT INTO ns_customers (externalid, companyname, phone) SELECT 'bench-' || g, 'Bench ' || g, '4155550' || g FROM generate_series(1, {records}) g"
                : $"INSERT INTO sf_accounts (name, phone) SELECT 'Bench ' || g, '4155550' || g FROM generate_series(1, {records}) g";
            await Pg.ExecAsync(hubCs, insert);
            var watch = Stopwatch.StartNew();
            Func<int> count = connector == "netsuite" ? () => netsuite.CustomerCount : () => salesforce.Records("Account").Count;
            var polls = 0;
            while (count() < records)
            {
                // A record the connector cannot write goes to the dead letters and would never arrive.
                if (run.IsCompleted)
                {
                    await run;
                    throw new InvalidOperationException($"the worker stopped: {runner.LastError}");
                }

                if (++polls % 100 == 0 && await Pg.ScalarAsync<long>(hubCs, "SELECT count(*) FROM cdc.dead_letters") is > 0 and var dead)
                {
                    throw new InvalidOperationException($"{connector}: {dead} dead letters, first: {await Pg.ScalarAsync<string>(hubCs, "SELECT error FROM cdc.dead_letters ORDER BY 1 LIMIT 1")}");
                }

                if (watch.Elapsed > TimeSpan.FromMinutes(30))
                {
                    throw new TimeoutException($"{connector}: {count()} of {records} records after 30 minutes; worker {runner.Health} {runner.LastError}");
                }

                await Task.Delay(10);
            }

            var seconds = watch.Elapsed.TotalSeconds;
            var stats = connector == "netsuite" ? netsuite.Stats : salesforce.Stats;
            var requests = stats.ToJson()["requestsPerEndpoint"]?.AsObject().Sum(e => (long)e.Value!) ?? 0;
            var limit = connector == "netsuite"
                ? 5 * 1000.0 / settings.LatencyMs
                : 200 * 1000.0 / settings.LatencyMs;
            var rate = records / seconds;

            // The API's own time per write request (the injected latency plus the sandbox's handling
            // of the records, on the same cores): the limit at that pace says how much of the gap
            // is the connector's.
            var writeEndpoint = connector == "netsuite" ? "PUT /services/rest/record/v1/{type}/{key}" : "PATCH /services/data/v{version}/composite/sobjects/{type}/{field}";
            var apiMs = stats.MeanMillisecondsIn(writeEndpoint);
            var pace = apiMs > 0 ? limit * settings.LatencyMs / apiMs : 0;
            return new HttpRepResult(connector, rep, records, settings.LatencyMs, seconds, rate, limit, rate / limit, stats.Writes, requests, apiMs, pace > 0 ? rate / pace : 0);
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

            NpgsqlConnection.ClearAllPools();
        }
    }

    private static string Config(string connector, string hub, string slot, Uri salesforce, Uri netsuite)
    {
        object connectorConfig = connector == "netsuite"
            ? new Dictionary<string, object>
            {
                ["Type"] = "netsuite",
                ["AccountId"] = NetSuiteSandboxOptions.DefaultAccountId,
                ["BaseUrl"] = netsuite.ToString(),
                ["ConsumerKey"] = NetSuiteSandboxOptions.DefaultConsumerKey,
                ["ConsumerSecret"] = NetSuiteSandboxOptions.DefaultConsumerSecret,
                ["TokenId"] = NetSuiteSandboxOptions.DefaultTokenId,
                ["TokenSecret"] = NetSuiteSandboxOptions.DefaultTokenSecret,
                ["Records"] = new[] { new Dictionary<string, object> { ["RecordType"] = "customer", ["Table"] = "ns_customers", ["SublistKeys"] = new Dictionary<string, string> { ["addressbook"] = "label" } } },
            }
            : new Dictionary<string, object>
            {
                ["Type"] = "salesforce",
                ["LoginUrl"] = salesforce.ToString(),
                ["ClientId"] = SalesforceSandboxOptions.DefaultClientId,
                ["ClientSecret"] = SalesforceSandboxOptions.DefaultClientSecret,
                ["Objects"] = new[] { new Dictionary<string, object> { ["SObject"] = "Account", ["Table"] = "sf_accounts", ["ReadOnlyColumns"] = new[] { "ownerid" } } },
            };
        var table = connector == "netsuite" ? "public.ns_customers" : "public.sf_accounts";
        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Hub"] = new Dictionary<string, string> { ["ConnectionString"] = hub, ["Slot"] = slot, ["Publication"] = slot },
            ["Connectors"] = new Dictionary<string, object> { [connector] = connectorConfig },
            ["Routes"] = new Dictionary<string, string[]> { [table] = [connector] },
        });
    }
}
