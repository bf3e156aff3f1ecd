using CdcSync.Schema;
using System.Globalization;
using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Checks;

/// <summary>
/// Runs deployed checks: reads each one's view in a read-only transaction (a check can report,
/// never write), records the run in <c>cdc.check_runs</c> with the count and the first
/// <see cref="SampleRows"/> rows as JSON, and sets the check's metrics. A query that fails is a
/// run with an error, not an exception: the other checks still run. Used by <c>cdcsync checks
/// run</c> and by the worker's scheduled jobs alike.
/// </summary>
internal sealed class CheckRunner(NpgsqlDataSource hub, string runBy, TimeProvider? timeProvider = null)
{
    /// <summary>Offending rows kept per run.</summary>
    public const int SampleRows = 20;

    /// <summary>Runs kept per check; older ones are deleted after each run.</summary>
    public const int RunsKept = 500;

    /// <summary>A check running longer is cancelled by the server (statement_timeout) and recorded as failed.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>The deployed checks with their last run, by name.</summary>
    public async Task<IReadOnlyList<DeployedCheck>> ListAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        try
        {
            return (await conn.QueryAsync<DeployedCheck>(new CommandDefinition(
                """
                SELECT c.name AS "Name", c.file AS "File", c.severity AS "Severity", c.schedule AS "Schedule",
                       c.description AS "Description", c.deployed_at AS "DeployedAt",
                       r.finished_at AS "LastRunAt", r.failing_rows AS "LastFailingRows", r.error AS "LastError"
                FROM cdc.checks c
                LEFT JOIN LATERAL (SELECT * FROM cdc.check_runs x WHERE x.check_name = c.name ORDER BY x.id DESC LIMIT 1) r ON true
                ORDER BY c.name
                """, cancellationToken: cancellationToken))).ToList();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            throw new OperatorException($"The hub {HubConnection.Describe(conn.ConnectionString)} has no checks table (cdc.checks); run 'cdcsync migrate' to deploy the schema and checks/.", e);
        }
    }

    /// <summary>
    /// The sample rows of each check's last run (check name to a JSON array), masked for display: a
    /// check's row may carry a field of any table, so a field marked sensitive (<c>cdc.sensitive_fields</c>)
    /// for any table reads '***' (<c>cdc.mask_record</c>, as the audit trail and dead letters are masked).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string>> LastSamplesMaskedAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<(string Name, string Sample)>(new CommandDefinition(
            """
            WITH RECURSIVE objects AS (
                SELECT object, row_number() OVER (ORDER BY object) AS n FROM (SELECT DISTINCT object FROM cdc.sensitive_fields) o
            ), last AS (
                SELECT DISTINCT ON (check_name) check_name, sample FROM cdc.check_runs ORDER BY check_name, id DESC
            ), masked (check_name, n, sample) AS (
                SELECT check_name, 0::bigint, sample FROM last
                UNION ALL
                SELECT m.check_name, o.n, cdc.mask_record(o.object, m.sample) FROM masked m JOIN objects o ON o.n = m.n + 1
            )
            SELECT DISTINCT ON (check_name) check_name, sample::text FROM masked ORDER BY check_name, n DESC
            """, cancellationToken: cancellationToken));
        return rows.ToDictionary(r => r.Name, r => r.Sample, StringComparer.Ordinal);
    }

    public async Task<CheckRunResult> RunAsync(DeployedCheck check, CancellationToken cancellationToken)
    {
        var started = _time.GetUtcNow();
        var timestamp = _time.GetTimestamp();
        long? count = null;
        var sample = "[]";
        string? error = null;
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var view = $"{CheckDefinition.Schema}.{HubSql.Quote(check.Name)}";
        try
        {
            await using var tx = await conn.BeginTransactionAsync(cancellationToken);
            await conn.ExecuteAsync(new CommandDefinition(
                string.Create(CultureInfo.InvariantCulture, $"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {(long)Timeout.TotalMilliseconds}"),
                transaction: tx, cancellationToken: cancellationToken));
            // MATERIALIZED: the query runs once for the count and the sample.
            (count, sample) = await conn.QuerySingleAsync<(long, string)>(new CommandDefinition(
                $"""
                WITH r AS MATERIALIZED (SELECT * FROM {view})
                SELECT (SELECT count(*) FROM r),
                       (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb)::text FROM (SELECT * FROM r LIMIT @sampleRows) s)
                """, new { sampleRows = SampleRows }, tx, commandTimeout: (int)Timeout.TotalSeconds + 30, cancellationToken: cancellationToken));
            await tx.CommitAsync(cancellationToken);
        }
        catch (PostgresException e)
        {
            error = e.SqlState switch
            {
                PostgresErrorCodes.UndefinedTable when e.MessageText.Contains(check.Name, StringComparison.Ordinal)
                    => $"the view {view} does not exist; run 'cdcsync migrate' to deploy {check.File}",
                PostgresErrorCodes.QueryCanceled => $"{check.File}: ran longer than {Timeout.TotalMinutes:F0} min and was cancelled; make the query cheaper (an index, a narrower WHERE)",
                PostgresErrorCodes.ReadOnlySqlTransaction => $"{check.File}: the query tried to write ({e.MessageText}); a check may only read",
                _ => $"{check.File}: {e.MessageText}{(e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty)}",
            };
        }

        var elapsed = _time.GetElapsedTime(timestamp);
        var runId = await conn.ExecuteScalarAsync<long>(new CommandDefinition(
            """
            INSERT INTO cdc.check_runs (check_name, started_at, finished_at, failing_rows, sample, error, run_by)
            VALUES (@name, @started, @finished, @count, @sample::jsonb, @error, @runBy)
            RETURNING id
            """,
            new { name = check.Name, started, finished = started + elapsed, count, sample, error, runBy }, cancellationToken: cancellationToken));
        await conn.ExecuteAsync(new CommandDefinition(
            """
            DELETE FROM cdc.check_runs
            WHERE check_name = @name
              AND id < (SELECT id FROM cdc.check_runs WHERE check_name = @name ORDER BY id DESC OFFSET @kept LIMIT 1)
            """, new { name = check.Name, kept = RunsKept - 1 }, cancellationToken: cancellationToken));

        CheckMetrics.LastRun.WithLabels(check.Name).Set(started.ToUnixTimeMilliseconds() / 1000.0);
        CheckMetrics.Duration.WithLabels(check.Name).Set(elapsed.TotalSeconds);
        if (count is { } rows)
        {
            CheckMetrics.FailingRows.WithLabels(check.Name).Set(rows);
        }
        else
        {
            CheckMetrics.Errors.WithLabels(check.Name).Inc();
        }

        return new CheckRunResult(runId, check.Name, check.Severity, count, sample, error, started, elapsed);
    }
}
