using Dapper;
using Npgsql;

namespace CdcSync.Scheduling;

/// <summary>One run of a scheduled job as <see cref="JobScheduler"/> recorded it in <c>cdc.job_runs</c>.</summary>
internal sealed record JobRun(string Job, string Worker, DateTime StartedAt, DateTime? FinishedAt, string? Outcome, string? Error);

/// <summary>The last run of each scheduled job of a slot, for the console's overview (read from the hub, so a standalone console shows it too).</summary>
internal static class JobRunHistory
{
    public static async Task<IReadOnlyList<JobRun>> LatestAsync(NpgsqlDataSource hub, string slot, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<JobRun>(new CommandDefinition(
            """
            SELECT DISTINCT ON (job) job AS "Job", worker AS "Worker", started_at AS "StartedAt", finished_at AS "FinishedAt",
                   outcome AS "Outcome", error AS "Error"
            FROM cdc.job_runs WHERE slot = @slot
            ORDER BY job, started_at DESC
            """, new { slot }, cancellationToken: cancellationToken));
        return rows.AsList();
    }
}
