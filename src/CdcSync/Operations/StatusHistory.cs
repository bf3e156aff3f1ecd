using Dapper;
using Npgsql;

namespace CdcSync.Operations;

/// <summary>One connector's lag and rate at one moment, as the worker recorded it.</summary>
internal sealed record StatusSample(string Connector, DateTime RecordedAt, long LagBytes, double LagSeconds, double EventsPerSecond, long? ApiUsed, long? ApiAllowed);

/// <summary>
/// The rolling history of connector status in the hub (<c>cdc.status_history</c>): the worker
/// adds a row per connector with each status refresh and keeps about <see cref="Kept"/>; the
/// console draws its lag chart from it, with or without a worker of its own.
/// </summary>
internal sealed class StatusHistory(TimeProvider time)
{
    /// <summary>How much history the hub keeps.</summary>
    public static readonly TimeSpan Kept = TimeSpan.FromHours(1);

    /// <summary>Old rows are deleted at most this often (one indexed delete, not one per refresh).</summary>
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(1);

    private long _lastPrune;

    public async Task RecordAsync(NpgsqlConnection conn, IReadOnlyList<StatusSample> samples, CancellationToken cancellationToken)
    {
        if (samples.Count > 0)
        {
            await conn.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO cdc.status_history (connector, recorded_at, lag_bytes, lag_seconds, events_per_second, api_used, api_allowed)
                SELECT * FROM unnest(@connector, @at, @lagBytes, @lagSeconds, @rate, @used, @allowed)
                ON CONFLICT (connector, recorded_at) DO NOTHING
                """,
                new
                {
                    connector = samples.Select(s => s.Connector).ToArray(),
                    at = samples.Select(s => s.RecordedAt).ToArray(),
                    lagBytes = samples.Select(s => s.LagBytes).ToArray(),
                    lagSeconds = samples.Select(s => s.LagSeconds).ToArray(),
                    rate = samples.Select(s => s.EventsPerSecond).ToArray(),
                    used = samples.Select(s => s.ApiUsed).ToArray(),
                    allowed = samples.Select(s => s.ApiAllowed).ToArray(),
                },
                cancellationToken: cancellationToken));
        }

        if (_lastPrune == 0 || time.GetElapsedTime(_lastPrune) >= PruneEvery)
        {
            _lastPrune = time.GetTimestamp();
            await conn.ExecuteAsync(new CommandDefinition(
                "DELETE FROM cdc.status_history WHERE recorded_at < @before",
                new { before = time.GetUtcNow().UtcDateTime - Kept }, cancellationToken: cancellationToken));
        }
    }

    /// <summary>Every sample of the last <paramref name="window"/>, per connector in time order.</summary>
    public static async Task<IReadOnlyList<StatusSample>> ReadAsync(NpgsqlDataSource hub, TimeSpan window, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<StatusSample>(new CommandDefinition(
            """
            SELECT connector AS "Connector", recorded_at AS "RecordedAt", lag_bytes AS "LagBytes", lag_seconds AS "LagSeconds",
                   events_per_second AS "EventsPerSecond", api_used AS "ApiUsed", api_allowed AS "ApiAllowed"
            FROM cdc.status_history
            WHERE recorded_at > now() - make_interval(secs => @seconds)
            ORDER BY connector, recorded_at
            """, new { seconds = window.TotalSeconds }, cancellationToken: cancellationToken));
        return rows.AsList();
    }
}
