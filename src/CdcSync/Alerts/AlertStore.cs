using Dapper;
using Npgsql;

namespace CdcSync.Alerts;

/// <summary>A problem seen this round, with the source that reported it.</summary>
internal sealed record SeenProblem(string Source, AlertProblem Problem);

/// <summary>
/// The alerts' state in cdc.alerts: which problems are open, which were told. Because it lives in
/// the hub, a restarted worker or a standby that takes over continues from it and alerts nothing
/// twice. Rows of a problem that comes back after its "resolved" was sent start a new alert.
/// </summary>
internal static class AlertStore
{
    /// <summary>
    /// Records this round's problems (opening new ones, refreshing the text of those already open),
    /// resolves the open ones of <paramref name="sourcesRead"/> that were not seen, and returns the
    /// deliveries due: a Firing for each open alert not yet told, a Resolved for each resolved one
    /// whose Firing was told. A problem that cleared before its Firing went out needs no message.
    /// </summary>
    public static async Task<IReadOnlyList<AlertMessage>> ReconcileAsync(
        NpgsqlConnection conn, IReadOnlyList<SeenProblem> problems, IReadOnlyCollection<string> sourcesRead, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        await conn.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO cdc.alerts (key, source, severity, text, opened_at, last_seen_at)
            SELECT p.key, p.source, p.severity, p.text, @now, @now
            FROM unnest(@keys, @sources, @severities, @texts) AS p(key, source, severity, text)
            ON CONFLICT (key) WHERE resolved_notified_at IS NULL DO UPDATE
               SET severity = EXCLUDED.severity, text = EXCLUDED.text, last_seen_at = EXCLUDED.last_seen_at,
                   -- Back before its "resolved" went out: it never stopped, as far as anyone was told.
                   resolved_at = NULL
            """,
            new
            {
                now,
                keys = problems.Select(p => p.Problem.Key).ToArray(),
                sources = problems.Select(p => p.Source).ToArray(),
                severities = problems.Select(p => p.Problem.Severity.ToString().ToLowerInvariant()).ToArray(),
                texts = problems.Select(p => p.Problem.Text).ToArray(),
            }, tx, cancellationToken: cancellationToken));
        await conn.ExecuteAsync(new CommandDefinition(
            """
            UPDATE cdc.alerts SET resolved_at = @now
            WHERE resolved_at IS NULL AND resolved_notified_at IS NULL
              AND source = ANY(@sources) AND NOT (key = ANY(@keys))
            """, new { now, sources = sourcesRead.ToArray(), keys = problems.Select(p => p.Problem.Key).ToArray() }, tx, cancellationToken: cancellationToken));
        await conn.ExecuteAsync(new CommandDefinition(
            "UPDATE cdc.alerts SET resolved_notified_at = resolved_at WHERE resolved_at IS NOT NULL AND notified_at IS NULL AND resolved_notified_at IS NULL",
            transaction: tx, cancellationToken: cancellationToken));
        var due = await conn.QueryAsync<(long Id, string Key, string Source, string Severity, string Text, DateTime OpenedAt, DateTime? ResolvedAt, DateTime? NotifiedAt)>(new CommandDefinition(
            """
            SELECT id, key, source, severity, text, opened_at, resolved_at, notified_at
            FROM cdc.alerts
            WHERE resolved_notified_at IS NULL AND (notified_at IS NULL OR resolved_at IS NOT NULL)
            ORDER BY id
            """, transaction: tx, cancellationToken: cancellationToken));
        await tx.CommitAsync(cancellationToken);
        return due.Select(r => new AlertMessage(
                r.Id,
                r.NotifiedAt is null ? AlertStatus.Firing : AlertStatus.Resolved,
                r.Key,
                r.Source,
                r.Severity,
                r.Text,
                Utc(r.OpenedAt),
                r.ResolvedAt is { } resolved ? Utc(resolved) : null))
            .ToList();
    }

    public static async Task MarkDeliveredAsync(NpgsqlConnection conn, AlertMessage message, DateTimeOffset now, CancellationToken cancellationToken) =>
        await conn.ExecuteAsync(new CommandDefinition(
            message.Status == AlertStatus.Firing
                ? "UPDATE cdc.alerts SET notified_at = @now, attempts = 0, last_error = NULL WHERE id = @id"
                : "UPDATE cdc.alerts SET resolved_notified_at = @now, attempts = 0, last_error = NULL WHERE id = @id",
            new { now, id = message.Id }, cancellationToken: cancellationToken));

    public static async Task MarkFailedAsync(NpgsqlConnection conn, AlertMessage message, string error, CancellationToken cancellationToken) =>
        await conn.ExecuteAsync(new CommandDefinition(
            "UPDATE cdc.alerts SET attempts = attempts + 1, last_error = @error WHERE id = @id",
            new { error, id = message.Id }, cancellationToken: cancellationToken));

    public static async Task<long> OpenCountAsync(NpgsqlConnection conn, CancellationToken cancellationToken) =>
        await conn.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM cdc.alerts WHERE resolved_at IS NULL", cancellationToken: cancellationToken));

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));
}
