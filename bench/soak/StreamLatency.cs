using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Schema;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Soak;

/// <summary>
/// Salesforce -> NetSuite latency of single edits and the Salesforce API calls of an idle minute,
/// with the worker on examples/salesforce-netsuite.json, streaming (Pub/Sub endpoint set, as the
/// sandbox environment sets it) or polling (<c>--poll</c>): creates the accounts, lets them link,
/// stays idle a minute counting Salesforce REST calls, then edits one account's billing city at a
/// time and times its arrival in NetSuite (the first edit is the one after the quiet minute), then
/// updates many accounts at once and times their arrival in the hub (events/s).
/// </summary>
internal static class StreamLatency
{
    public static async Task<int> RunAsync(string repo, bool poll, int accounts, int edits, int burst, TimeSpan idle)
    {
        var time = TimeProvider.System;
        var admin = Environment.GetEnvironmentVariable("CDCSYNC_DB")
            ?? throw new InvalidOperationException("CDCSYNC_DB is not set; run bench/soak/stream-latency.sh, which starts a throwaway PostgreSQL.");
        var database = "cdcsync_stream_" + time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        await using (var conn = new NpgsqlConnection(admin))
        {
            await conn.ExecuteAsync($"CREATE DATABASE \"{database}\"");
        }

        var hubConnection = new NpgsqlConnectionStringBuilder(admin) { Database = database }.ConnectionString;
        try
        {
            var migrated = await new HubMigrator(hubConnection, ScriptSet.Load(repo)).MigrateAsync(CancellationToken.None);
            if (!migrated.Succeeded)
            {
                throw new InvalidOperationException(migrated.Error);
            }

            await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 100_000_000 }, CancellationToken.None);
            await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
            await using var hub = NpgsqlDataSource.Create(hubConnection);
            CdcSync.Sandboxes.ExampleEnvironment.Apply(hubConnection, salesforce, netsuite);
            if (poll)
            {
                Environment.SetEnvironmentVariable("SALESFORCE_PUBSUB_ENDPOINT", null);
                Environment.SetEnvironmentVariable("SALESFORCE_PUBSUB_CA_FILE", null);
            }

