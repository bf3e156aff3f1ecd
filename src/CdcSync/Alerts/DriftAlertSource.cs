using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>
/// Drift found by the latest reconcile of everything (scheduled or `cdcsync reconcile` without
/// --table or --record), one problem per table (<c>drift:TABLE</c>): it opens when a run finds
/// drift there and clears when a later full run does not. Narrowed, capped and failed runs
/// change nothing (they did not look at everything).
/// </summary>
internal sealed class DriftAlertSource : IAlertSource
{
    public string Name => "drift";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(long RunId, string Object, long Records, string Kinds)>(new CommandDefinition(
            """
            WITH latest AS (
                SELECT run_id FROM cdc.reconcile_runs
                WHERE finished_at IS NOT NULL AND status IN ('clean', 'drift') AND scope = '{}'::jsonb
                ORDER BY run_id DESC LIMIT 1)
            SELECT f.run_id, f.object, count(*), string_agg(DISTINCT f.kind, ', ' ORDER BY f.kind)
            FROM cdc.reconcile_findings f JOIN latest USING (run_id)
            WHERE f.drift
            GROUP BY f.run_id, f.object
            ORDER BY f.object
            """, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"drift:{r.Object}",
                AlertSeverity.Warning,
                $"reconcile run {r.RunId} found {r.Records} drifted record(s) in {r.Object} ({r.Kinds}); 'cdcsync reconcile --config FILE --table {r.Object}' lists them, '--repair' brings the systems back in line"))
            .ToList();
    }
}
