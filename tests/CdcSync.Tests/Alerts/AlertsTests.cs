using System.Text.Json.Nodes;
using CdcSync.Alerts;
using CdcSync.Configuration;
using CdcSync.Checks;
using CdcSync.Hub;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.Alerts;

public sealed class AlertsTests
{
    private const string Secret = "test-secret-0123456789abcdef";

    [Fact]
    public async Task FailingCheck_AlertsOnceSigned_ResolvedOnceWhenFixed_NothingTwiceAfterARestart()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);
        await using var receiver = await AlertReceiver.StartAsync(Secret);
        var options = Options(receiver);
        var clock = new Clock();
        await ExecuteAsync(source, "INSERT INTO ns_customers (hub_id, internalid, companyname) VALUES ('00000000-0000-0000-0000-00000000a201', 'a201', 'No Mail Ltd')");
        var runner = new CheckRunner(source, "test", clock);
        var check = (await runner.ListAsync(CancellationToken.None)).Single(c => c.Name == "customers_without_email");

        var run = await runner.RunAsync(check, CancellationToken.None);
        Assert.Equal(1, run.FailingRows);
        Assert.Contains("No Mail Ltd", run.SampleJson, StringComparison.Ordinal);

        // The receiver is down for the first attempt: the delivery is retried.
        receiver.FailNext(1);
        using (var notifier = new AlertNotifier(options))
        {
            var worker = Evaluator(source, notifier, options, clock);
            var first = await worker.EvaluateOnceAsync(CancellationToken.None);
            Assert.Equal(1, first.Sent);
            Assert.Equal(0, (await worker.EvaluateOnceAsync(CancellationToken.None)).Sent);
        }

        var fired = Assert.Single(receiver.Alerts);
        Assert.Equal("firing", (string?)fired["status"]);
        Assert.Equal("check:customers_without_email", (string?)fired["key"]);
        Assert.Equal("warning", (string?)fired["severity"]);
        Assert.Contains("found 1 row(s)", (string?)fired["text"], StringComparison.Ordinal);
        Assert.Empty(receiver.Refused);

        // A restarted worker: a new evaluator and notifier on the same hub send nothing again.
        using var restarted = new AlertNotifier(options);
        var afterRestart = Evaluator(source, restarted, options, clock);
        Assert.Equal(0, (await afterRestart.EvaluateOnceAsync(CancellationToken.None)).Sent);

        // Fixed in the data; the next run of the check passes and the alert resolves, once.
        await ExecuteAsync(source, "UPDATE ns_customers SET email = 'ap@nomail.example' WHERE hub_id = '00000000-0000-0000-0000-00000000a201'");
        Assert.Equal(0, (await runner.RunAsync(check, CancellationToken.None)).FailingRows);
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, (await afterRestart.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(0, (await afterRestart.EvaluateOnceAsync(CancellationToken.None)).Sent);

        Assert.Equal(["firing", "resolved"], receiver.Alerts.Select(a => (string?)a["status"]));
        var resolved = receiver.Alerts.Last();
        Assert.Equal("check:customers_without_email", (string?)resolved["key"]);
        Assert.NotEqual((string?)fired["idempotencyKey"], (string?)resolved["idempotencyKey"]);
        Assert.Empty(receiver.Refused);
    }

    [Fact]
    public async Task DeadLetterAndOpenCircuit_EachAlertOnce_EvenWithTwoWorkersEvaluating_AndResolve()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);
        await using var receiver = await AlertReceiver.StartAsync(Secret);
        var options = Options(receiver);
        var clock = new Clock();
        var gateway = new HubGateway(source);
        await gateway.DeadLetterAsync("crm", new DeadLetter("sf_accounts", "001A", "{}", "REQUIRED_FIELD_MISSING: Name", null), CancellationToken.None);
        // What the worker records every 2 s for a connector whose breaker opened (Worker.RecordStatusAsync).
        await ExecuteAsync(source, "INSERT INTO cdc.connector_status (connector, worker, circuit, last_error) VALUES ('erp', 'w1', 'open', 'HTTP 503 from NetSuite')");
        // A conflict younger than the threshold is no problem yet.
        await ExecuteAsync(source, "INSERT INTO cdc.conflicts (connector, object, record_key, policy) VALUES ('crm', 'sf_accounts', '001B', 'manual')");

        using var leaderNotifier = new AlertNotifier(options);
        using var standbyNotifier = new AlertNotifier(options);
        var leader = Evaluator(source, leaderNotifier, options, clock);
        var standby = Evaluator(source, standbyNotifier, options, clock);

        // The old leader and the one taking over evaluate at the same moment: one round runs.
        var rounds = await Task.WhenAll(leader.EvaluateOnceAsync(CancellationToken.None), standby.EvaluateOnceAsync(CancellationToken.None));
        Assert.Equal(2, rounds.Sum(r => r.Sent));
        Assert.Equal(0, (await standby.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(0, (await leader.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(["circuit:erp", "dead-letters:crm"], receiver.Alerts.Select(a => (string)a["key"]!).Order());
        Assert.All(receiver.Alerts, a => Assert.Equal("error", (string?)a["severity"]));
        Assert.Contains("REQUIRED_FIELD_MISSING", (string?)receiver.Alerts.Single(a => (string?)a["key"] == "dead-letters:crm")["text"], StringComparison.Ordinal);

        // A second dead letter on the same connector is the same problem: no new alert.
        await gateway.DeadLetterAsync("crm", new DeadLetter("sf_accounts", "001C", "{}", "INVALID_EMAIL_ADDRESS", null), CancellationToken.None);
        Assert.Equal(0, (await standby.EvaluateOnceAsync(CancellationToken.None)).Sent);

        // The conflict has waited longer than Alerts:ConflictWaitThreshold (the evaluator's clock).
        clock.Advance(options.ConflictWaitThreshold + TimeSpan.FromMinutes(1));
        Assert.Equal(1, (await standby.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal("conflicts:crm", (string?)receiver.Alerts.Last()["key"]);

        // Cleared: dead letters discarded, circuit closed; one "resolved" each, from whichever worker leads.
        await ExecuteAsync(source, "UPDATE cdc.dead_letters SET status = 'discarded'");
        await ExecuteAsync(source, "UPDATE cdc.connector_status SET circuit = 'closed', updated_at = now()");
        Assert.Equal(2, (await leader.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(0, (await standby.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(
            ["circuit:erp resolved", "dead-letters:crm resolved"],
            receiver.Alerts.Skip(3).Select(a => $"{a["key"]} {a["status"]}").Order());
        Assert.Equal(5, receiver.Alerts.Count);
        Assert.Empty(receiver.Refused);
    }

    [Fact]
    public async Task DriftFoundByAFullReconcile_AlertsOncePerTable_NarrowedRunsChangeNothing_ResolvedByACleanFullRun()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);
        await using var receiver = await AlertReceiver.StartAsync(Secret);
        var options = Options(receiver);
        var clock = new Clock();
        // What a scheduled reconcile records (ReconcileService): a run that found a phone differing and an account removed.
        await ExecuteAsync(source, """
            INSERT INTO cdc.reconcile_runs (run_id, trigger, status, finished_at, drift_count, open_conflicts) VALUES (901, 'schedule', 'drift', now(), 2, 1);
            INSERT INTO cdc.reconcile_findings (run_id, kind, drift, object, system, record_id, field, system_value, hub_value) VALUES
              (901, 'field_differs', true, 'ns_customers', 'netsuite', '101', 'phone', '4155550199', '4155550101'),
              (901, 'missing_in_system', true, 'sf_accounts', 'salesforce', '001A', NULL, NULL, NULL),
              (901, 'open_conflict', false, 'sf_accounts', 'salesforce', '001B', 'phone', NULL, NULL);
            """);
        using var notifier = new AlertNotifier(options);
        var evaluator = Evaluator(source, notifier, options, clock);
        Assert.Equal(2, (await evaluator.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(["drift:ns_customers", "drift:sf_accounts"], receiver.Alerts.Select(a => (string)a["key"]!).Order());
        Assert.Contains("missing_in_system", (string?)receiver.Alerts.Single(a => (string?)a["key"] == "drift:sf_accounts")["text"], StringComparison.Ordinal);
        Assert.DoesNotContain("open_conflict", string.Join(" ", receiver.Alerts.Select(a => (string?)a["text"])), StringComparison.Ordinal);

        // A reconcile of one record, and a run stopped at its API cap, looked at less than everything: nothing resolves.
        await ExecuteAsync(source, """
            INSERT INTO cdc.reconcile_runs (run_id, trigger, scope, status, finished_at) VALUES (902, 'cli', '{"record": "101"}', 'clean', now());
            INSERT INTO cdc.reconcile_runs (run_id, trigger, status, finished_at) VALUES (903, 'schedule', 'capped', now());
            """);
        Assert.Equal(0, (await evaluator.EvaluateOnceAsync(CancellationToken.None)).Sent);

        // Repaired, and the next full run is clean: one "resolved" per table.
        await ExecuteAsync(source, "INSERT INTO cdc.reconcile_runs (run_id, trigger, status, finished_at) VALUES (904, 'cli', 'clean', now())");
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(2, (await evaluator.EvaluateOnceAsync(CancellationToken.None)).Sent);
        Assert.Equal(["drift:ns_customers resolved", "drift:sf_accounts resolved"], receiver.Alerts.Skip(2).Select(a => $"{a["key"]} {a["status"]}").Order());
        Assert.Empty(receiver.Refused);
    }

    [Fact]
    public void Receiver_TamperedBodyOrWrongSecret_FailsVerification()
    {
        // The receiver the tests trust must be able to refuse: the documented verification rejects a changed body or secret.
        var body = AlertPayload.Body(new AlertMessage(7, AlertStatus.Firing, "check:x", "checks", "error", "t", DateTimeOffset.UnixEpoch, null), AlertFormat.Json, DateTimeOffset.UnixEpoch);
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var signature = AlertPayload.Sign(timestamp, body, System.Text.Encoding.UTF8.GetBytes(Secret));

        Assert.True(AlertReceiver.Verify(Secret, timestamp, body, signature));
        Assert.False(AlertReceiver.Verify(Secret, timestamp, [.. body, (byte)' '], signature));
        Assert.False(AlertReceiver.Verify("another-secret-0123456789", timestamp, body, signature));
        Assert.False(AlertReceiver.Verify(Secret, "1000000000", body, AlertPayload.Sign("1000000000", body, System.Text.Encoding.UTF8.GetBytes(Secret))));
        Assert.Equal("{\"text\":\"[ERROR] t\"}", System.Text.Encoding.UTF8.GetString(AlertPayload.Body(new AlertMessage(7, AlertStatus.Firing, "check:x", "checks", "error", "t", DateTimeOffset.UnixEpoch, null), AlertFormat.Slack, DateTimeOffset.UnixEpoch)));
    }

    private static AlertsOptions Options(AlertReceiver receiver) => new()
    {
        WebhookUrl = receiver.Url,
        Secret = receiver.Secret,
        ConflictWaitThreshold = TimeSpan.FromHours(1),
        RetryBaseDelay = TimeSpan.FromMilliseconds(10),
        RetryMaxDelay = TimeSpan.FromMilliseconds(50),
    };

    private static AlertEvaluator Evaluator(NpgsqlDataSource source, AlertNotifier notifier, AlertsOptions options, TimeProvider clock) =>
        new(source, AlertEvaluator.DefaultSources(options), notifier, options, NullLogger.Instance, clock);

    private static async Task ExecuteAsync(NpgsqlDataSource source, string sql)
    {
        await using var cmd = source.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>The evaluator's clock: starts at the real time (the database stamps rows with now()) and moves only when told.</summary>
    private sealed class Clock : TimeProvider
    {
        private DateTimeOffset _now = TimeProvider.System.GetUtcNow();

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