            var options = ConnectorConfig.Bind(new ConfigurationBuilder()
                .AddConfiguration(ConfigLoader.Build(Path.Combine(repo, "examples", "salesforce-netsuite.json")))
                .AddInMemoryCollection(new Dictionary<string, string?> { ["Hub:Slot"] = "cdcsync_stream", ["Hub:Publication"] = "cdcsync_stream" })
                .Build());
            var loggers = NullLoggerFactory.Instance;
            using var stop = new CancellationTokenSource();
            var runner = new PipelineRunner(
                options,
                name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hub, loggers),
                loggers,
                name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hub, loggers));
            var run = Task.Run(() => runner.RunAsync(stop.Token));
            try
            {
                Console.WriteLine($"mode: {(poll ? "polling" : "streaming (Pub/Sub)")}; {accounts} accounts, {edits} single edits, a burst of {burst}, idle {idle.TotalSeconds:0} s");
                var ids = Enumerable.Range(0, accounts).Select(i => salesforce.Insert("Account", new JsonObject { ["Name"] = $"Stream {i}", ["BillingCity"] = $"Start {i}" })).ToList();
                var customers = new Dictionary<string, long>();
                await WaitAsync("every account in NetSuite", TimeSpan.FromMinutes(5), runner, time, async () =>
                {
                    foreach (var id in ids.Where(i => !customers.ContainsKey(i)))
                    {
                        await using var cmd = hub.CreateCommand("SELECT hub_id FROM sf_accounts WHERE id = $1");
                        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
                        if (await cmd.ExecuteScalarAsync() is Guid hubId && netsuite.FindByExternalId("sf-" + hubId) is { } internalId)
                        {
                            customers[id] = internalId;
                        }
                    }

                    return customers.Count == ids.Count;
                });

                // Settle (links written back, echoes read), then an idle period counted.
                await Task.Delay(TimeSpan.FromSeconds(15), time);
                var before = Requests(salesforce);
                var idleStart = time.GetTimestamp();
                await Task.Delay(idle, time);
                var idleCalls = Requests(salesforce) - before;
                Console.WriteLine($"Salesforce REST calls in {time.GetElapsedTime(idleStart).TotalSeconds:0} s idle: {idleCalls} ({idleCalls * 60 / idle.TotalSeconds:0.0} per minute)");

                var latencies = new List<double>();
                for (var i = 0; i < edits; i++)
                {
                    var id = ids[i % ids.Count];
                    var city = $"City {i} {Guid.NewGuid():N}"[..20];
                    var started = time.GetTimestamp();
                    salesforce.Update(id, new JsonObject { ["BillingCity"] = city });
                    await WaitAsync($"edit {i} in NetSuite", TimeSpan.FromMinutes(2), runner, time, () => Task.FromResult(
                        netsuite.GetCustomer(customers[id])!["addressBook"]?.ToJsonString().Contains(city, StringComparison.Ordinal) == true), TimeSpan.FromMilliseconds(5));
                    latencies.Add(time.GetElapsedTime(started).TotalMilliseconds);
                    if (i == 0)
                    {
                        Console.WriteLine($"first edit after the idle period: {latencies[0]:0} ms");
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(500), time);
                }

                var sorted = latencies.Order().ToList();
                Console.WriteLine($"single edits Salesforce -> NetSuite ({edits}): p50 {Percentile(sorted, 0.5):0} ms, p99 {Percentile(sorted, 0.99):0} ms, max {sorted[^1]:0} ms");

                // Throughput: many edits at once, timed until the hub holds them all.
                var burstStart = time.GetTimestamp();
                for (var i = 0; i < burst; i++)
                {
                    salesforce.Update(ids[i % ids.Count], new JsonObject { ["Phone"] = $"+1 415 555 {i:0000}" });
                }

                var last = ids.Take(Math.Min(burst, ids.Count)).Select((id, n) => (id, n + ((burst - 1 - n) / ids.Count * ids.Count))).ToList();
                await WaitAsync("the burst in the hub", TimeSpan.FromMinutes(5), runner, time, async () =>
                {
                    await using var cmd = hub.CreateCommand("SELECT count(*) FROM sf_accounts WHERE id = ANY($1) AND phone = ANY($2)");
                    cmd.Parameters.Add(new NpgsqlParameter { Value = last.Select(l => l.id).ToArray() });
                    cmd.Parameters.Add(new NpgsqlParameter { Value = last.Select(l => $"+1 415 555 {l.Item2:0000}").ToArray() });
                    return (long)(await cmd.ExecuteScalarAsync())! == last.Count;
                }, TimeSpan.FromMilliseconds(20));
                var seconds = time.GetElapsedTime(burstStart).TotalSeconds;
                Console.WriteLine($"burst: {burst} Salesforce edits in the hub after {seconds:0.00} s ({burst / seconds:0} edits/s)");
                return 0;
            }
            finally
            {
                await stop.CancelAsync();
                await run.ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var conn = new NpgsqlConnection(admin);
            await conn.ExecuteAsync("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = @database AND NOT active", new { database });
            await conn.ExecuteAsync("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE starts_with(roname, 'cdcsync:' || @database || ':')", new { database });
            await conn.ExecuteAsync($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
        }
    }

    /// <summary>REST calls the org served (the sandbox's own admin endpoints left out).</summary>
    private static long Requests(SalesforceSandbox salesforce) =>
        (salesforce.Stats.ToJson()["requestsPerEndpoint"] as JsonObject ?? [])
            .Where(p => !p.Key.Contains("/_sandbox", StringComparison.Ordinal))
            .Sum(p => p.Value!.GetValue<long>());

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static async Task WaitAsync(string what, TimeSpan timeout, PipelineRunner runner, TimeProvider time, Func<Task<bool>> condition, TimeSpan? every = null)
    {
        var start = time.GetTimestamp();
        while (!await condition())
        {
            if (time.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}; worker {runner.Health} {runner.LastError}");
            }

            await Task.Delay(every ?? TimeSpan.FromMilliseconds(250), time);
        }
    }
}
