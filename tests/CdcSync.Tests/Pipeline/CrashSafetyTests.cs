using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using Xunit.Abstractions;

namespace CdcSync.Tests.Pipeline;

/// <summary>
/// The "nothing lost, nothing applied twice" guarantee under kill -9: <c>cdcsync run</c> runs as a
/// child process while the test writes a steady stream of small hub transactions, gets SIGKILLed
/// several times at random moments and restarted, and in the end the target must hold exactly the
/// hub's rows. A trigger in the target records every (id, counter) it is given; every hub
/// transaction that touches a row increments its counter, so a transaction applied twice (or an
/// old one applied after a newer one) shows up as a repeated or decreasing counter.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private const string HubTable = """
        CREATE TABLE public.crash_items (
            id int PRIMARY KEY,
            counter int NOT NULL,
            payload text);
        """;

    private const string TargetAudit = """
        CREATE TABLE public.crash_applied (
            id int NOT NULL,
            counter int NOT NULL,
            PRIMARY KEY (id, counter));
        CREATE TABLE public.crash_anomalies (
            seq bigserial PRIMARY KEY,
            kind text NOT NULL,
            id int NOT NULL,
            old_counter int,
            new_counter int NOT NULL,
            target_xid bigint NOT NULL DEFAULT txid_current());
        CREATE FUNCTION public.crash_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.counter <= OLD.counter THEN
                INSERT INTO public.crash_anomalies (kind, id, old_counter, new_counter) VALUES ('counter did not increase', NEW.id, OLD.counter, NEW.counter);
            END IF;
            INSERT INTO public.crash_applied (id, counter) VALUES (NEW.id, NEW.counter) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                INSERT INTO public.crash_anomalies (kind, id, old_counter, new_counter)
                VALUES ('applied twice', NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.counter END, NEW.counter);
            END IF;
            -- A target that is sometimes slow: batches pile up, so kills also land mid-apply and
            -- the slot must wait for the checkpoint instead of running ahead of the target.
            IF NEW.id % 10 = 0 THEN
                PERFORM pg_sleep(0.01);
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER crash_audit AFTER INSERT OR UPDATE ON public.crash_items
            FOR EACH ROW EXECUTE FUNCTION public.crash_audit();
        """;

    private static readonly TimeSpan FeedDuration = TimeSpan.FromSeconds(22);
    // The final worker first decodes the WAL since the slot's restart point, other suites' loads
    // included: on a busy machine (two spinning cores, seen in CI runs) that took over 15 s before
    // its first new checkpoint. Healthy runs stop waiting as soon as the target equals the hub.
    private static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(60);
    private const int Kills = 5;

    [Fact]
    public async Task Run_KilledWithSigkillRepeatedly_TargetConvergesWithNothingLostOrDuplicated()
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        output.WriteLine($"random seed {seed}");

        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await ExecuteAsync(hub, HubTable);
        await ExecuteAsync(target, HubTable + TargetAudit);

        var name = "crash_" + Guid.NewGuid().ToString("N")[..12];
        var workDir = Directory.CreateTempSubdirectory("cdcsync-crash-").FullName;
        var configPath = Path.Combine(workDir, "pipeline.json");
        await File.WriteAllTextAsync(configPath, JsonSerializer.Serialize(new
        {
            Hub = new
            {
                ConnectionString = hub,
                Slot = name,
                Publication = name,
                HeartbeatInterval = "00:00:01",
                StatusInterval = "00:00:00.2",
                ReplayRetentionBytes = 0,
                MetricsUrl = "",
                MaxRestartDelay = "00:00:02",
            },
            Connectors = new Dictionary<string, object>
            {
                ["target"] = new
                {
                    Type = "postgres",
                    ConnectionString = target,
                    Tables = new Dictionary<string, object> { ["public.crash_items"] = new { Target = "public.crash_items" } },
                },
            },
            Routes = new Dictionary<string, string[]> { ["public.crash_items"] = ["target"] },
        }));

        var log = new CrashLog();
        var run = 1;
        var worker = CrashWorker.Start(configPath, workDir, log, run);
        var total = Stopwatch.StartNew();
        try
        {
            // The slot is created by the first worker; rows written before it exists would never be streamed.
            var createdLsn = await WaitForSlotAsync(hub, name, worker, log);
            output.WriteLine($"slot {name} created at {createdLsn}");

            using var stopFeeding = new CancellationTokenSource();
            var feeder = new Feeder(hub, new Random(random.Next()));
            var feedUntil = new StrongBox<long>(long.MaxValue);
            var feedTask = Task.Run(() => feeder.RunAsync(() => Stopwatch.GetTimestamp() < Volatile.Read(ref feedUntil.Value), stopFeeding.Token));

            // The kills start once the worker has applied something: on a busy server (other
            // suites writing WAL) decoding can take seconds to reach the feeder's first rows, and
            // kills before that would only test start-up. The feed runs for its duration from here.
            await WaitForFirstCheckpointAsync(target, worker, log);
            Volatile.Write(ref feedUntil.Value, Stopwatch.GetTimestamp() + (long)(FeedDuration.TotalSeconds * Stopwatch.Frequency));
            output.WriteLine($"{total.Elapsed.TotalSeconds:F1}s: first checkpoint recorded; killing for {FeedDuration.TotalSeconds:F0} s");

            // Kill at random moments while the feeder runs, restart after a short random pause.
            var killsWithCheckpoint = 0;
            for (var kill = 0; kill < Kills && !feedTask.IsCompleted; kill++)
            {
                await Task.WhenAny(feedTask, Task.Delay(TimeSpan.FromMilliseconds(random.Next(500, 4000))));
                if (feedTask.IsCompleted)
                {
                    break;
                }

                Assert.False(worker.HasExited, $"worker run {run} exited on its own with code {(worker.HasExited ? worker.ExitCode : 0)}.\n{log.Tail()}");
                await worker.KillAsync();
                worker.Dispose();
                var checkpoint = await CheckpointAsync(target);
                output.WriteLine($"{total.Elapsed.TotalSeconds:F1}s: killed run {run}; target checkpoint {checkpoint}, {feeder.Transactions} hub transactions so far");
                if (checkpoint is not null)
                {
                    killsWithCheckpoint++;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(100, 1200)));
                worker = CrashWorker.Start(configPath, workDir, log, ++run);
            }

            await feedTask;
            output.WriteLine($"{total.Elapsed.TotalSeconds:F1}s: feeder done: {feeder.Transactions} transactions, {feeder.Updates} updates, {feeder.Inserts} inserts, {feeder.Deletes} deletes");
            Assert.True(run > 3, $"only {run - 1} kills happened while the feeder ran; the test did not exercise crashes.");
            Assert.True(killsWithCheckpoint > 0, $"no kill happened after the worker had recorded a checkpoint.\n{log.Tail()}");

            // The last worker catches up: wait until the target holds exactly the hub's rows. Once
            // the slot is acknowledged past the hub's last write, everything must be in the target
            // already (acknowledgement follows the checkpoint), so a difference then is final.
            var hubRows = await RowsAsync(hub);
            var hubEnd = await ScalarAsync<NpgsqlLogSequenceNumber>(hub, "SELECT pg_current_wal_lsn()");
            var caughtUp = Stopwatch.StartNew();
            var differentAfterAck = 0;
            var stalled = Stopwatch.StartNew();
            var lastCheckpoint = await CheckpointAsync(target);
            List<Row> targetRows;
            while (true)
            {
                Assert.False(worker.HasExited, $"the final worker (run {run}) exited on its own with code {(worker.HasExited ? worker.ExitCode : 0)}.\n{log.Tail()}");
                var (acknowledged, _) = await SlotAsync(hub, name);
                targetRows = await RowsAsync(target);
                if (targetRows.SequenceEqual(hubRows) || caughtUp.Elapsed > CatchUpTimeout)
                {
                    break;
                }

                if (acknowledged >= hubEnd && ++differentAfterAck >= 4)
                {
                    output.WriteLine($"slot acknowledged up to {acknowledged}, past the hub's last write {hubEnd}, but the target still differs");
                    break;
                }

                var checkpoint = await CheckpointAsync(target);
                if (checkpoint != lastCheckpoint)
                {
                    lastCheckpoint = checkpoint;
                    stalled.Restart();
                }
                else if (stalled.Elapsed > StallTimeout)
                {
                    output.WriteLine($"the target's checkpoint stayed at {checkpoint} for {StallTimeout} while the target still differs");
                    break;
                }

                await Task.Delay(250);
            }

            output.WriteLine($"{total.Elapsed.TotalSeconds:F1}s: waited {caughtUp.Elapsed.TotalSeconds:F1}s for the target ({hubRows.Count} hub rows, {targetRows.Count} target rows)");
            var anomalies = await AnomaliesAsync(target);
            Assert.True(anomalies.Count == 0, $"the target saw transactions applied twice or out of order:\n{string.Join("\n", anomalies)}\n{log.Tail()}");
            Assert.True(targetRows.SequenceEqual(hubRows), $"the target did not converge to the hub (waited up to {CatchUpTimeout}):\n{Differences(hubRows, targetRows)}\n{log.Tail()}");

            var exitCode = await worker.TerminateAsync(TimeSpan.FromSeconds(30));
            Assert.True(exitCode == 0, $"the worker exited with code {exitCode} after SIGTERM (expected 0).\n{log.Tail()}");

            // Still identical after the drain, nothing applied twice, and the slot moved past the checkpoint.
            Assert.Equal(hubRows, await RowsAsync(target));
            anomalies = await AnomaliesAsync(target);
            Assert.True(anomalies.Count == 0, $"the target saw transactions applied twice or out of order:\n{string.Join("\n", anomalies)}\n{log.Tail()}");
            var finalCheckpoint = await CheckpointAsync(target);
            Assert.True(finalCheckpoint is not null, "the target has no checkpoint row for connector 'target'");
            var (confirmed, active) = await SlotAsync(hub, name);
            output.WriteLine($"final checkpoint {finalCheckpoint}, slot confirmed_flush_lsn {confirmed} (created at {createdLsn}), active {active}");
            Assert.True(confirmed > createdLsn, $"slot {name} never advanced: confirmed_flush_lsn {confirmed}, created at {createdLsn}.\n{log.Tail()}");
            Assert.True(confirmed >= finalCheckpoint!.Value, $"slot {name} confirmed_flush_lsn {confirmed} is behind the target's checkpoint {finalCheckpoint}.\n{log.Tail()}");
            Assert.False(active, $"slot {name} is still active after the worker exited");

            // Every row's final state reached the target as a recorded application.
            var missingFinal = await ScalarAsync<long>(target, "SELECT count(*) FROM public.crash_items i WHERE NOT EXISTS (SELECT 1 FROM public.crash_applied a WHERE a.id = i.id AND a.counter = i.counter)");
            Assert.Equal(0L, missingFinal);
            output.WriteLine($"{total.Elapsed.TotalSeconds:F1}s: done");
        }
        finally
        {
            worker.Dispose();
            output.WriteLine(log.All());
            try
            {
                Directory.Delete(workDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private sealed record Row(int Id, int Counter, string? Payload)
    {
        public override string ToString() => $"({Id}, {Counter}, {Payload ?? "NULL"})";
    }

    /// <summary>Small hub transactions as fast as a client reasonably writes: updates that bump counters, inserts, some deletes.</summary>
    private sealed class Feeder(string connectionString, Random random)
    {
        private readonly List<int> _live = [];
        private int _nextId = 1;

        public int Transactions { get; private set; }

        public int Updates { get; private set; }

        public int Inserts { get; private set; }

        public int Deletes { get; private set; }

        public async Task RunAsync(Func<bool> keepGoing, CancellationToken cancellationToken)
        {
            await using var conn = new NpgsqlConnection(connectionString);
            await conn.OpenAsync(cancellationToken);

            // A first batch of rows so updates have something to work on from the start.
            await TransactionAsync(conn, updates: 0, inserts: 50, delete: false, cancellationToken);
            while (keepGoing() && !cancellationToken.IsCancellationRequested)
            {
                // Mostly tiny transactions, now and then a bigger one so kills also land in larger batches.
                var big = random.Next(50) == 0;
                var updates = big ? Math.Min(_live.Count, random.Next(30, 120)) : Math.Min(_live.Count, random.Next(1, 5));
                var inserts = big ? random.Next(5, 40) : random.Next(0, 3);
                var delete = _live.Count > 20 && random.Next(10) == 0;
                await TransactionAsync(conn, updates, inserts, delete, cancellationToken);
                var pause = random.Next(0, 8);
                if (pause > 0)
                {
                    await Task.Delay(pause, cancellationToken);
                }
            }
        }

        private async Task TransactionAsync(NpgsqlConnection conn, int updates, int inserts, bool delete, CancellationToken cancellationToken)
        {
            var toUpdate = new HashSet<int>();
            while (toUpdate.Count < updates)
            {
                toUpdate.Add(_live[random.Next(_live.Count)]);
            }

            var newIds = Enumerable.Range(_nextId, inserts).ToArray();
            int? deleted = delete ? _live[random.Next(_live.Count)] : null;

            await using var tx = await conn.BeginTransactionAsync(cancellationToken);
            if (toUpdate.Count > 0)
            {
                await using var cmd = new NpgsqlCommand(
                    "UPDATE public.crash_items SET counter = counter + 1, payload = $2 || counter + 1 WHERE id = ANY($1)", conn, tx);
                cmd.Parameters.Add(new NpgsqlParameter { Value = toUpdate.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
                cmd.Parameters.Add(new NpgsqlParameter { Value = $"tx{Transactions} ü " });
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }

            if (newIds.Length > 0)
            {
                await using var cmd = new NpgsqlCommand(
                    "INSERT INTO public.crash_items (id, counter, payload) SELECT i, 0, CASE WHEN i % 7 = 0 THEN NULL ELSE 'new ' || i END FROM unnest($1) AS i", conn, tx);
                cmd.Parameters.Add(new NpgsqlParameter { Value = newIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }

            if (deleted is { } id)
            {
                await using var cmd = new NpgsqlCommand("DELETE FROM public.crash_items WHERE id = $1", conn, tx);
                cmd.Parameters.Add(new NpgsqlParameter { Value = id });
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }

            await tx.CommitAsync(cancellationToken);

            // Ids are never reused, so a (id, counter) pair names one hub transaction.
            _nextId += newIds.Length;
            _live.AddRange(newIds);
            if (deleted is { } gone)
            {
                _live.Remove(gone);
            }

            Transactions++;
            Updates += toUpdate.Count;
            Inserts += newIds.Length;
            Deletes += deleted is null ? 0 : 1;
        }
    }

    private static async Task<NpgsqlLogSequenceNumber> WaitForSlotAsync(string hub, string slot, CrashWorker worker, CrashLog log)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            Assert.False(worker.HasExited, $"the first worker exited with code {(worker.HasExited ? worker.ExitCode : 0)} before creating slot {slot}.\n{log.Tail()}");
            await using var conn = new NpgsqlConnection(hub);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
            if (await cmd.ExecuteScalarAsync() is NpgsqlLogSequenceNumber lsn)
            {
                return lsn;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"the worker did not create slot {slot} within 120 s.\n{log.Tail()}");
        return default;
    }

    private static async Task<(NpgsqlLogSequenceNumber Confirmed, bool Active)> SlotAsync(string hub, string slot)
    {
        await using var conn = new NpgsqlConnection(hub);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT confirmed_flush_lsn, active FROM pg_replication_slots WHERE slot_name = $1", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"slot {slot} is gone");
        return (reader.GetFieldValue<NpgsqlLogSequenceNumber>(0), reader.GetBoolean(1));
    }

    private static async Task WaitForFirstCheckpointAsync(string target, CrashWorker worker, CrashLog log)
    {
        var waited = Stopwatch.StartNew();
        while (await CheckpointAsync(target) is null)
        {
            Assert.False(worker.HasExited, $"the first worker exited on its own with code {(worker.HasExited ? worker.ExitCode : 0)}.\n{log.Tail()}");
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(120), $"the first worker recorded no checkpoint within 120 s.\n{log.Tail()}");
            await Task.Delay(100);
        }
    }

    private static async Task<NpgsqlLogSequenceNumber?> CheckpointAsync(string target)
    {
        await using var conn = new NpgsqlConnection(target);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT lsn FROM cdcsync.checkpoints WHERE connector = 'target'", conn);
        try
        {
            return await cmd.ExecuteScalarAsync() is NpgsqlLogSequenceNumber lsn ? lsn : null;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return null;
        }
    }

    private static async Task<List<Row>> RowsAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT id, counter, payload FROM public.crash_items ORDER BY id", conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<Row>();
        while (await reader.ReadAsync())
        {
            rows.Add(new Row(reader.GetInt32(0), reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }

        return rows;
    }

    private static async Task<List<string>> AnomaliesAsync(string target)
    {
        await using var conn = new NpgsqlConnection(target);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT kind, id, old_counter, new_counter, target_xid FROM public.crash_anomalies ORDER BY seq LIMIT 50", conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        var list = new List<string>();
        while (await reader.ReadAsync())
        {
            list.Add($"{reader.GetString(0)}: id {reader.GetInt32(1)} counter {(reader.IsDBNull(2) ? "-" : reader.GetInt32(2))} -> {reader.GetInt32(3)} (target xid {reader.GetInt64(4)})");
        }

        return list;
    }

    private static string Differences(List<Row> hub, List<Row> target)
    {
        var hubById = hub.ToDictionary(r => r.Id);
        var targetById = target.ToDictionary(r => r.Id);
        var missing = hub.Where(r => !targetById.ContainsKey(r.Id)).ToList();
        var extra = target.Where(r => !hubById.ContainsKey(r.Id)).ToList();
        var different = hub.Where(r => targetById.TryGetValue(r.Id, out var t) && t != r).Select(r => $"hub {r} target {targetById[r.Id]}").ToList();
        return $"hub {hub.Count} rows, target {target.Count} rows\n"
            + $"missing in target ({missing.Count}): {string.Join(", ", missing.Take(20))}\n"
            + $"extra in target ({extra.Count}): {string.Join(", ", extra.Take(20))}\n"
            + $"different ({different.Count}): {string.Join("; ", different.Take(20))}";
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
