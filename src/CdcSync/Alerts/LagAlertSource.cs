using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>
/// Connectors whose oldest unapplied change is older than Alerts:LagThreshold, from the status
/// the worker records every few seconds (cdc.connector_status); <c>lag:CONNECTOR</c>.
/// </summary>
internal sealed class LagAlertSource(TimeSpan threshold) : IAlertSource
{
    public string Name => "lag";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(string Connector, double LagSeconds, long LagBytes)>(new CommandDefinition(
            $"""
            SELECT connector, lag_seconds, lag_bytes
            FROM cdc.connector_status
            WHERE lag_seconds > @threshold AND {ConnectorStatus.Fresh}
            ORDER BY connector
            """, new { threshold = threshold.TotalSeconds, fresh = ConnectorStatus.FreshFor.TotalSeconds }, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"lag:{r.Connector}",
                AlertSeverity.Warning,
                $"connector {r.Connector} is {AlertText.Duration(TimeSpan.FromSeconds(r.LagSeconds))} behind ({r.LagBytes} bytes of WAL), over the {AlertText.Duration(threshold)} threshold"))
            .ToList();
    }
}
