using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>Open conflicts waiting for review longer than Alerts:ConflictWaitThreshold, one problem per connector (<c>conflicts:CONNECTOR</c>).</summary>
internal sealed class ConflictAlertSource(TimeSpan threshold) : IAlertSource
{
    public string Name => "conflicts";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(string Connector, long Count, DateTime Oldest)>(new CommandDefinition(
            """
            SELECT connector, count(*), min(created_at)
            FROM cdc.conflicts
            WHERE status = 'open' AND created_at < @cutoff
            GROUP BY connector
            ORDER BY connector
            """, new { cutoff = now - threshold }, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"conflicts:{r.Connector}",
                AlertSeverity.Warning,
                $"{r.Count} conflict(s) for connector {r.Connector} waiting for review longer than {AlertText.Duration(threshold)} (oldest since {r.Oldest:yyyy-MM-dd HH:mm}Z; 'cdcsync conflicts list')"))
            .ToList();
    }
}
