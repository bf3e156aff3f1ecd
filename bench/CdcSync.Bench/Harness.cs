using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Schema;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Bench;

internal sealed record RepResult(
    int Rep,
    long Changes,
    long WalBytes,
    double BacklogTps,
    double? RecvSeconds,
    double? ReaderSeconds,
    double? ReaderInnerSeconds,
    long? ReaderPeakRss,
    double? NativeSeconds,
    double? PipelineSeconds,
    double? PipelineInnerSeconds,
    long? PipelinePeakRss,
    int? PipelineRestarts,
    bool? NativeMatches,
    bool? PipelineMatches,
    double? ReaderCpuSeconds = null,
    double? PipelineCpuSeconds = null,
    CpuSplit? NativeServerCpu = null,
    CpuSplit? PipelineServerCpu = null);

internal sealed partial class Harness(Settings settings)
{
    private const string RecvSlot = "bench_recv";
    private const string ReaderSlot = "bench_reader";
    private const string SubSlot = "bench_sub";
    private const string Subscription = "bench_sub";
    private const string NativeDb = "cdcsync_bench_native";
    private const string PipelineDb = "cdcsync_bench_cdcsync";

    private static readonly string[] Tables = ["public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_history", "public.pgbench_tellers"];

    private readonly string _hub = settings.HubConnectionString;
    private string _repo = "";
    private string _config = "";
    private string _slot = "";
    private string _publication = "";
    private System.Diagnostics.Stopwatch? _lastNativeStart;

    private string NativeTarget => Pg.WithDatabase(_hub, NativeDb);

    private string PipelineTarget => Pg.WithDatabase(_hub, PipelineDb);

