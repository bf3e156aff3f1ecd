using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>
/// Open dead letters, one problem per connector (<c>dead-letters:CONNECTOR</c>): it opens with the
/// first record a target rejects and clears when all are retried or discarded.
/// </summary>
internal sealed class DeadLetterAlertSource : IAlertSource
{
    public string Name => "dead-letters";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(string Connector, long Count, string Newest)>(new CommandDefinition(
            """
            SELECT connector, count(*),
                   (array_agg(object || ' ' || record_key || ': ' || error ORDER BY last_seen DESC, id DESC))[1]
            FROM cdc.dead_letters
            WHERE status = 'open'
            GROUP BY connector
            ORDER BY connector
            """, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"dead-letters:{r.Connector}",
                AlertSeverity.Error,
                $"{r.Count} open dead letter(s) for connector {r.Connector}; newest: {AlertText.Cap(r.Newest)} ('cdcsync dead-letters list --connector {r.Connector}')"))
            .ToList();
    }
}
