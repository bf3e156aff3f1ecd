using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Checkpoints;

/// <summary>
/// Checkpoints of connectors whose target cannot hold one (HTTP APIs), kept in the hub's
/// <c>cdc.checkpoints</c>. Written only after the target acknowledged the writes, so a crash
/// re-sends at most the last unit, which upserts by external id make harmless.
/// </summary>
public sealed class HubCheckpointStore(NpgsqlDataSource hub)
{
    public async Task<NpgsqlLogSequenceNumber> ReadAsync(string connector, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand("SELECT lsn FROM cdc.checkpoints WHERE connector = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        var value = await cmd.ExecuteScalarAsync(cancellationToken);
        return value is NpgsqlLogSequenceNumber lsn ? lsn : default;
    }

    public async Task WriteAsync(string connector, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand(
            """
            INSERT INTO cdc.checkpoints (connector, lsn, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (connector) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
            WHERE cdc.checkpoints.lsn < EXCLUDED.lsn
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        cmd.Parameters.Add(new NpgsqlParameter { Value = lsn, NpgsqlDbType = NpgsqlDbType.PgLsn });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
