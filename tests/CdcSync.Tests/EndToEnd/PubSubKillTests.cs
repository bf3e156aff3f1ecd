using System.Buffers.Binary;
using System.Text.Json.Nodes;
using CdcSync.Tests.Pipeline;
using Npgsql;
using Xunit.Abstractions;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// The Pub/Sub stream's restart guarantee with a real crash: <c>cdcsync run</c> as a child process
/// streams Salesforce edits (Change Data Capture) into the hub and on to NetSuite, is SIGKILLed while
/// it applies a batch of change events and more are on the way, and is started again. Polling is
/// slowed to an hourly safety poll, so what reaches NetSuite came by the stream.
/// </summary>
public sealed class PubSubKillTests(ITestOutputHelper output)
{
    private const int PerPhase = 5;
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(90);
    private const string StreamCursor = "connector = 'salesforce' AND object = 'pubsub:/data/ChangeEvents'";

    [Fact]
    public async Task Run_KilledWithSigkillInsideAStreamedBatch_ResumesAfterStoredReplayId_NothingLostNorAppliedTwice()
    {
        await using var rig = await TwoWayRig.CreateAsync();
        rig.Configure("Connectors:salesforce:PubSub:Endpoint", rig.Salesforce.PubSubEndpoint);
        rig.Configure("Connectors:salesforce:PubSub:CaFile", rig.Salesforce.PubSubCertificatePath);
        rig.Configure("Connectors:salesforce:PubSub:SafetyPollInterval", "01:00:00");
        rig.Configure("Connectors:salesforce:PubSub:MaxReconnectDelay", "00:00:01");
        rig.Configure("Hub:MetricsUrl", "");
        rig.Configure("Console:Url", "");

        // Four phases of edits, one account each: applied before the kill (A), the batch the kill
        // lands in (B), delivered while it hangs (C), made while no worker runs (D).
        var accounts = Enumerable.Range(0, 4 * PerPhase)
            .Select(i => rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = $"Kill {i:D2} Ltd", ["BillingCity"] = "Start" }))
            .ToList();
        var phases = accounts.Chunk(PerPhase).ToArray();
        var edited = new Dictionary<string, (string City, long ReplayId)>();

        var queries = new QueryHold();
        rig.Salesforce.BeforeRequest = queries.BeforeRequestAsync;
        var configPath = await rig.WriteConfigFileAsync();
        var workDir = Directory.CreateTempSubdirectory("cdcsync-pubsub-kill-").FullName;
        var log = new CrashLog();
        var worker = CrashWorker.Start(configPath, workDir, log, 1);
        try
        {
            // The first run onboards the accounts (their customers are created in NetSuite) and subscribes.
            await WaitAsync("the first run to subscribe", worker, log, () => Task.FromResult(log.Contains(1, "subscribed to /data/ChangeEvents")));
            var customers = new Dictionary<string, long>();
            await WaitAsync("every account's customer in NetSuite", worker, log, async () =>
            {
                foreach (var account in accounts.Where(a => !customers.ContainsKey(a)))
                {
                    var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", account);
                    if (hubId is not null && rig.NetSuite.FindByExternalId("sf-" + hubId) is { } internalId)
                    {
                        customers[account] = internalId;
                    }
                }

                return customers.Count == accounts.Count;
            });
            // The edits start once the hub has read each new customer back from NetSuite (entityid is
            // NetSuite's): a Salesforce edit made before that read-back can be undone by it, as a
            // NetSuite change of the city, which is another story than the stream's restart.
            await WaitAsync("every new customer read back from NetSuite", worker, log, async () =>
                await rig.ScalarAsync<long>("SELECT count(*) FROM ns_customers WHERE entityid IS NOT NULL AND internalid = ANY ($1)", (object)customers.Values.Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray()) == accounts.Count);

            // The stream keeps a position before queries stop: a subscription that fails and comes back
            // meanwhile resumes after it, where one without a position would start from the latest
            // event and leave what it skipped to a catch-up query the hold below would stall.
            await WaitAsync("the stream to store a replay id", worker, log, async () =>
                await rig.ScalarAsync<long>($"SELECT count(*) FROM cdc.inbound_cursors WHERE {StreamCursor}") == 1);

            // From here Salesforce answers no query (a slow API) until the restarted worker's stream
            // has applied every edit: the polls at start and for catch-ups wait, so what reaches the
            // hub meanwhile came by the stream.
            queries.Hold();
            log.Append(1, "test", "customers in NetSuite; Salesforce queries held");

            // A: streamed and applied.
            foreach (var account in phases[0])
            {
                Edit(rig, edited, account);
            }

            await WaitAsync("phase A in the hub, with its replay id", worker, log, async () =>
                await HubCityListAsync(rig, phases[0]) == Expected(edited, phases[0]) && await StoredReplayIdAsync(rig) >= edited[phases[0][^1]].ReplayId);

            // B: one Salesforce transaction of PerPhase edits. The test holds a lock on the stream's row in
            // cdc.inbound_cursors, so the worker's hub transaction for them hangs where it stores the replay id.
            await using var blocker = new NpgsqlConnection(rig.Config["Hub:ConnectionString"]);
            await blocker.OpenAsync();
            var blockerTx = await blocker.BeginTransactionAsync();
            await using (var lockRow = new NpgsqlCommand($"SELECT 1 FROM cdc.inbound_cursors WHERE {StreamCursor} FOR UPDATE", blocker, blockerTx))
            {
                Assert.Equal(1, await lockRow.ExecuteScalarAsync());
            }

            var writesBefore = accounts.ToDictionary(a => a, a => rig.NetSuite.Stats.WritesOf("customer", customers[a].ToString(System.Globalization.CultureInfo.InvariantCulture)));
            var together = rig.Salesforce.UpdateTogether([.. phases[1].Select(a => KeyValuePair.Create(a, new JsonObject { ["BillingCity"] = "B-" + a[^6..] }))]);
            Assert.Equal(PerPhase, together.Count);
            foreach (var (account, replayId) in phases[1].Zip(together))
            {
                edited[account] = ("B-" + account[^6..], replayId);
            }

            log.Append(1, "test", "phase A in the hub; phase B committed in Salesforce with its last hub row locked");
            var blockerPid = blocker.ProcessID;
            var hung = 0;
            await WaitAsync("the worker's hub transaction to wait to store the replay id", worker, log, async () =>
            {
                hung = await rig.ScalarAsync<int>(
                    "SELECT coalesce(min(pid), 0) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid))", blockerPid);
                return hung != 0;
            });

            // The transaction waiting to store the replay id is the one that changed the batch's rows
            // (their old versions carry its transaction id as xmax, uncommitted): one transaction.
            var changedInHung = await rig.ScalarAsync<long>(
                "SELECT count(*) FROM sf_accounts WHERE id = ANY ($1) AND xmax = (SELECT backend_xid FROM pg_stat_activity WHERE pid = $2)", phases[1], hung);
            Assert.True(changedInHung > 0, $"the hub transaction waiting to store the replay id (pid {hung}) changed none of the batch's rows.\n{Tail(log)}");

            // C: more events on the way while the batch hangs; then SIGKILL.
            foreach (var account in phases[2])
            {
                Edit(rig, edited, account);
            }

            var subscriptionsBeforeKill = rig.Salesforce.PubSubSubscriptions.Count;
            await worker.KillAsync();
            worker.Dispose();
            await blockerTx.RollbackAsync();
            // The killed worker's backend ends when it next reads from its closed socket.
            await WaitAsync("the killed worker's hub session to end", worker: null, log, async () =>
                await rig.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", hung) == 0);

            // What the hub holds now is exactly the events up to the stored replay id: the batch the kill
            // landed in left neither its changes nor its replay id behind.
            var stored = await StoredReplayIdAsync(rig);
            var cities = await HubCitiesAsync(rig, accounts);
            var atKill = accounts.Where(edited.ContainsKey).Select(a => $"{a} {(edited[a].ReplayId <= stored ? edited[a].City : "Start")}");
            Assert.Equal(string.Join(", ", atKill), string.Join(", ", accounts.Where(edited.ContainsKey).Select(a => $"{a} {cities[a]}")));
            Assert.Contains(edited.Values, e => e.ReplayId <= stored);
            Assert.Contains(edited.Values, e => e.ReplayId > stored);
            output.WriteLine($"killed with replay id {stored} stored; {edited.Values.Count(e => e.ReplayId <= stored)} of {edited.Count} edits applied, batch {string.Join(",", together)} in Salesforce, {changedInHung} of its rows changed in the killed transaction");

            // D: edits while no worker runs; then a new process.
            foreach (var account in phases[3])
            {
                Edit(rig, edited, account);
            }

            worker = CrashWorker.Start(configPath, workDir, log, 2);
            await WaitAsync("every edit in the hub by the stream", worker, log, async () =>
                await HubCityListAsync(rig, accounts) == Expected(edited, accounts));
            log.Append(2, "test", "every edit in the hub; Salesforce queries released");
            output.WriteLine($"every edit reached the hub by the stream while {queries.Waited} Salesforce queries waited");
            queries.Release();
            await WaitAsync("every edit in NetSuite", worker, log, () => Task.FromResult(accounts.All(a =>
                rig.NetSuite.GetCustomer(customers[a])!["addressBook"]?.ToJsonString().Contains(edited[a].City, StringComparison.Ordinal) == true)));
            Assert.True(log.Contains(2, "after the stored replay id"), Tail(log));

            // Resumed from the stored replay id: the restarted subscription asked for CUSTOM after it,
            // and its first event was the one right after it (nothing before it read again).
            var resumed = rig.Salesforce.PubSubSubscriptions.Skip(subscriptionsBeforeKill).First();
            Assert.Equal(("CUSTOM", stored), (resumed.ReplayPreset, resumed.ReplayId ?? -1));
            Assert.Equal(stored + 1, resumed.FirstDeliveredReplayId);

            // Each edit applied to the hub exactly once (one inbound audit row sets it, none changes it
            // away again), and written to NetSuite once by the worker that applied it after the restart.
            log.Append(2, "test", "every edit in NetSuite");
            await rig.QuietAsync();
            var audit = await rig.ScalarAsync<string>(
                """
                SELECT string_agg(a.id || ' ' || c.applied || ' ' || c.undone, ', ' ORDER BY a.id COLLATE "C")
                  FROM sf_accounts a
                  CROSS JOIN LATERAL (
                        SELECT count(*) FILTER (WHERE l.changes -> 'billingcity' ->> 'after' = a.billingcity) AS applied,
                               count(*) FILTER (WHERE l.changes -> 'billingcity' ->> 'before' = a.billingcity) AS undone
                          FROM cdc.audit_log l
                         WHERE l.direction = 'inbound' AND l.object = 'sf_accounts' AND l.record_key = a.hub_id::text) c
                 WHERE a.id = ANY ($1)
                """, (object)accounts.ToArray());
            Assert.Equal(string.Join(", ", accounts.Order(StringComparer.Ordinal).Select(a => a + " 1 0")), audit);
            var afterKill = accounts.Where(a => edited[a].ReplayId > stored).ToList();
            Assert.Equal(
                string.Join(", ", afterKill.Select(a => a + " 1")),
                string.Join(", ", afterKill.Select(a => $"{a} {rig.NetSuite.Stats.WritesOf("customer", customers[a].ToString(System.Globalization.CultureInfo.InvariantCulture)) - writesBefore[a]}")));
            Assert.False(worker.HasExited, Tail(log));
        }
        finally
        {
            queries.Release();
            worker.Dispose();
            output.WriteLine(Tail(log));
            File.Delete(configPath);
            Directory.Delete(workDir, recursive: true);
        }
    }

    /// <summary>While on, Salesforce's data queries (the poller's) wait; the stream, sign-ins and writes go on.</summary>
    private sealed class QueryHold
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _held;
        private int _waited;

        /// <summary>Queries that waited for the release.</summary>
        public int Waited => Volatile.Read(ref _waited);

        public void Hold() => Volatile.Write(ref _held, 1);

        public void Release()
        {
            Volatile.Write(ref _held, 0);
            _released.TrySetResult();
        }

        public async Task BeforeRequestAsync(string method, string pathAndQuery)
        {
            if (Volatile.Read(ref _held) == 1 && pathAndQuery.Contains("/query", StringComparison.Ordinal) && !pathAndQuery.Contains("/tooling/", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _waited);
                await _released.Task;
            }
        }
    }

    /// <summary>The worker's log without the HTTP client's line per request.</summary>
    private static string Tail(CrashLog log) =>
        "worker log (tail):\n" + string.Join('\n', log.All().Split('\n').Where(l => !l.Contains("System.Net.Http.HttpClient", StringComparison.Ordinal)).TakeLast(80));

    private static void Edit(TwoWayRig rig, Dictionary<string, (string City, long ReplayId)> edited, string account)
    {
        var city = "E-" + account[^6..];
        var replayIds = rig.Salesforce.UpdateTogether([KeyValuePair.Create(account, new JsonObject { ["BillingCity"] = city })]);
        edited[account] = (city, Assert.Single(replayIds));
    }

    private static string Expected(Dictionary<string, (string City, long ReplayId)> edited, IEnumerable<string> accounts) =>
        string.Join(", ", accounts.Select(a => edited[a].City));

    private static async Task<string> HubCityListAsync(TwoWayRig rig, IReadOnlyList<string> accounts) =>
        string.Join(", ", (await HubCitiesAsync(rig, accounts)).Values);

    private static async Task<Dictionary<string, string?>> HubCitiesAsync(TwoWayRig rig, IReadOnlyList<string> accounts)
    {
        await using var cmd = rig.Hub.CreateCommand("SELECT id, billingcity FROM sf_accounts WHERE id = ANY ($1)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = accounts.ToArray() });
        await using var reader = await cmd.ExecuteReaderAsync();
        var cities = new Dictionary<string, string?>();
        while (await reader.ReadAsync())
        {
            cities[reader.GetString(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
        }

        return accounts.ToDictionary(a => a, a => cities.GetValueOrDefault(a));
    }

    /// <summary>The replay id the stream keeps in the hub (the sandbox's are 8-byte big-endian counters).</summary>
    private static async Task<long> StoredReplayIdAsync(TwoWayRig rig)
    {
        var cursor = await rig.ScalarAsync<string>($"SELECT cursor FROM cdc.inbound_cursors WHERE {StreamCursor}");
        Assert.NotNull(cursor);
        return BinaryPrimitives.ReadInt64BigEndian(Convert.FromBase64String(cursor));
    }

    private static async Task WaitAsync(string what, CrashWorker? worker, CrashLog log, Func<Task<bool>> condition)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.False(worker?.HasExited == true, $"the worker exited with code {(worker?.HasExited == true ? worker.ExitCode : 0)} while waiting for {what}.\n{Tail(log)}");
            Assert.True(waited.Elapsed < Cap, $"timed out after {Cap.TotalSeconds:F0} s waiting for {what}.\n{Tail(log)}");
            await Task.Delay(100);
        }
    }
}
