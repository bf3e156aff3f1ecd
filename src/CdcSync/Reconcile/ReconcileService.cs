using CdcSync.Inbound;
using CdcSync.Onboarding;
using CdcSync.Resilience;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Reconcile;

/// <summary>
/// Do the systems agree with the hub? Reads every system in full into scratch rows
/// (<see cref="ReconcileLoader"/>), compares every record with its staging row field by field in
/// SQL (<c>cdc.reconcile_compare</c>, transforms/060_reconcile.sql: the comparison keys and which
/// fields count live there), keeps the run and its findings in <c>cdc.reconcile_runs</c> /
/// <c>cdc.reconcile_findings</c>, and on request repairs (<see cref="ReconcileRepairer"/>).
/// </summary>
internal sealed class ReconcileService(NpgsqlDataSource hub, ILogger<ReconcileService> logger, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    public async Task<ReconcileResult> RunAsync(
        IReadOnlyList<IInboundConnector> connectors,
        ApiCallBudget budget,
        ReconcileRequest request,
        IProgress<LoadProgress>? progress,
        CancellationToken cancellationToken)
    {
        await using (var connection = await hub.OpenConnectionAsync(cancellationToken))
        {
            await CheckAsync(connection, request, cancellationToken);
        }

        var runId = await StartAsync(request, budget, cancellationToken);
        try
        {
            var result = await RunAsync(runId, connectors, budget, request, progress, cancellationToken);
            if (request.Table is null && request.Record is null)
            {
                ReconcileMetrics.Publish(result);
            }

            return result;
        }
        catch (Exception e)
        {
            await FinishAsync(runId, ReconcileStatus.Failed, budget, 0, [], 0, FailureClassifier.Describe(e), CancellationToken.None);
            throw;
        }
        finally
        {
            await using var connection = await hub.OpenConnectionAsync(CancellationToken.None);
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM cdc.reconcile_records WHERE run_id = @runId", new { runId }, cancellationToken: CancellationToken.None));
        }
    }

    private async Task<ReconcileResult> RunAsync(long runId, IReadOnlyList<IInboundConnector> connectors, ApiCallBudget budget, ReconcileRequest request, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        var loader = new ReconcileLoader(hub);
        var read = new Dictionary<string, long>(StringComparer.Ordinal);
        var connectorOf = new Dictionary<string, string>(StringComparer.Ordinal);
        var started = _time.GetTimestamp();
        try
        {
            // Systems are read side by side, each into its own scratch rows.
            var loads = connectors.Select(c => (c.Name, Task: LoadAsync(loader, runId, c, progress, cancellationToken))).ToList();
            try
            {
                await Task.WhenAll(loads.Select(l => l.Task));
            }
            catch when (loads.Any(l => l.Task.Exception?.InnerException is ApiCallCapReachedException))
            {
                throw loads.Select(l => l.Task.Exception?.InnerException).OfType<ApiCallCapReachedException>().First();
            }

            foreach (var (name, task) in loads)
            {
                var (records, tables) = await task;
                read[name] = records;
                foreach (var table in tables)
                {
                    connectorOf[table] = name;
                }
            }
        }
        catch (ApiCallCapReachedException cap)
        {
            // A partial read would report every record not read yet as missing: compare nothing.
            logger.LogWarning("Reconcile run {RunId}: stopped at the API call cap ({Max}) before every system was read; nothing was compared", runId, cap.Max);
            await FinishAsync(runId, ReconcileStatus.Capped, budget, 0, [], 0, $"stopped at the API call cap ({cap.Max}) before every system was read", cancellationToken);
            return new ReconcileResult
            {
                RunId = runId, Status = ReconcileStatus.Capped, Repair = request.Repair, DryRun = request.DryRun,
                Read = read, ApiCalls = budget.Used, MaxApiCalls = budget.Max, ReadTime = _time.GetElapsedTime(started),
            };
        }

        var readTime = _time.GetElapsedTime(started);
        started = _time.GetTimestamp();
        await using (var connection = await hub.OpenConnectionAsync(cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "SELECT count(*) FROM cdc.reconcile_compare(@runId, @table, @record)",
                new { runId, table = request.Table, record = request.Record }, cancellationToken: cancellationToken, commandTimeout: 0));
            if (request.RecreateMissing)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE cdc.reconcile_findings SET repair = 'recreate' WHERE run_id = @runId AND kind = 'missing_in_system'",
                    new { runId }, cancellationToken: cancellationToken));
            }
        }

        var findings = await FindingsAsync(runId, masked: false, cancellationToken);
        var compareTime = _time.GetElapsedTime(started);
        IReadOnlyList<RepairAction> repairs = [];
        var repaired = 0;
        if (request.Repair && findings.Any(f => f.Drift))
        {
            var repairer = new ReconcileRepairer(hub, _time);
            var plan = await repairer.PlanAsync(runId, connectorOf, cancellationToken);
            repairs = plan.Select(p => p.Action).ToList();
            if (!request.DryRun)
            {
                repaired = await repairer.ApplyAsync(runId, plan, cancellationToken);
            }
        }

        var drift = findings.Count(f => f.Drift);
        var status = drift > 0 ? ReconcileStatus.Drift : ReconcileStatus.Clean;
        await FinishAsync(runId, status, budget, read.Values.Sum(), findings, repaired, null, cancellationToken);
        logger.LogInformation(
            "Reconcile run {RunId}: {Records} records read with {ApiCalls} API calls; {Drift} drift findings, {Conflicts} open conflicts{Repair}",
            runId, read.Values.Sum(), budget.Used, drift, findings.Count(f => f.Kind == "open_conflict"),
            !request.Repair ? "" : request.DryRun ? $"; {repairs.Count} repair writes listed (dry run: none made)" : $"; {repaired} repair writes made");
        return new ReconcileResult
        {
            RunId = runId,
            Status = status,
            Repair = request.Repair,
            DryRun = request.DryRun,
            Read = read,
            ApiCalls = budget.Used,
            MaxApiCalls = budget.Max,
            Findings = findings,
            Repairs = repairs,
            ReadTime = readTime,
            CompareTime = compareTime,
        };
    }

    private static async Task<(long Records, IReadOnlySet<string> Tables)> LoadAsync(ReconcileLoader loader, long runId, IInboundConnector connector, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        try
        {
            return await loader.LoadAsync(runId, connector, progress, cancellationToken);
        }
        catch (Exception e) when (e is not (OperationCanceledException or OperatorException or NpgsqlException or ApiCallCapReachedException))
        {
            throw new OperatorException(
                $"Reconcile {connector.Name}: reading the system failed: {FailureClassifier.Describe(e)}",
                e,
                transient: FailureClassifier.Classify(e) != FailureKind.Permanent);
        }
    }

    private static async Task CheckAsync(NpgsqlConnection connection, ReconcileRequest request, CancellationToken cancellationToken)
    {
        if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                "SELECT to_regprocedure('cdc.reconcile_compare(bigint,text,text)') IS NOT NULL AND to_regclass('cdc.reconcile_runs') IS NOT NULL", cancellationToken: cancellationToken)))
        {
            throw new OperatorException("the hub has no reconcile functions (cdc.reconcile_compare); run 'cdcsync migrate' with this version first.");
        }

        if (request.Table is { } table)
        {
            var tables = (await connection.QueryAsync<string>(new CommandDefinition("SELECT object FROM cdc.sync_tables ORDER BY object", cancellationToken: cancellationToken))).AsList();
            if (!tables.Contains(table, StringComparer.Ordinal))
            {
                throw new OperatorException($"--table {table}: not a staging table under sync; use one of: {string.Join(", ", tables)}.");
            }
        }
    }

    private async Task<long> StartAsync(ReconcileRequest request, ApiCallBudget budget, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            """
            INSERT INTO cdc.reconcile_runs (trigger, scope, repair, dry_run, max_api_calls)
            VALUES (@trigger, jsonb_strip_nulls(jsonb_build_object('table', @table::text, 'record', @record::text)), @repair, @dryRun, @max)
            RETURNING run_id
            """,
            new { trigger = request.Trigger, table = request.Table, record = request.Record, repair = request.Repair, dryRun = request.DryRun, max = budget.Max },
            cancellationToken: cancellationToken));
    }

    private async Task FinishAsync(long runId, string status, ApiCallBudget budget, long records, IReadOnlyList<ReconcileFinding> findings, int repaired, string? error, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE cdc.reconcile_runs
               SET finished_at = now(), status = @status, records_read = @records, drift_count = @drift, open_conflicts = @conflicts,
                   repaired = @repaired, api_calls = @calls, error = @error
             WHERE run_id = @runId
            """,
            new
            {
                runId, status, records, drift = (long)findings.Count(f => f.Drift), conflicts = (long)findings.Count(f => f.Kind == "open_conflict"),
                repaired = (long)repaired, calls = budget.Used, error,
            },
            cancellationToken: cancellationToken));
    }

    /// <summary>The newest runs, newest first (the console's drift page).</summary>
    public async Task<IReadOnlyList<ReconcileRun>> RunsAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReconcileRun>(new CommandDefinition(
            """
            SELECT run_id AS RunId, started_at AS StartedAt, finished_at AS FinishedAt, trigger AS Trigger, scope::text AS Scope,
                   repair AS Repair, dry_run AS DryRun, status AS Status, records_read AS RecordsRead, drift_count AS DriftCount,
                   open_conflicts AS OpenConflicts, repaired AS Repaired, api_calls AS ApiCalls, max_api_calls AS MaxApiCalls, error AS Error
              FROM cdc.reconcile_runs
             ORDER BY run_id DESC
             LIMIT @limit
            """,
            new { limit }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>
    /// What run <paramref name="runId"/> found, drift first. <paramref name="masked"/>: values of
    /// fields marked sensitive (<c>cdc.sensitive_fields</c>) read '***', as the audit trail shows them.
    /// </summary>
    public async Task<IReadOnlyList<ReconcileFinding>> FindingsAsync(long runId, bool masked, CancellationToken cancellationToken)
    {
        var values = masked
            ? """
              CASE WHEN field IS NULL THEN system_value ELSE cdc.mask_record(object, jsonb_build_object(field, system_value)) ->> field END AS SystemValue,
              CASE WHEN field IS NULL THEN hub_value ELSE cdc.mask_record(object, jsonb_build_object(field, hub_value)) ->> field END AS HubValue
              """
            : "system_value AS SystemValue, hub_value AS HubValue";
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReconcileFinding>(new CommandDefinition(
            $"""
            SELECT id AS Id, kind AS Kind, drift AS Drift, object AS Object, system AS System, hub_id AS HubId, record_id AS RecordId,
                   link_id AS LinkId, field AS Field, {values},
                   system_modified_at AS SystemModifiedAt, hub_modified_at AS HubModifiedAt, repair AS Repair, repaired_at AS RepairedAt
              FROM cdc.reconcile_findings
             WHERE run_id = @runId
             ORDER BY drift DESC, kind, object, record_id, field
            """,
            new { runId }, cancellationToken: cancellationToken))).AsList();
    }
}
