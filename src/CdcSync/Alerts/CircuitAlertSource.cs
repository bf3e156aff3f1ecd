using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>
/// Connectors whose circuit breaker is open (their system refuses or fails calls), as the worker
/// records them every few seconds in cdc.connector_status from Worker.OpenCircuits; <c>circuit:CONNECTOR</c>.
/// </summary>
internal sealed class CircuitAlertSource : IAlertSource
{
    public string Name => "circuits";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(string Connector, string? LastError)>(new CommandDefinition(
            $"""
            SELECT connector, last_error
            FROM cdc.connector_status
            WHERE circuit <> 'closed' AND {ConnectorStatus.Fresh}
            ORDER BY connector
            """, new { fresh = ConnectorStatus.FreshFor.TotalSeconds }, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"circuit:{r.Connector}",
                AlertSeverity.Error,
                $"circuit open for connector {r.Connector}: calls to its system are refused for now{(r.LastError is { } e ? $" (last error: {AlertText.Cap(e)})" : string.Empty)}"))
            .ToList();
    }
}

/// <summary>Rows of cdc.connector_status a worker wrote lately; older ones belong to a worker that is gone or a connector no longer configured.</summary>
internal static class ConnectorStatus
{
    public static readonly TimeSpan FreshFor = TimeSpan.FromMinutes(1);

    /// <summary>The SQL condition, with the parameter @fresh (seconds). The worker stamps rows with the server's now(), so this compares on the server's clock.</summary>
    public const string Fresh = "updated_at > now() - make_interval(secs => @fresh)";
}