    public async Task<int> RunAsync()
    {
        _repo = FindRepo();
        _config = Path.Combine(_repo, "examples", "pgbench-to-postgres.json");

        // The example config names the slot and publication; CDCSYNC_TARGET_DB only has to be set to load it.
        Environment.SetEnvironmentVariable("CDCSYNC_TARGET_DB", PipelineTarget);
        var options = ConnectorConfig.Bind(ConfigLoader.Build(_config));
        _slot = options.Hub.Slot;
        _publication = options.Hub.Publication;

        settings.Repo = _repo;
        await PrintMachineAsync();
        if (settings.Http)
        {
            var http = await new HttpBench(settings).RunAsync();
            ReportHttp(http);
            if (settings.JsonPath is { } httpPath)
            {
                await File.WriteAllTextAsync(httpPath, JsonSerializer.Serialize(new { scenario = "http", latencyMs = settings.LatencyMs, reps = http, summary = HttpSummary(http) }, Indented));
            }

            return 0;
        }

        var migration = await new HubMigrator(_hub, ScriptSet.Load(ScriptSet.Locate(_repo))).MigrateAsync(CancellationToken.None);
        if (!migration.Succeeded)
        {
            throw new InvalidOperationException($"cdcsync migrate failed: {migration.Error}");
        }

        var results = new List<RepResult>();
        for (var rep = 1 - settings.Warmup; rep <= settings.Reps; rep++)
        {
            // Warm-up repetitions (rep <= 0) drain a tenth of the backlog and are not counted.
            Console.WriteLine(rep <= 0 ? "== warm-up" : $"== repetition {rep}/{settings.Reps}");
            var result = await RepAsync(rep, rep <= 0 ? Math.Max(settings.Rows / 10, 1000) : settings.Rows);
            if (rep > 0)
            {
                results.Add(result);
            }

            Console.WriteLine($"   {JsonSerializer.Serialize(result)}");
        }

        Report(results);
        if (settings.JsonPath is { } path)
        {
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new
            {
                scenario = settings.Workload,
                settings.Rows,
                settings.Scale,
                settings.Clients,
                reps = results,
                summary = new
                {
                    connector = settings.Connector ? Stats(results.Select(r => r.PipelineSeconds!.Value)) : null,
                    native = settings.Connector ? Stats(results.Select(r => r.NativeSeconds!.Value)) : null,
                    ratio = settings.Connector ? Stats(results.Select(r => r.NativeSeconds!.Value / r.PipelineSeconds!.Value)) : null,
                    connectorPeakRssMb = settings.Connector ? Stats(results.Select(r => r.PipelinePeakRss!.Value / 1048576.0)) : null,
                    reader = settings.Reader ? Stats(results.Select(r => r.ReaderSeconds!.Value)) : null,
                    pgRecvlogical = settings.Reader ? Stats(results.Select(r => r.RecvSeconds!.Value)) : null,
                    readerRatio = settings.Reader ? Stats(results.Select(r => r.RecvSeconds!.Value / r.ReaderSeconds!.Value)) : null,
                    nativeOverReaderAlone = settings.Reader && settings.Connector ? Stats(results.Select(r => r.NativeSeconds!.Value / r.ReaderSeconds!.Value)) : null,
                    allMatch = results.All(r => r.NativeMatches != false && r.PipelineMatches != false),
                },
            }, Indented));
        }

        await CleanupAsync();
        return 0;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Median, min and max of a measured series (the spread the report prints).</summary>
    private static object Stats(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return new { median = Median(v), min = v.FirstOrDefault(), max = v.LastOrDefault(), values = v };
    }

    private static object HttpSummary(List<HttpRepResult> results) =>
        results.GroupBy(r => r.Connector).ToDictionary(
            g => g.Key,
            g => (object)new
            {
                recordsPerSecond = Stats(g.Select(r => r.RecordsPerSecond)),
                limitPerSecond = g.First().LimitPerSecond,
                shareOfLimit = Stats(g.Select(r => r.ShareOfLimit)),
                apiMsPerWriteRequest = Stats(g.Select(r => r.ApiMsPerWriteRequest)),
                shareOfApiPace = Stats(g.Select(r => r.ShareOfApiPace)),
            });

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static void ReportHttp(List<HttpRepResult> results)
    {
        Console.WriteLine();
        Console.WriteLine("| Connector | records | latency per request | records/s (median) | spread | theoretical limit | share of limit | target | API's own time per write request | share at the API's own pace |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var g in results.GroupBy(r => r.Connector))
        {
            var rates = g.Select(r => r.RecordsPerSecond).Order().ToArray();
            var median = rates[rates.Length / 2];
            var share = median / g.First().LimitPerSecond;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {g.Key} | {g.First().Records} | {g.First().LatencyMs} ms | {median:F1} | {string.Join(" / ", rates.Select(r => r.ToString("F1", CultureInfo.InvariantCulture)))} | {g.First().LimitPerSecond:F1} | {share:P0} | >= 90% {(share >= 0.9 ? "met" : "NOT met")} | {Median(g.Select(r => r.ApiMsPerWriteRequest)):F1} ms | {Median(g.Select(r => r.ShareOfApiPace)):P0} |"));
        }
    }

    private async Task<RepResult> RepAsync(int rep, int rows)
    {
        await CleanupAsync();
        await PrepareHubAsync();
        if (settings.Connector)
        {
            await PrepareTargetAsync(NativeDb);
            await PrepareTargetAsync(PipelineDb);
        }

        // The publication first, then every slot, all before the backlog: they all decode identical WAL.
        if (settings.Connector)
        {
            await new SlotManager(_hub, NullLogger.Instance).EnsureAsync(_slot, _publication, Tables.Select(t => TableName.Parse(t)).ToList(), CancellationToken.None);
        }
        else
        {
            await Pg.ExecAsync(_hub, $"CREATE PUBLICATION \"{_publication}\" FOR TABLE {string.Join(", ", Tables)}");
        }

        if (settings.Reader)
        {
            await Pg.ExecAsync(_hub, $"SELECT pg_create_logical_replication_slot('{RecvSlot}', 'pgoutput'); SELECT pg_create_logical_replication_slot('{ReaderSlot}', 'pgoutput')");
        }

        if (settings.Connector)
        {
            await Pg.ExecAsync(_hub, $"SELECT pg_create_logical_replication_slot('{SubSlot}', 'pgoutput')");
            // create_slot=false: creating a slot from a subscription in the same cluster would wait on itself.
            await Pg.ExecAsync(NativeTarget, $"""
                CREATE SUBSCRIPTION {Subscription} CONNECTION '{Pg.LibpqConninfo(_hub).Replace("'", "''", StringComparison.Ordinal)}'
                PUBLICATION "{_publication}" WITH (create_slot = false, slot_name = '{SubSlot}', enabled = false, copy_data = false)
                """);
        }

        // The backlog: pgbench's tpcb-like transactions (4 changes each) or 100-row inserts, then one marker transaction.
        var start = await Pg.CurrentLsnAsync(_hub);
        var perTx = settings.Workload == "insert" ? 100 : 4;
        var perClient = Math.Max(1, (int)Math.Ceiling(rows / (double)perTx / settings.Clients));
        List<string> pgbenchArgs = ["-n", "-c", $"{settings.Clients}", "-j", $"{settings.Clients}", "-t", $"{perClient}"];
        var script = Path.Combine(Path.GetTempPath(), $"cdcsync-bench-insert-{Environment.ProcessId}.sql");
        if (settings.Workload == "insert")
        {
            await File.WriteAllTextAsync(script, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1 + g % 10, 1, g, g, now() FROM generate_series(1, 100) g;\n");
            pgbenchArgs.AddRange(["-f", script]);
        }

        var (_, bench) = await Pg.RunToolAsync("pgbench", pgbenchArgs, Pg.LibpqEnv(_hub));
        File.Delete(script);
        var tps = TpsRegex().Match(bench) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        await Pg.ExecAsync(_hub, $"INSERT INTO pgbench_history (id, tid, bid, aid, delta, mtime) VALUES ({Children.MarkerId}, 1, 1, 1, 0, now())");
        var end = await Pg.CurrentLsnAsync(_hub);
        var walBytes = (long)((ulong)end - (ulong)start);
        var expectedChanges = (long)perClient * settings.Clients * perTx;
        Console.WriteLine($"   backlog ({settings.Workload}): {perClient * settings.Clients} pgbench transactions ({expectedChanges} row changes) at {tps:F0} tps, WAL {start} -> {end} = {walBytes / 1048576.0:F1} MB");

        double? recv = null, reader = null, readerInner = null, native = null, pipeline = null, pipelineInner = null, readerCpu = null, pipelineCpu = null;
        long? readerRss = null, pipelineRss = null;
        CpuSplit? nativeCpu = null, pipelineServerCpu = null;
        int? restarts = null;
        bool? nativeOk = null, pipelineOk = null;
        var peerFirst = rep % 2 == 1;

        if (settings.Reader)
        {
            async Task Recv()
            {
                await Pg.ExecAsync(_hub, "CHECKPOINT");
                var (elapsed, _) = await Pg.RunToolAsync("pg_recvlogical",
                [
                    "-d", Pg.LibpqConninfo(_hub), "--slot", RecvSlot, "--start",
                    "-o", "proto_version=2", "-o", $"publication_names={_publication}", "-o", "binary=true",
                    "--no-loop", "-f", "/dev/null", "--endpos", end.ToString(),
                ]);
                recv = elapsed.TotalSeconds;
                Console.WriteLine($"   pg_recvlogical: {recv:F2} s");
            }

            async Task Reader()
            {
                await Pg.ExecAsync(_hub, "CHECKPOINT");
                var (elapsed, f) = await Self.RunUntilDoneAsync(
                    Self.StartInfo(["_reader", ReaderSlot, _publication], new Dictionary<string, string> { ["CDCSYNC_DB"] = _hub }),
                    TimeSpan.FromMinutes(30));
                reader = elapsed.TotalSeconds;
                readerInner = long.Parse(f[2], CultureInfo.InvariantCulture) / 1000.0;
                readerRss = long.Parse(f[3], CultureInfo.InvariantCulture);
                readerCpu = long.Parse(f[5], CultureInfo.InvariantCulture) / 1000.0;
                var seen = long.Parse(f[0], CultureInfo.InvariantCulture);
                Console.WriteLine($"   CdcSync reader: {reader:F2} s ({readerInner:F2} s inside the process, {readerCpu:F2} s CPU), {seen} changes, {long.Parse(f[1], CultureInfo.InvariantCulture) / 1048576.0:F1} MB of values, binary={f[4]}, peak RSS {readerRss / 1048576.0:F0} MB");
                if (seen != expectedChanges)
                {
                    throw new InvalidOperationException($"the reader saw {seen} changes, expected {expectedChanges}");
                }
            }

            if (peerFirst)
            {
                await Recv();
                await Reader();
            }
            else
            {
                await Reader();
                await Recv();
            }
        }

        if (settings.Connector)
        {
            async Task Native()
            {
                await Pg.ExecAsync(_hub, "CHECKPOINT");
                await using var conn = new NpgsqlConnection(Pg.Unpooled(NativeTarget));
                await conn.OpenAsync();
                await using var probe = new NpgsqlCommand($"SELECT count(*) FROM pgbench_history WHERE id = {Children.MarkerId}", conn);

                // The logical replication launcher starts no apply worker within
                // wal_retrieve_retry_interval (5 s by default) of its previous start: with a short
                // backlog the previous repetition's worker started less than that ago, and the
                // wait would be counted against the subscription. Wait it out before the clock starts.
                var retry = await Pg.ScalarAsync<string>(NativeTarget, "SELECT setting FROM pg_settings WHERE name = 'wal_retrieve_retry_interval'");
                var quiet = TimeSpan.FromMilliseconds(double.Parse(retry, CultureInfo.InvariantCulture) + 500);
                if (_lastNativeStart is { } last && last.Elapsed < quiet)
                {
                    await Task.Delay(quiet - last.Elapsed);
                }

                await using var cpu = ServerCpu.Start();
                var watch = System.Diagnostics.Stopwatch.StartNew();
                _lastNativeStart = watch;
                await using (var enable = new NpgsqlCommand($"ALTER SUBSCRIPTION {Subscription} ENABLE", conn))
                {
                    await enable.ExecuteNonQueryAsync();
                }

                while ((long)(await probe.ExecuteScalarAsync())! == 0)
                {
                    if (watch.Elapsed > TimeSpan.FromMinutes(30))
                    {
                        throw new TimeoutException("the subscription did not apply the backlog within 30 minutes");
                    }

                    await Task.Delay(25);
                }

                native = watch.Elapsed.TotalSeconds;
                nativeCpu = await cpu.StopAsync(NativeDb);
                await using (var disable = new NpgsqlCommand($"ALTER SUBSCRIPTION {Subscription} DISABLE", conn))
                {
                    await disable.ExecuteNonQueryAsync();
                }

                Console.WriteLine($"   CREATE SUBSCRIPTION apply: {native:F2} s; server CPU: {nativeCpu.Describe(native: true)}");
            }

            async Task Pipeline()
            {
                await Pg.ExecAsync(_hub, "CHECKPOINT");
                await using var cpu = ServerCpu.Start();
                var (elapsed, f) = await Self.RunUntilDoneAsync(
                    Self.StartInfo(["_pipeline", _config, PipelineTarget], new Dictionary<string, string> { ["CDCSYNC_DB"] = _hub, ["CDCSYNC_TARGET_DB"] = PipelineTarget }),
                    TimeSpan.FromMinutes(30));
                pipeline = elapsed.TotalSeconds;
                pipelineInner = long.Parse(f[1], CultureInfo.InvariantCulture) / 1000.0;
                pipelineRss = long.Parse(f[2], CultureInfo.InvariantCulture);
                restarts = int.Parse(f[3], CultureInfo.InvariantCulture);
                pipelineCpu = long.Parse(f[4], CultureInfo.InvariantCulture) / 1000.0;
                pipelineServerCpu = await cpu.StopAsync(PipelineDb);
                Console.WriteLine($"   CdcSync pipeline: {pipeline:F2} s ({pipelineInner:F2} s inside the process, {pipelineCpu:F2} s CPU), {f[0]} changes applied, peak RSS {pipelineRss / 1048576.0:F0} MB, restarts {restarts}; server CPU: {pipelineServerCpu.Describe(native: false)}");
            }

            if (peerFirst)
            {
                await Native();
                await Pipeline();
            }
            else
            {
                await Pipeline();
                await Native();
            }

            var hubDigest = await DigestAsync(_hub);
            nativeOk = hubDigest == await DigestAsync(NativeTarget);
            pipelineOk = hubDigest == await DigestAsync(PipelineTarget);
            Console.WriteLine($"   target matches hub: native {nativeOk}, CdcSync {pipelineOk}");
        }

        return new RepResult(rep, expectedChanges, walBytes, tps, recv, reader, readerInner, readerRss, native, pipeline, pipelineInner, pipelineRss, restarts, nativeOk, pipelineOk, readerCpu, pipelineCpu, nativeCpu, pipelineServerCpu);
    }

    private async Task PrepareHubAsync()
    {
        var env = Pg.LibpqEnv(_hub);
        await Pg.RunToolAsync("pgbench", ["-i", "-q", "-s", $"{settings.Scale}"], env);
        await Pg.ExecAsync(_hub, "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY; CHECKPOINT");
    }

    private async Task PrepareTargetAsync(string database)
    {
        await Pg.ExecAsync(Pg.WithDatabase(_hub, "postgres"), $"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        await Pg.ExecAsync(Pg.WithDatabase(_hub, "postgres"), $"CREATE DATABASE {database}");
        var target = Pg.WithDatabase(_hub, database);
        // Same deterministic initial rows as the hub (pgbench -i data does not depend on randomness).
        await Pg.RunToolAsync("pgbench", ["-i", "-q", "-I", "dtgp", "-s", $"{settings.Scale}"], Pg.LibpqEnv(target));
        await Pg.ExecAsync(target, "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY");
    }

    /// <summary>Drops what a previous run left: the subscription, the slots, the publication.</summary>
    private async Task CleanupAsync()
    {
        var admin = Pg.WithDatabase(_hub, "postgres");
        if (await Pg.ScalarAsync<long>(admin, $"SELECT count(*) FROM pg_subscription WHERE subname = '{Subscription}'") > 0)
        {
            await Pg.ExecAsync(NativeTarget, $"ALTER SUBSCRIPTION {Subscription} DISABLE; ALTER SUBSCRIPTION {Subscription} SET (slot_name = NONE); DROP SUBSCRIPTION {Subscription}");
        }

        // A slot whose walsender is still exiting is "active" for a moment.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Pg.ExecAsync(_hub, $"""
                    SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                    WHERE slot_name IN ('{RecvSlot}', '{ReaderSlot}', '{SubSlot}', '{_slot}');
                    DELETE FROM cdc.slots WHERE slot = '{_slot}';
                    DROP PUBLICATION IF EXISTS "{_publication}"
                    """);
                break;
            }
            catch (PostgresException e) when (e.SqlState == "55006" && attempt < 100)
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<string> DigestAsync(string connectionString) =>
        await Pg.ScalarAsync<string>(connectionString, """
            SELECT (SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts)
                || (SELECT md5(string_agg(tid || ':' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers)
                || (SELECT md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches)
                || (SELECT md5(string_agg(id || ':' || tid || ':' || bid || ':' || aid || ':' || delta || ':' || mtime, ',' ORDER BY id)) FROM pgbench_history)
            """);

    private void Report(List<RepResult> results)
    {
        static string Spread(IEnumerable<double> values) => string.Join(" / ", values.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)));

        var changes = Median(results.Select(r => (double)r.Changes));
        var wal = Median(results.Select(r => r.WalBytes / 1048576.0));
        Console.WriteLine();
        Console.WriteLine($"Backlog: {changes:F0} row changes from pgbench {settings.Workload} transactions (-c {settings.Clients}, scale {settings.Scale}), {wal:F1} MB of WAL; median of {results.Count} repetitions");
        Console.WriteLine();
        Console.WriteLine("| Scenario | CdcSync s | CdcSync rows/s | CdcSync WAL MB/s | Peer | Peer s | Peer rows/s | Peer WAL MB/s | Ratio (CdcSync rate / peer rate) | Target | CdcSync peak RSS |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        if (settings.Reader)
        {
            var ours = Median(results.Select(r => r.ReaderSeconds!.Value));
            var peer = Median(results.Select(r => r.RecvSeconds!.Value));
            var ratio = Median(results.Select(r => r.RecvSeconds!.Value / r.ReaderSeconds!.Value));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| reader -> no-op sink | {ours:F2} | {changes / ours:F0} | {wal / ours:F1} | pg_recvlogical | {peer:F2} | {changes / peer:F0} | {wal / peer:F1} | {ratio:F2} | >= 0.9 {(ratio >= 0.9 ? "met" : "NOT met")} | {Median(results.Select(r => r.ReaderPeakRss!.Value / 1048576.0)):F0} MB |"));
        }

        if (settings.Connector)
        {
            var ours = Median(results.Select(r => r.PipelineSeconds!.Value));
            var peer = Median(results.Select(r => r.NativeSeconds!.Value));
            var ratio = Median(results.Select(r => r.NativeSeconds!.Value / r.PipelineSeconds!.Value));
            var target = settings.Workload == "insert" ? 2.0 : 1.5; // issue 17's targets
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| PostgreSQL connector | {ours:F2} | {changes / ours:F0} | {wal / ours:F1} | CREATE SUBSCRIPTION | {peer:F2} | {changes / peer:F0} | {wal / peer:F1} | {ratio:F2} | >= {target:F1} {(ratio >= target ? "met" : "NOT met")} | {Median(results.Select(r => r.PipelinePeakRss!.Value / 1048576.0)):F0} MB |"));
        }

        Console.WriteLine();
        Console.WriteLine("Per repetition (seconds):");
        if (settings.Reader)
        {
            Console.WriteLine($"  pg_recvlogical   {Spread(results.Select(r => r.RecvSeconds!.Value))}");
            Console.WriteLine($"  CdcSync reader   {Spread(results.Select(r => r.ReaderSeconds!.Value))} (inside the process: {Spread(results.Select(r => r.ReaderInnerSeconds!.Value))}; CPU {Spread(results.Select(r => r.ReaderCpuSeconds!.Value))})");
        }

        if (settings.Connector)
        {
            Console.WriteLine($"  subscription     {Spread(results.Select(r => r.NativeSeconds!.Value))}");
            Console.WriteLine($"  CdcSync pipeline {Spread(results.Select(r => r.PipelineSeconds!.Value))} (inside the process: {Spread(results.Select(r => r.PipelineInnerSeconds!.Value))})");
            Console.WriteLine($"  CdcSync pipeline CPU {Spread(results.Select(r => r.PipelineCpuSeconds!.Value))}");
            Console.WriteLine($"  server CPU, subscription: walsender {Spread(results.Select(r => r.NativeServerCpu!.Walsender))}; apply worker {Spread(results.Select(r => r.NativeServerCpu!.ApplyWorker))}");
            Console.WriteLine($"  server CPU, CdcSync: walsender {Spread(results.Select(r => r.PipelineServerCpu!.Walsender))}; target backends {Spread(results.Select(r => r.PipelineServerCpu!.TargetBackends))}");
            Console.WriteLine($"  cores busy (CPU of walsender, worker/apply and target / wall): subscription {Spread(results.Select(r => (r.NativeServerCpu!.Walsender + r.NativeServerCpu.ApplyWorker) / r.NativeSeconds!.Value))}; CdcSync {Spread(results.Select(r => (r.PipelineServerCpu!.Walsender + r.PipelineServerCpu.TargetBackends + r.PipelineCpuSeconds!.Value) / r.PipelineSeconds!.Value))}");
            // A walsender is one process: no client of it finishes before it has spent its CPU.
            Console.WriteLine($"  ceiling for any client of the walsender (subscription s / CdcSync run's walsender CPU s): {Spread(results.Select(r => r.NativeSeconds!.Value / Math.Max(0.01, r.PipelineServerCpu!.Walsender)))}x");
            if (settings.Reader)
            {
                // Not a ceiling: with nothing to slow it the reader waits on the walsender for each
                // message, and the thread pool's spinning in those waits takes CPU from the walsender.
                Console.WriteLine($"  subscription / reader alone {Spread(results.Select(r => r.NativeSeconds!.Value / r.ReaderSeconds!.Value))}");
            }

            Console.WriteLine($"  targets match the hub: native {string.Join(",", results.Select(r => r.NativeMatches))}; CdcSync {string.Join(",", results.Select(r => r.PipelineMatches))}");
        }

        Console.WriteLine($"  backlog generation tps {Spread(results.Select(r => r.BacklogTps))}");
    }

    private async Task PrintMachineAsync()
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var mem = File.ReadLines("/proc/meminfo").First().Split(':', 2)[1].Trim();
        var version = await Pg.ScalarAsync<string>(_hub, "SELECT version()");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {cpu}, MemTotal {mem}; .NET {Environment.Version}; {version}");
    }

    private static string FindRepo()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "examples", "pgbench-to-postgres.json")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException("Run from the CdcSync checkout (examples/pgbench-to-postgres.json not found).");
    }

    [GeneratedRegex(@"tps = ([0-9.]+)")]
    private static partial Regex TpsRegex();
}
