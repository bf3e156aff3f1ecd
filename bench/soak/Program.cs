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
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Soak;

/// <summary>
/// Two-way soak over the sandboxes with the real worker (examples/salesforce-netsuite.json):
/// records created on both sides, random edits of several fields (the NetSuite billing city inside
/// the address book sublist) on both sides at a fixed rate, from a seed, then quiet; every linked
/// pair must end equal, at the last edit of each field or at the value a recorded conflict decided;
/// no record on one side only; total API writes bounded by 2 x edits + 3 x creates (counted by the
/// sandboxes). For every field that ends wrong: that record's edits in order, then the hub's audit
/// trail and conflicts for the field.
/// </summary>
internal static class Program
{
    // (Salesforce field, NetSuite field, hub column in sf_accounts, hub column in ns_customers)
    private static readonly (string Sf, string Ns, string SfColumn, string NsColumn)[] Fields =
    [
        ("Phone", "phone", "phone", "phone"),
        ("Name", "companyName", "name", "companyname"),
        ("Website", "url", "website", "url"),
        ("BillingCity", "addressBook", "billingcity", "addressbook"), // NetSuite: the default billing line's city
    ];

    private const int City = 3;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "stream-latency")
        {
            // bench/soak/stream-latency.sh [--poll] [--accounts N] [--edits N] [--burst N] [--idle-seconds S]
            string Arg(string name, string fallback) => args.SkipWhile(x => x != name).Skip(1).FirstOrDefault() ?? fallback;
            return await StreamLatency.RunAsync(
                Arg("--repo", "."), args.Contains("--poll"), int.Parse(Arg("--accounts", "20"), CultureInfo.InvariantCulture),
                int.Parse(Arg("--edits", "30"), CultureInfo.InvariantCulture), int.Parse(Arg("--burst", "2000"), CultureInfo.InvariantCulture),
                TimeSpan.FromSeconds(int.Parse(Arg("--idle-seconds", "60"), CultureInfo.InvariantCulture)));
        }

        var arguments = Arguments.Parse(args);
        var time = TimeProvider.System;
        var admin = Environment.GetEnvironmentVariable("CDCSYNC_DB")
            ?? throw new InvalidOperationException("CDCSYNC_DB is not set; run bench/soak/soak.sh, which starts a throwaway PostgreSQL.");
        var database = "cdcsync_soak_" + time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        await using (var conn = new NpgsqlConnection(admin))
        {
            await conn.ExecuteAsync($"CREATE DATABASE \"{database}\"");
        }

        var hub = new NpgsqlConnectionStringBuilder(admin) { Database = database }.ConnectionString;
        try
        {
            return await RunAsync(arguments, hub, time);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var conn = new NpgsqlConnection(admin);
            await conn.ExecuteAsync("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = @database AND NOT active", new { database });
            // Origins are server-wide and outlive the database; each one holds a replication state slot.
            await conn.ExecuteAsync("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE starts_with(roname, 'cdcsync:' || @database || ':')", new { database });
            await conn.ExecuteAsync($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
        }
    }

    private static async Task<int> RunAsync(Arguments a, string hubConnectionString, TimeProvider time)
    {
        var migrated = await new HubMigrator(hubConnectionString, ScriptSet.Load(a.Repo)).MigrateAsync(CancellationToken.None);
        if (!migrated.Succeeded)
        {
            throw new InvalidOperationException(migrated.Error);
        }

        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 100_000_000 }, CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        await using var hub = NpgsqlDataSource.Create(hubConnectionString);
        ILoggerFactory loggers = NullLoggerFactory.Instance;
        var options = Options(a.Repo, hubConnectionString, salesforce, netsuite);
        using var stop = new CancellationTokenSource();
        var runner = new PipelineRunner(
            options,
            name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hub, loggers),
            loggers,
            name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hub, loggers));
        var run = Task.Run(() => runner.RunAsync(stop.Token));
        try
        {
            var random = new Random(a.Seed);
            var started = time.GetTimestamp();
            var sfIds = new List<string>();
            var nsIds = new List<long>();
            for (var i = 0; i < a.Records; i++)
            {
                sfIds.Add(salesforce.Insert("Account", new JsonObject
                {
                    ["Name"] = $"SF Soak {i}", ["Phone"] = $"41555{i:00000}", ["Website"] = $"https://sf{i}.example", ["BillingCity"] = $"Oakland {i}",
                }));
                nsIds.Add(netsuite.SeedCustomer(new JsonObject
                {
                    ["companyName"] = $"NS Soak {i}", ["phone"] = $"51255{i:00000}", ["url"] = $"https://ns{i}.example",
                    ["addressBook"] = new JsonObject { ["items"] = new JsonArray(BillingLine($"Austin {i}")) },
                }));
            }

            Console.WriteLine($"created {a.Records} Accounts and {a.Records} customers; waiting for every link...");
            var pairs = new List<(string Sf, long Ns)>();
            await WaitAsync("every record linked on both sides", a.QuietTimeout, runner, time, () =>
            {
                pairs = Linked(salesforce, netsuite);
                return pairs.Count == 2 * a.Records;
            });
            Console.WriteLine($"linked {pairs.Count} pairs in {time.GetElapsedTime(started).TotalSeconds:0.0} s");
            var createWrites = salesforce.Stats.Writes + netsuite.Stats.Writes;

            // Edits: one loop per side at the given rate, random pair and field, unique values.
            var edits = new List<Edit>();
            var gate = new object();
            var editUntil = time.GetTimestamp();
            var duration = TimeSpan.FromSeconds(a.EditSeconds);
            async Task EditLoopAsync(bool onSalesforce, int seed)
            {
                var r = new Random(seed);
                var interval = TimeSpan.FromSeconds(1.0 / a.EditsPerSecond);
                var n = 0;
                var start = time.GetTimestamp();
                while (time.GetElapsedTime(start) < duration)
                {
                    var pair = r.Next(pairs.Count);
                    var field = r.Next(Fields.Length);
                    var value = Value(field, onSalesforce ? "s" : "n", n++, pair);
                    if (onSalesforce)
                    {
                        salesforce.Update(pairs[pair].Sf, new JsonObject { [Fields[field].Sf] = value });
                    }
                    else if (field == City)
                    {
                        // As a user edits an address in NetSuite: the default billing line, other lines kept.
                        var lines = (netsuite.GetCustomer(pairs[pair].Ns)!["addressBook"]?["items"] as JsonArray ?? []).Select(l => l!.DeepClone()).ToList();
                        var billing = lines.FirstOrDefault(l => l!["defaultBilling"]?.GetValue<bool>() == true);
                        if (billing is null)
                        {
                            lines.Add(BillingLine(value));
                        }
                        else
                        {
                            billing["addressBookAddress"]!["city"] = value;
                        }

                        netsuite.EditRecord("customer", pairs[pair].Ns, new JsonObject { ["addressBook"] = new JsonObject { ["items"] = new JsonArray([.. lines]) } }, "addressBook");
                    }
                    else
                    {
                        netsuite.EditRecord("customer", pairs[pair].Ns, new JsonObject { [Fields[field].Ns] = value });
                    }

                    lock (gate)
                    {
                        edits.Add(new Edit(pair, field, value, time.GetUtcNow(), onSalesforce));
                    }

                    var due = TimeSpan.FromTicks(interval.Ticks * n);
                    var wait = due - time.GetElapsedTime(start);
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, time);
                    }
                }
            }

            var requestsBefore = (Salesforce: Requests(salesforce.Stats), NetSuite: Requests(netsuite.Stats));
            var editStart = time.GetTimestamp();
            await Task.WhenAll(Task.Run(() => EditLoopAsync(true, random.Next())), Task.Run(() => EditLoopAsync(false, random.Next())));
            var editSeconds = time.GetElapsedTime(editStart).TotalSeconds;
            var sfEdits = edits.Count(e => e.OnSalesforce);
            Console.WriteLine($"edits: {sfEdits} in Salesforce, {edits.Count - sfEdits} in NetSuite over {editSeconds:0.0} s ({sfEdits / editSeconds:0.0} and {(edits.Count - sfEdits) / editSeconds:0.0} per second)");

            // Quiet: until neither sandbox has taken a write for QuietPeriod.
            var quietStart = time.GetTimestamp();
            var lastWrites = -1L;
            var stableSince = time.GetTimestamp();
            await WaitAsync("the systems to go quiet", a.QuietTimeout, runner, time, () =>
            {
                var writes = salesforce.Stats.Writes + netsuite.Stats.Writes;
                if (writes != lastWrites)
                {
                    lastWrites = writes;
                    stableSince = time.GetTimestamp();
                }

                return time.GetElapsedTime(stableSince) >= a.QuietPeriod;
            });
            Console.WriteLine($"quiet after {(time.GetElapsedTime(quietStart) - a.QuietPeriod).TotalSeconds:0.0} s");

            // Verdict.
            await using var db = await hub.OpenConnectionAsync();
            var decided = (await db.QueryAsync<(string Object, string RecordKey, string Field, string? Decided)>(
                "SELECT object, record_key, field, decided_value #>> '{}' FROM cdc.conflicts WHERE status = 'resolved'")).ToList();
            var openConflicts = await db.ExecuteScalarAsync<long>("SELECT count(*) FROM cdc.conflicts WHERE status = 'open'");
            var hubIds = (await db.QueryAsync<(string Id, Guid Account, Guid? Customer)>(
                "SELECT a.id, a.hub_id, cdc.linked_hub_id('sf_accounts', a.hub_id, 'ns_customers') FROM sf_accounts a WHERE a.id IS NOT NULL"))
                .ToDictionary(x => x.Id);
            var lastEdit = edits.GroupBy(e => (e.Pair, e.Field)).ToDictionary(g => g.Key, g => g.OrderBy(e => e.At).Last());
            int agreeing = 0, pairsAtLastEdit = 0, pairsAtDecision = 0, disagreeing = 0, atOlderEdit = 0;
            var wrong = new List<(int Pair, int Field, string What)>();
            for (var p = 0; p < pairs.Count; p++)
            {
                var sf = salesforce.Get(pairs[p].Sf)!;
                var ns = netsuite.GetCustomer(pairs[p].Ns)!;
                var pairOk = true;
                var pairByDecision = false;
                for (var f = 0; f < Fields.Length; f++)
                {
                    var sfValue = Normalize(f, sf[Fields[f].Sf]?.ToString());
                    var nsValue = Normalize(f, f == City ? BillingCity(ns) : ns[Fields[f].Ns]?.ToString());
                    if (sfValue != nsValue)
                    {
                        pairOk = false;
                        wrong.Add((p, f, $"{pairs[p].Sf}/{pairs[p].Ns} {Fields[f].Sf}: Salesforce '{sfValue}', NetSuite '{nsValue}'"));
                        continue;
                    }

                    if (!lastEdit.TryGetValue((p, f), out var last) || Normalize(f, last.Value) == sfValue)
                    {
                        continue;
                    }

                    var keys = hubIds.TryGetValue(pairs[p].Sf, out var ids) ? new[] { ids.Account.ToString(), ids.Customer?.ToString() } : [];
                    if (decided.Any(d => keys.Contains(d.RecordKey) && (d.Field == Fields[f].SfColumn || d.Field == Fields[f].NsColumn) && Normalize(f, DecidedValue(f, d.Field, d.Decided)) == sfValue))
                    {
                        pairByDecision = true;
                        continue;
                    }

                    pairOk = false;
                    atOlderEdit++;
                    var kept = edits.Where(e => e.Pair == p && e.Field == f && Normalize(f, e.Value) == sfValue).Select(e => e.At).DefaultIfEmpty().Max();
                    wrong.Add((p, f, $"{pairs[p].Sf}/{pairs[p].Ns} {Fields[f].Sf}: both '{sfValue}' (edited {kept:HH:mm:ss.fff}), last edit '{last.Value}' in {(last.OnSalesforce ? "Salesforce" : "NetSuite")} at {last.At:HH:mm:ss.fff}, no conflict recorded"));
                }

                if (pairOk)
                {
                    agreeing++;
                    if (pairByDecision)
                    {
                        pairsAtDecision++;
                    }
                    else
                    {
                        pairsAtLastEdit++;
                    }
                }
                else
                {
                    disagreeing++;
                }
            }

            var sfCount = salesforce.Records("Account").Count;
            var nsCount = netsuite.CustomerCount;
            var totalWrites = salesforce.Stats.Writes + netsuite.Stats.Writes;
            var bound = (2 * edits.Count) + (3 * 2 * a.Records);
            var deadLetters = await db.ExecuteScalarAsync<long>("SELECT count(*) FROM cdc.dead_letters WHERE status = 'open'");
            Console.WriteLine();
            Console.WriteLine($"pairs: {pairs.Count}; as expected: {agreeing} ({pairsAtLastEdit} at the last edit of every field, {pairsAtDecision} at a recorded conflict decision); wrong: {disagreeing} ({atOlderEdit} field(s) at an older edit with no conflict recorded)");
            Console.WriteLine($"conflicts recorded: {decided.Count} decided, {openConflicts} open; dead letters: {deadLetters}");
            Console.WriteLine($"records: {sfCount} Accounts, {nsCount} customers (one side only: {Math.Abs(sfCount - nsCount) + (2 * a.Records - pairs.Count)})");
            Console.WriteLine($"writes: {totalWrites} (Salesforce {salesforce.Stats.Writes}, NetSuite {netsuite.Stats.Writes}; {createWrites} during creation); bound 2 x {edits.Count} edits + 3 x {2 * a.Records} creates = {bound}");
            Console.WriteLine($"API requests from the first edit on: Salesforce {RequestsSince(requestsBefore.Salesforce, salesforce.Stats)}");
            Console.WriteLine($"                                      NetSuite {RequestsSince(requestsBefore.NetSuite, netsuite.Stats)}");
            await PrintWrongAsync(db, wrong, pairs, edits, hubIds);

            var pass = disagreeing == 0 && sfCount == nsCount && pairs.Count == 2 * a.Records && totalWrites <= bound;
            Console.WriteLine(pass ? "PASS" : "FAIL");
            return pass ? 0 : 1;
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

    /// <summary>For every field that ended wrong: the edits of that record in order, then what the hub recorded for it.</summary>
    private static async Task PrintWrongAsync(NpgsqlConnection db, List<(int Pair, int Field, string What)> wrong, List<(string Sf, long Ns)> pairs, List<Edit> edits, Dictionary<string, (string Id, Guid Account, Guid? Customer)> hubIds)
    {
        foreach (var (pair, field, what) in wrong)
        {
            Console.WriteLine($"  wrong: {what}");
            foreach (var e in edits.Where(e => e.Pair == pair).OrderBy(e => e.At))
            {
                Console.WriteLine($"    {e.At:HH:mm:ss.fff} edit in {(e.OnSalesforce ? "Salesforce" : "NetSuite  ")} {Fields[e.Field].Sf} = '{e.Value}'{(e.Field == field ? "  <--" : "")}");
            }

            if (!hubIds.TryGetValue(pairs[pair].Sf, out var ids))
            {
                continue;
            }

            var keys = new[] { ids.Account.ToString(), ids.Customer?.ToString() ?? "" };
            var columns = new[] { Fields[field].SfColumn, Fields[field].NsColumn };
            foreach (var row in await db.QueryAsync<(DateTime At, string Line)>(
                """
                SELECT applied_at, format('%s %s %s %s', connector, direction, object, changes::text) FROM cdc.audit_log
                 WHERE record_key = ANY(@keys) AND changes ?| @columns
                UNION ALL
                SELECT created_at, format('CONFLICT %s.%s base %s hub %s (%s %s) incoming %s (%s %s): %s', object, field, base_value, hub_value, hub_system,
                       to_char(hub_modified_at, 'HH24:MI:SS.MS'), incoming_value, incoming_system, to_char(incoming_modified_at, 'HH24:MI:SS.MS'), decision)
                  FROM cdc.conflicts WHERE record_key = ANY(@keys) AND field = ANY(@columns)
                ORDER BY 1
                """, new { keys, columns }))
            {
                Console.WriteLine($"    {row.At:HH:mm:ss.fff} hub: {row.Line}");
            }
        }
    }

    private static Dictionary<string, long> Requests(CdcSync.Sandboxes.Steering.SandboxStats stats) =>
        (stats.ToJson()["requestsPerEndpoint"] as JsonObject ?? []).ToDictionary(p => p.Key, p => p.Value!.GetValue<long>());

    /// <summary>Requests per endpoint since a snapshot, the busiest first: "1234 (PATCH /x 600, GET /y 400, ...)".</summary>
    private static string RequestsSince(Dictionary<string, long> before, CdcSync.Sandboxes.Steering.SandboxStats stats)
    {
        var since = Requests(stats)
            .Select(p => (Endpoint: p.Key, Count: p.Value - before.GetValueOrDefault(p.Key)))
            .Where(p => p.Count > 0 && !p.Endpoint.Contains("/_sandbox", StringComparison.Ordinal))
            .OrderByDescending(p => p.Count)
            .ToList();
        return $"{since.Sum(p => p.Count)} ({string.Join(", ", since.Select(p => $"{p.Endpoint} {p.Count}"))})";
    }

    /// <summary>A conflict's decided value as the field's value: on NetSuite's side the billing city is decided as the whole address book.</summary>
    private static string? DecidedValue(int field, string column, string? decided) =>
        field == City && column == Fields[City].NsColumn && decided is not null && JsonNode.Parse(decided) is JsonArray lines
            ? BillingCity(new JsonObject { ["addressBook"] = new JsonObject { ["items"] = lines.DeepClone() } })
            : decided;

    private static JsonObject BillingLine(string city) => new()
    {
        ["label"] = "Billing", ["defaultBilling"] = true, ["defaultShipping"] = false,
        ["addressBookAddress"] = new JsonObject { ["addr1"] = "1 Main St", ["city"] = city, ["country"] = "US" },
    };

    private static string? BillingCity(JsonObject customer) =>
        (customer["addressBook"]?["items"] as JsonArray ?? [])
            .FirstOrDefault(l => l?["defaultBilling"]?.GetValue<bool>() == true)?["addressBookAddress"]?["city"]?.ToString();

    private static List<(string Sf, long Ns)> Linked(SalesforceSandbox salesforce, NetSuiteSandbox netsuite) =>
        salesforce.Records("Account")
            .Select(r => (Sf: r["Id"]!.ToString(), Ns: long.TryParse(r["NetSuite_Id__c"]?.ToString(), out var ns) ? ns : 0))
            .Where(p => p.Ns != 0 && netsuite.GetCustomer(p.Ns) is not null)
            .OrderBy(p => p.Ns)
            .ToList();

    private static string Value(int field, string side, int n, int pair) => field switch
    {
        0 => $"6{(side == "s" ? 1 : 2)}0{n % 10_000_000:0000000}",
        1 => $"Soak {side}{n} p{pair}",
        City => $"City {side}{n} p{pair}",
        _ => $"https://{side}{n}.p{pair}.example",
    };

    private static string Normalize(int field, string? value) => field switch
    {
        0 => new string((value ?? "").Where(char.IsAsciiDigit).ToArray()),
        _ => (value ?? "").Trim(),
    };

    private static async Task WaitAsync(string what, TimeSpan timeout, PipelineRunner runner, TimeProvider time, Func<bool> condition)
    {
        var start = time.GetTimestamp();
        while (!condition())
        {
            if (time.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}; worker {runner.Health} {runner.LastError}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time);
        }
    }

    private static CdcSyncOptions Options(string repo, string hub, SalesforceSandbox salesforce, NetSuiteSandbox netsuite)
    {
        // The shipped config reads its hub and credentials from the environment (${...}).
        CdcSync.Sandboxes.ExampleEnvironment.Apply(hub, salesforce, netsuite);

        return ConnectorConfig.Bind(new ConfigurationBuilder()
            .AddConfiguration(ConfigLoader.Build(Path.Combine(repo, "examples", "salesforce-netsuite.json")))
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Hub:Slot"] = "cdcsync_soak",
                ["Hub:Publication"] = "cdcsync_soak",
            })
            .Build());
    }

    private sealed record Edit(int Pair, int Field, string Value, DateTimeOffset At, bool OnSalesforce);

    private sealed record Arguments(string Repo, int Records, int EditSeconds, double EditsPerSecond, TimeSpan QuietPeriod, TimeSpan QuietTimeout, int Seed)
    {
        public static Arguments Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < args.Length; i += 2)
            {
                values[args[i]] = args[i + 1];
            }

            string Get(string key, string fallback) => values.GetValueOrDefault(key, fallback);
            return new Arguments(
                Get("--repo", "."),
                int.Parse(Get("--records", "500"), CultureInfo.InvariantCulture),
                int.Parse(Get("--edit-seconds", "120"), CultureInfo.InvariantCulture),
                double.Parse(Get("--edits-per-second", "5"), CultureInfo.InvariantCulture),
                TimeSpan.FromSeconds(double.Parse(Get("--quiet-seconds", "15"), CultureInfo.InvariantCulture)),
                TimeSpan.FromSeconds(double.Parse(Get("--timeout-seconds", "600"), CultureInfo.InvariantCulture)),
                int.Parse(Get("--seed", "7"), CultureInfo.InvariantCulture));
        }
    }
}
