using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using OpenQA.Selenium;

namespace CdcSync.Tests.WebConsole;

/// <summary>
/// The console in a real browser (headless Chromium) over the real worker and both sandboxes:
/// sign-in, a held conflict decided by a click reaching both systems, a dead letter retried and
/// re-sent, a record found by its NetSuite id, a viewer refused, every screen usable at 1280 px and
/// at phone width. Screenshots go to $CDCSYNC_CONSOLE_SCREENSHOTS (docs/console to refresh the docs'), else a temp folder.
/// </summary>
public sealed class ConsoleBrowserTests(ConsoleRig rig) : IClassFixture<ConsoleRig>
{
    private ConsoleBrowser Browser => rig.Browser;

    [Fact]
    public async Task WithoutSignIn_EveryPageSendsToTheLoginForm_AndShowsNoPipelineData()
    {
        await rig.AddDeadLetterAsync("INVALID_FLD_VALUE: only for signed-in eyes");
        Browser.Go("/login");
        Browser.Driver.Manage().Cookies.DeleteAllCookies();
        foreach (var page in new[] { "/", "/conflicts", "/deadletters", "/record?id=" + rig.Customer, "/matches", "/drift", "/checks" })
        {
            Browser.Go(page);
            Assert.Contains("/login", Browser.Url, StringComparison.Ordinal);
            Assert.DoesNotContain("only for signed-in eyes", Browser.Driver.PageSource, StringComparison.Ordinal);
            Assert.DoesNotContain("Console Co", Browser.Driver.PageSource, StringComparison.Ordinal);
            Assert.DoesNotContain("netsuite", Browser.Driver.PageSource, StringComparison.Ordinal);
        }

        Browser.SignIn(ConsoleRig.OperatorName, "not the password at all");
        Assert.True(Browser.Has("problem"));
        Assert.False(Browser.Has("signed-in-as"));

        Browser.SignIn(ConsoleRig.OperatorName, ConsoleRig.Password);
        Assert.Equal("olga (operator)", Browser.Driver.FindElement(By.Id("signed-in-as")).Text);
        Assert.True(Browser.Has("connector-salesforce"));
        Assert.True(Browser.Has("connector-netsuite"));

        Browser.Driver.FindElement(By.CssSelector("header form button")).Click();
        Browser.Until(d => d.Url.Contains("/login", StringComparison.Ordinal), "the sign-out");
        Browser.Go("/deadletters");
        Assert.Contains("/login", Browser.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reviewer_ResolvesAHeldConflictByClicking_AndBothSandboxesGetTheDecision()
    {
        // The same phone edited in both systems while the worker is down; NetSuite's a second later.
        await rig.StopWorkerAsync();
        rig.Salesforce.Update(rig.Account, new JsonObject { ["Phone"] = "(415) 555-0177" });
        await Task.Delay(TimeSpan.FromSeconds(1.2));      // NetSuite stamps whole seconds
        rig.NetSuite.EditRecord("customer", rig.Customer, new JsonObject { ["phone"] = "4155550188" });
        await rig.CatchUpAsync();
        await rig.StartWorkerAsync();
        var conflicts = new ConflictService(rig.Hub);
        ConflictRecord? open = null;
        await rig.WaitAsync("a conflict held for review", async () =>
            (open = (await conflicts.ListAsync(false, null, 10, CancellationToken.None)).FirstOrDefault(c => c.Field == "phone")) is not null);

        Browser.SignIn(ConsoleRig.ReviewerName, ConsoleRig.Password);
        Browser.Go("/conflicts");
        var section = Browser.Driver.FindElement(By.Id($"conflict-{open!.Id}")).Text;
        Assert.Contains("held for review", section, StringComparison.Ordinal);
        Assert.Contains("manual", section, StringComparison.Ordinal);
        Assert.Contains("Base (last agreed)", section, StringComparison.Ordinal);
        Screenshots.Save(Browser, "conflicts");
        Browser.Click($"take-salesforce-{open.Id}");
        Browser.Until(d => d.FindElements(By.Id("message")).Count > 0 || d.FindElements(By.Id("problem")).Count > 0, "the decision's outcome");
        Assert.Contains($"Conflict {open.Id} resolved", Browser.Driver.FindElement(By.Id("message")).Text, StringComparison.Ordinal);

        await rig.WaitAsync("both systems to hold the decision", () => Task.FromResult(
            Digits(rig.Salesforce.Get(rig.Account)?["Phone"]) == "4155550177" && Digits(rig.NetSuite.GetCustomer(rig.Customer)?["phone"]) == "4155550177"));
        var decided = await conflicts.GetAsync(open.Id, CancellationToken.None);
        Assert.Equal(("resolved", "console:rita"), (decided!.Status, decided.ResolvedBy));
        Assert.Equal("rita", await rig.ScalarAsync<string>(
            "SELECT actor FROM cdc.audit_log WHERE direction = 'operator' AND operation = 'resolve conflict' AND record_key = $1", open.RecordKey));
    }

    [Fact]
    public async Task Operator_RetriesADeadLetter_TheWorkerResendsItToNetSuite_AndSensitiveFieldsStayMasked()
    {
        var id = await rig.AddDeadLetterAsync("INVALID_FLD_VALUE: rejected once");
        Browser.SignIn(ConsoleRig.OperatorName, ConsoleRig.Password);
        Browser.Go("/deadletters");
        var row = Browser.Driver.FindElement(By.Id($"deadletter-{id}")).Text;
        Assert.Contains("INVALID_FLD_VALUE: rejected once", row, StringComparison.Ordinal);
        Assert.Contains("\"***\"", row, StringComparison.Ordinal);
        Assert.DoesNotContain("secret.person", Browser.Driver.PageSource, StringComparison.Ordinal);
        Screenshots.Save(Browser, "deadletters");

        var writes = rig.NetSuite.Stats.Writes;
        Browser.Click($"select-{id}");
        Browser.Click("retry");
        Browser.Until(d => d.FindElements(By.Id("message")).Count > 0 || d.FindElements(By.Id("problem")).Count > 0, "the retry's outcome");
        Assert.Contains("1 dead letter(s) queued for retry", Browser.Driver.FindElement(By.Id("message")).Text, StringComparison.Ordinal);
        Assert.Equal("retried", await rig.ScalarAsync<string>("SELECT status FROM cdc.dead_letters WHERE id = $1", id));
        await rig.WaitAsync("the worker to re-send the record to NetSuite", async () =>
            await rig.ScalarAsync<string>("SELECT status FROM cdc.resync_jobs WHERE connector = 'netsuite' ORDER BY id DESC LIMIT 1") == "done"
            && rig.NetSuite.Stats.Writes > writes);
        Assert.Equal("olga", await rig.ScalarAsync<string>(
            "SELECT actor FROM cdc.audit_log WHERE direction = 'operator' AND operation = 'retry dead letter' AND changes ->> 'dead_letter' = $1", id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void RecordLookup_ByNetSuiteId_ShowsTheLinkedRecords_TheirValues_AndTheJourney()
    {
        Browser.SignIn(ConsoleRig.ViewerName, ConsoleRig.Password);
        Browser.Go("/record");
        Browser.Driver.FindElement(By.Id("id")).SendKeys(rig.Customer.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Browser.Click("look-up");
        Browser.Until(d => d.FindElements(By.Id("identities")).Count > 0 || d.FindElements(By.Id("not-found")).Count > 0, "the lookup");
        var identities = Browser.Driver.FindElement(By.Id("identities")).Text;
        Assert.Contains("salesforce", identities, StringComparison.Ordinal);
        Assert.Contains("netsuite", identities, StringComparison.Ordinal);
        Assert.Contains(rig.Account, identities, StringComparison.Ordinal);
        Assert.Contains(rig.AccountHubId.ToString(), identities, StringComparison.Ordinal);
        Assert.Contains("Console Co", Browser.Driver.FindElement(By.Id("values-sf_accounts")).Text, StringComparison.Ordinal);
        Assert.Contains("Console Co", Browser.Driver.FindElement(By.Id("values-ns_customers")).Text, StringComparison.OrdinalIgnoreCase);
        var journey = Browser.Driver.FindElement(By.Id("timeline")).Text;
        Assert.Contains("inbound", journey, StringComparison.Ordinal);
        Assert.Contains("outbound", journey, StringComparison.Ordinal);
        Screenshots.Save(Browser, "record");
    }

    [Fact]
    public async Task Viewer_SeesNoActions_AndIsRefusedWhenPostingOneAnyway()
    {
        var id = await rig.AddDeadLetterAsync("INVALID_FLD_VALUE: viewer test");
        Browser.SignIn(ConsoleRig.ViewerName, ConsoleRig.Password);
        Browser.Go("/deadletters");
        Assert.True(Browser.Has($"deadletter-{id}"));
        Assert.False(Browser.Has("retry"));
        Assert.False(Browser.Has($"select-{id}"));

        // The form a viewer is not given, posted anyway with the session's own antiforgery token (the sign-out form's).
        Browser.Driver.ExecuteScript(
            """
            const form = document.createElement('form');
            form.method = 'post';
            form.action = '/deadletters?handler=Retry';
            const token = document.querySelector('header form input[name=__RequestVerificationToken]').value;
            for (const [name, value] of [['ids', arguments[0]], ['__RequestVerificationToken', token]]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
            """, id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Browser.Until(d => d.Url.Contains("/denied", StringComparison.Ordinal), "the refusal");
        Assert.Contains("Your role (viewer) cannot do this", Browser.Text, StringComparison.Ordinal);
        Assert.Equal("open", await rig.ScalarAsync<string>("SELECT status FROM cdc.dead_letters WHERE id = $1", id));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE actor = 'vic'"));
    }

    [Fact]
    public async Task EveryScreen_IsUsableAt1280PxAndAtPhoneWidth_WithoutSidewaysScrolling()
    {
        await rig.AddDeadLetterAsync("INVALID_FLD_VALUE: a long reason a system gives when it rejects a record, to see it wrap on a phone");
        Browser.SignIn(ConsoleRig.OperatorName, ConsoleRig.Password);
        await rig.WaitAsync("the worker's status history", async () => await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.status_history") >= 4);
        // A run as the scheduler records it (Scheduling/JobScheduler): its last run is on the overview.
        await rig.ExecuteAsync("INSERT INTO cdc.job_runs (slot, job, worker, started_at, finished_at, outcome) VALUES ('console_browser', 'audit-purge', 'vm:1', now() - interval '5 minutes', now() - interval '4 minutes', '12 rows purged')");
        var pages = new[] { ("overview", "/"), ("conflicts-all", "/conflicts?all=true"), ("deadletters-all", "/deadletters?all=true"), ("record-lookup", "/record?id=" + rig.Customer), ("matches", "/matches") };
        try
        {
            foreach (var (name, path) in pages)
            {
                Browser.Go(path);
                if (Browser.OverflowAt(1280, 900) is { } wide)
                {
                    Assert.Fail($"{path} scrolls sideways at 1280 px: {wide}");
                }

                if (Browser.OverflowAt(390, 844) is { } phone)
                {
                    Assert.Fail($"{path} scrolls sideways at 390 px (a phone): {phone}");
                }

                Screenshots.Save(Browser, name + "-phone");
                Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 900);
            }

            Browser.Go("/");
            Assert.Contains("12 rows purged", Browser.Driver.FindElement(By.Id("scheduled")).Text, StringComparison.Ordinal);
            Assert.Contains("<svg class=\"chart\"", Browser.Driver.PageSource, StringComparison.Ordinal);
            Assert.Contains("<polyline", Browser.Driver.PageSource, StringComparison.Ordinal);
            Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 1500);
            Screenshots.Save(Browser, "overview");
            Browser.Go("/matches");
            Screenshots.Save(Browser, "matches");
            Browser.Go("/login");
            Browser.Driver.Manage().Cookies.DeleteAllCookies();
            Browser.Go("/login");
            Screenshots.Save(Browser, "login");
        }
        finally
        {
            Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 900);
        }
    }

    [Fact]
    public async Task DriftAndChecks_ShowTheLastReconcileAndCheckRuns_OperatorsRunACheckNow_ViewersOnlyLook()
    {
        // A finished scheduled reconcile run as ReconcileService records it, and a check run as CheckRunner does.
        var run = await rig.ScalarAsync<long>(
            """
            INSERT INTO cdc.reconcile_runs (started_at, finished_at, trigger, status, records_read, drift_count, open_conflicts, api_calls, max_api_calls)
            VALUES (now() - interval '3 minutes', now() - interval '2 minutes', 'schedule', 'drift', 4, 3, 0, 17, 500) RETURNING run_id
            """);
        await rig.ExecuteAsync(
            """
            INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, hub_id, record_id, field, system_value, hub_value, system_modified_at, hub_modified_at, repair)
            VALUES ($1, 'field_differs', 'sf_accounts', 'salesforce', $2, $3, 'billingcity', 'Berkeley', 'Oakland', '2026-03-01 10:00:00+00', '2026-02-01 09:00:00+00', 'late_edit'),
                   ($1, 'field_differs', 'sf_accounts', 'salesforce', $2, $3, 'email', 'secret.drift@example.com', 'old.drift@example.com', '2026-03-01 10:00:00+00', '2026-02-01 09:00:00+00', 'late_edit'),
                   ($1, 'missing_in_hub', 'ns_customers', 'netsuite', NULL, '990077', NULL, NULL, NULL, '2026-03-02 08:00:00+00', NULL, 'late_create'),
                   ($1, 'unlinked', 'ns_customers', 'netsuite', $2, '990088', NULL, NULL, NULL, NULL, NULL, NULL)
            """, run, rig.AccountHubId, rig.Account);
        var check = await rig.ScalarAsync<string>("SELECT name FROM cdc.checks WHERE name = 'phones_not_normalized'");
        Assert.NotNull(check);
        await rig.ExecuteAsync(
            """
            INSERT INTO cdc.check_runs (check_name, started_at, finished_at, failing_rows, sample, run_by)
            VALUES ($1, now() - interval '1 minute', now() - interval '1 minute', 2,
                    '[{"object": "sf_accounts", "phone": "555-01", "email": "secret.sample@example.com"}, {"object": "ns_customers", "phone": "12", "email": null}]', 'worker vm:1')
            """, check!);

        Browser.SignIn(ConsoleRig.OperatorName, ConsoleRig.Password);
        Browser.Go("/");
        var summary = Browser.Driver.FindElement(By.Id("reconcile-checks")).Text;
        Assert.Contains($"run {run} (schedule)", summary, StringComparison.Ordinal);
        Assert.Contains("3 drift finding(s)", summary, StringComparison.Ordinal);
        Assert.Contains("phones_not_normalized (2, warning)", summary, StringComparison.Ordinal);

        Browser.Go("/drift");
        Assert.Contains("17 of 500", Browser.Driver.FindElement(By.Id($"run-{run}")).Text, StringComparison.Ordinal);
        var differs = Browser.Driver.FindElement(By.Id("kind-field_differs")).Text;
        Assert.Contains("Berkeley", differs, StringComparison.Ordinal);
        Assert.Contains("Oakland", differs, StringComparison.Ordinal);
        Assert.Contains("2026-03-01 10:00:00", differs, StringComparison.Ordinal);
        Assert.Contains("2026-02-01 09:00:00", differs, StringComparison.Ordinal);
        Assert.Contains("late edit", differs, StringComparison.Ordinal);
        Assert.Contains($"cdcsync reconcile --config FILE --record {rig.Account} --repair", differs, StringComparison.Ordinal);
        Assert.Contains("late creation", Browser.Driver.FindElement(By.Id("kind-missing_in_hub")).Text, StringComparison.Ordinal);
        Assert.Contains("an operator's decision", Browser.Driver.FindElement(By.Id("kind-unlinked")).Text, StringComparison.Ordinal);
        Assert.Equal("cdcsync reconcile --config FILE --repair", Browser.Driver.FindElement(By.Id("run-command")).Text);
        Assert.DoesNotContain("secret.drift", Browser.Driver.PageSource, StringComparison.Ordinal);
        Assert.Null(Browser.OverflowAt(390, 844));
        Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 1400);
        Screenshots.Save(Browser, "drift");
        Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 900);

        Browser.Go("/checks");
        var sample = Browser.Driver.FindElement(By.Id($"sample-{check}")).Text;
        Assert.Contains("555-01", sample, StringComparison.Ordinal);
        Assert.Contains("***", sample, StringComparison.Ordinal);
        Assert.DoesNotContain("secret.sample", Browser.Driver.PageSource, StringComparison.Ordinal);
        Assert.Null(Browser.OverflowAt(390, 844));
        Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 1100);
        Screenshots.Save(Browser, "checks");
        Browser.Driver.Manage().Window.Size = new System.Drawing.Size(1280, 900);
        Browser.Click($"run-{check}");
        Browser.Until(d => d.FindElements(By.Id("message")).Count > 0 || d.FindElements(By.Id("problem")).Count > 0, "the check's run");
        Assert.Contains($"Check {check} ran: 0 failing row(s)", Browser.Driver.FindElement(By.Id("message")).Text, StringComparison.Ordinal);
        Assert.False(Browser.Has($"sample-{check}"));
        Assert.Equal("console:olga", await rig.ScalarAsync<string>("SELECT run_by FROM cdc.check_runs WHERE check_name = $1 ORDER BY id DESC LIMIT 1", check));
        Assert.Equal("olga", await rig.ScalarAsync<string>("SELECT actor FROM cdc.audit_log WHERE direction = 'operator' AND operation = 'run check' AND record_key = $1", check));

        Browser.SignIn(ConsoleRig.ViewerName, ConsoleRig.Password);
        Browser.Go("/checks");
        Assert.True(Browser.Has($"check-{check}"));
        Assert.False(Browser.Has($"run-{check}"));
        Browser.Go("/drift");
        Assert.True(Browser.Has("kind-field_differs"));
        Assert.False(Browser.Has("run-command"));
        Assert.Empty(Browser.Driver.FindElements(By.CssSelector("[id^=command-]")));
    }

    [Fact]
    public async Task Operator_RepairsARecordsDrift_FromTheDriftPage_ThroughTheReconcileEngine_Audited()
    {
        // Drift: the hub's billing city changed as if Salesforce had sent it, while Salesforce still holds the old one.
        await using (var session = await CdcSync.Hub.ReplicationOrigins.OpenAsync(rig.Hub, "salesforce", CancellationToken.None))
        {
            await using var cmd = new Npgsql.NpgsqlCommand("UPDATE sf_accounts SET billingcity = 'Hubtown' WHERE id = $1", session.Connection);
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = rig.Account });
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }

        await rig.QuietAsync();
        var budget = new CdcSync.Reconcile.ApiCallBudget(null);
        using (var readers = CdcSync.Reconcile.ReconcileConnectors.Create(rig.Options, rig.Hub, budget, rig.Logs.Factory))
        {
            await new CdcSync.Reconcile.ReconcileService(rig.Hub, Microsoft.Extensions.Logging.Abstractions.NullLogger<CdcSync.Reconcile.ReconcileService>.Instance)
                .RunAsync(readers.Connectors, budget, new CdcSync.Reconcile.ReconcileRequest { Trigger = "schedule" }, null, CancellationToken.None);
        }

        var finding = await rig.ScalarAsync<long>(
            "SELECT id FROM cdc.reconcile_findings WHERE kind = 'field_differs' AND object = 'sf_accounts' AND record_id = $1 AND field = 'billingcity' ORDER BY id DESC LIMIT 1", rig.Account);
        Browser.SignIn(ConsoleRig.OperatorName, ConsoleRig.Password);
        Browser.Go("/drift");
        var row = Browser.Driver.FindElement(By.Id($"finding-{finding}")).Text;
        Assert.Contains("Oakland", row, StringComparison.Ordinal);
        Assert.Contains("Hubtown", row, StringComparison.Ordinal);
        Browser.Click($"repair-{finding}");
        Browser.Until(d => d.FindElements(By.Id("message")).Count > 0 || d.FindElements(By.Id("problem")).Count > 0, "the repair's outcome");
        Assert.Contains("1 repair write(s) made", Browser.Driver.FindElement(By.Id("message")).Text, StringComparison.Ordinal);
        Assert.Equal("Oakland", await rig.ScalarAsync<string>("SELECT billingcity FROM sf_accounts WHERE id = $1", rig.Account));
        Assert.Equal(1L, await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.audit_log WHERE operation = 'reconcile:late_edit' AND record_id = $1", rig.Account));
        Assert.Equal("olga", await rig.ScalarAsync<string>("SELECT actor FROM cdc.audit_log WHERE direction = 'operator' AND operation = 'reconcile repair' AND record_id = $1", rig.Account));
        await rig.QuietAsync();
    }

    private static string Digits(JsonNode? phone) => new((phone?.ToString() ?? "").Where(char.IsAsciiDigit).ToArray());
}

/// <summary>Where the browser tests leave their screenshots: $CDCSYNC_CONSOLE_SCREENSHOTS, else a temp folder.</summary>
internal static class Screenshots
{
    public static readonly string Folder = Environment.GetEnvironmentVariable("CDCSYNC_CONSOLE_SCREENSHOTS") is { Length: > 0 } folder
        ? Path.Combine(CdcSync.Tests.Infrastructure.Repo.Root, folder)
        : Path.Combine(Path.GetTempPath(), "cdcsync-console-screenshots");

    public static void Save(ConsoleBrowser browser, string name)
    {
        Directory.CreateDirectory(Folder);
        browser.Screenshot(Path.Combine(Folder, name + ".png"));
    }
}
