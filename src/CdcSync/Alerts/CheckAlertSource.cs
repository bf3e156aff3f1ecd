using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>Deployed checks whose last run found rows or could not run: one problem per check, <c>check:NAME</c>.</summary>
internal sealed class CheckAlertSource : IAlertSource
{
    public string Name => "checks";

    public async Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await hub.QueryAsync<(string Name, string Severity, string File, string? Description, long? FailingRows, string? Error)>(new CommandDefinition(
            """
            SELECT c.name, c.severity, c.file, c.description, r.failing_rows, r.error
            FROM cdc.checks c
            JOIN LATERAL (SELECT x.failing_rows, x.error FROM cdc.check_runs x WHERE x.check_name = c.name ORDER BY x.id DESC LIMIT 1) r ON true
            WHERE r.failing_rows > 0 OR r.error IS NOT NULL
            ORDER BY c.name
            """, cancellationToken: cancellationToken));
        return rows.Select(r => new AlertProblem(
                $"check:{r.Name}",
                r.Severity == "error" ? AlertSeverity.Error : AlertSeverity.Warning,
                r.Error is { } error
                    ? $"check {r.Name} could not run: {AlertText.Cap(error)}"
                    : $"check {r.Name} found {r.FailingRows} row(s){(r.Description is { } d ? $": {d}" : string.Empty)} ({r.File}; 'cdcsync checks run --name {r.Name}' lists them)"))
            .ToList();
    }
}
