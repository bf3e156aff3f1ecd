using CdcSync.Inbound;
using CdcSync.Resilience;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Onboarding;

/// <summary>
/// Onboarding of systems that already hold data: begin -> load each system completely -> loaded ->
/// match -> report -> settle, over the hub's SQL API (<c>cdc.onboard_*</c>, transforms/). The
/// deciding (match rules, merge rules) is SQL; this moves the rows and calls it. Resumable: the
/// phases live in <c>cdc.onboarding</c> and each page's cursor is stored with the page, so a second
/// run after a kill loads from where the first stopped and matches once every system is loaded.
/// </summary>
internal sealed class OnboardingService(NpgsqlDataSource hub, ILogger<OnboardingService> logger, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    private readonly OnboardingLoader _loader = new();

    /// <summary>Whether the hub has the onboarding SQL API (a hub migrated by this version).</summary>
    public async Task<bool> IsAvailableAsync(CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return await IsAvailableAsync(connection, cancellationToken);
    }

    /// <summary>
    /// The connectors among <paramref name="connectors"/> that need onboarding: never onboarded and
    /// without a cursor (the first start, a system added later), or an onboarding not settled yet
    /// (interrupted). A connector with a cursor from before onboarding existed counts as onboarded.
    /// </summary>
    public async Task<IReadOnlyList<string>> PendingAsync(IEnumerable<string> connectors, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return (await StatesAsync(connection, connectors.ToList(), cancellationToken)).Where(s => s.Pending).Select(s => s.Connector).ToList();
    }

    /// <summary>
    /// Onboards the connectors of <paramref name="connectors"/> that need it. Unless <paramref name="dryRun"/>,
    /// the slot must already exist: settling writes rows the systems must receive.
    /// </summary>
    public async Task<OnboardingResult> RunAsync(IReadOnlyList<IInboundConnector> connectors, bool dryRun, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        await using var scope = await OnboardingHub.OpenAsync(hub, dryRun, cancellationToken);
        if (!await scope.UseAsync(c => IsAvailableAsync(c, cancellationToken), cancellationToken))
        {
            throw new OperatorException("the hub has no onboarding functions (cdc.onboard_begin); run 'cdcsync migrate' with this version first.");
        }

        var states = await scope.UseAsync(c => StatesAsync(c, connectors.Select(x => x.Name).ToList(), cancellationToken), cancellationToken);
        var pending = states.Where(s => s.Pending).ToList();
        if (pending.Count == 0)
        {
            return new OnboardingResult
            {
                DryRun = dryRun,
                OpenReviews = await scope.UseAsync(c => OpenReviewsAsync(c, cancellationToken), cancellationToken),
                IsSettled = !dryRun,
            };
        }

        // Every system enters onboarding before any is loaded: from then on the transforms hold
        // unlinked records instead of creating their counterparts on the other side.
        foreach (var state in pending.Where(s => s.Phase is not ("loading" or "loaded")))
        {
            await scope.UseAsync(c => c.ExecuteAsync(new CommandDefinition("SELECT cdc.onboard_begin(@connector)", new { connector = state.Connector }, cancellationToken: cancellationToken)), cancellationToken);
            logger.LogInformation("Onboarding {Connector}: loading it into the hub", state.Connector);
        }

        var toLoad = pending.Where(s => s.Phase != "loaded").Select(s => connectors.First(c => c.Name == s.Connector)).ToList();
        var loaded = new Dictionary<string, long>(StringComparer.Ordinal);
        // Systems load side by side (in a dry run their pages take turns on its one connection).
        var started = _time.GetTimestamp();
        var loads = toLoad.Select(c => (c.Name, Task: LoadAsync(c, scope, progress, cancellationToken))).ToList();
        await Task.WhenAll(loads.Select(l => l.Task));
        foreach (var (name, task) in loads)
        {
            loaded[name] = await task;
        }

        var loadTime = _time.GetElapsedTime(started);
        started = _time.GetTimestamp();
        var matched = await scope.UseAsync(async c => (await c.QueryAsync<OnboardingOutcome>(new CommandDefinition(
            "SELECT outcome AS Outcome, object AS Object, count AS Count FROM cdc.onboard_match()", cancellationToken: cancellationToken, commandTimeout: 0))).AsList(), cancellationToken);
        var report = await scope.UseAsync(c => ReportAsync(c, cancellationToken), cancellationToken);
        var matchTime = _time.GetElapsedTime(started);
        started = _time.GetTimestamp();
        IReadOnlyList<OnboardingOutcome> settled = [];
        if (!dryRun)
        {
            settled = await scope.UseAsync(async c => (await c.QueryAsync<OnboardingOutcome>(new CommandDefinition(
                "SELECT outcome AS Outcome, object AS Object, count AS Count FROM cdc.onboard_settle()", cancellationToken: cancellationToken, commandTimeout: 0))).AsList(), cancellationToken);
        }

        var settleTime = _time.GetElapsedTime(started);
        var open = await scope.UseAsync(c => OpenReviewsAsync(c, cancellationToken), cancellationToken);
        logger.LogInformation(
            "Onboarding {Connectors}: {Matched} pairs matched, {Review} held for review, {ToSalesforce} to create in Salesforce, {ToNetSuite} to create in NetSuite, {Differences} field differences{DryRun}",
            string.Join(", ", pending.Select(p => p.Connector)), Count(report, "matched"), Count(report, "review"), Count(report, "create_in_salesforce"), Count(report, "create_in_netsuite"), Count(report, "difference"), dryRun ? " (dry run: nothing written)" : "");
        return new OnboardingResult
        {
            DryRun = dryRun,
            Connectors = pending.Select(p => p.Connector).ToList(),
            Loaded = loaded,
            Matched = matched,
            Report = report,
            Settled = settled,
            OpenReviews = open,
            IsSettled = !dryRun,
            LoadTime = loadTime,
            MatchTime = matchTime,
            SettleTime = settleTime,
        };
    }

    private async Task<long> LoadAsync(IInboundConnector connector, OnboardingHub scope, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        long records;
        try
        {
            records = await _loader.LoadAsync(connector, scope, progress, cancellationToken);
        }
        catch (Exception e) when (e is not (OperationCanceledException or OperatorException or NpgsqlException))
        {
            throw new OperatorException(
                $"Onboarding {connector.Name}: reading the system failed: {FailureClassifier.Describe(e)}" + (scope.DryRun ? "" : "; run it again to resume after the last page loaded."),
                e,
                transient: FailureClassifier.Classify(e) != FailureKind.Permanent);
        }

        await scope.UseAsync(c => c.ExecuteAsync(new CommandDefinition("SELECT cdc.onboard_loaded(@connector, @records)", new { connector = connector.Name, records }, cancellationToken: cancellationToken)), cancellationToken);
        logger.LogInformation("Onboarding {Connector}: loaded ({Count} records read)", connector.Name, records);
        return records;
    }

    private static int Count(IReadOnlyList<ReportLine> report, string section) => report.Count(l => l.Section == section);

    private static async Task<bool> IsAvailableAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT to_regprocedure('cdc.onboard_begin(text)') IS NOT NULL AND to_regclass('cdc.onboarding') IS NOT NULL", cancellationToken: cancellationToken));

    private static async Task<IReadOnlyList<ConnectorState>> StatesAsync(NpgsqlConnection connection, IReadOnlyList<string> connectors, CancellationToken cancellationToken)
    {
        if (!await IsAvailableAsync(connection, cancellationToken))
        {
            return [];
        }

        var rows = await connection.QueryAsync<ConnectorState>(new CommandDefinition(
            """
            SELECT c.name AS Connector, o.phase AS Phase, EXISTS (SELECT 1 FROM cdc.inbound_cursors k WHERE k.connector = c.name AND k.object = '*') AS HasCursor
            FROM unnest(@connectors::text[]) WITH ORDINALITY AS c(name, n)
            LEFT JOIN cdc.onboarding o ON o.connector = c.name
            ORDER BY c.n
            """,
            new { connectors = connectors.ToArray() }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    private static async Task<IReadOnlyList<ReportLine>> ReportAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // The contract allows a view or a set-returning function.
        var source = await connection.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regprocedure('cdc.onboard_report()') IS NOT NULL", cancellationToken: cancellationToken))
            ? "cdc.onboard_report()"
            : "cdc.onboard_report";
        var rows = await connection.QueryAsync<ReportLine>(new CommandDefinition(
            $"""
            SELECT section AS Section, object AS Object, hub_id AS HubId, other_object AS OtherObject, other_hub_id AS OtherHubId,
                   label AS Label, field AS Field, value AS Value, other_value AS OtherValue, settlement AS Settlement, score AS Score
            FROM {source} r
            ORDER BY CASE section WHEN 'matched' THEN 1 WHEN 'review' THEN 2 WHEN 'create_in_salesforce' THEN 3 WHEN 'create_in_netsuite' THEN 4 ELSE 5 END,
                     label, hub_id, field
            """,
            cancellationToken: cancellationToken, commandTimeout: 0));
        return rows.AsList();
    }

    private static async Task<long> OpenReviewsAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(DISTINCT (object_a, hub_a)) FROM cdc.match_candidates WHERE status = 'review'", cancellationToken: cancellationToken));

    private sealed record ConnectorState
    {
        public string Connector { get; init; } = "";
        public string? Phase { get; init; }
        public bool HasCursor { get; init; }

        public bool Pending => Phase is null ? !HasCursor : Phase != "settled";
    }
}
