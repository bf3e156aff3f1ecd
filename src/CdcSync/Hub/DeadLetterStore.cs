using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Hub;

/// <summary>
/// Records a system permanently rejected. The stream moves on past them; an operator lists,
/// retries (re-sends the current hub row) or discards them.
/// </summary>
public sealed class DeadLetterStore(NpgsqlDataSource hub)
{
    public async Task AddAsync(string connector, string obj, string recordKey, string payloadJson, string error, NpgsqlLogSequenceNumber? commitLsn, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand(
            """
            INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error, commit_lsn)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6)
            ON CONFLICT (connector, object, record_key) WHERE status = 'open'
            DO UPDATE SET attempts = cdc.dead_letters.attempts + 1, last_seen = now(),
                          payload = EXCLUDED.payload, error = EXCLUDED.error, commit_lsn = EXCLUDED.commit_lsn
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        cmd.Parameters.Add(new NpgsqlParameter { Value = obj });
        cmd.Parameters.Add(new NpgsqlParameter { Value = recordKey });
        cmd.Parameters.Add(new NpgsqlParameter { Value = payloadJson });
        cmd.Parameters.Add(new NpgsqlParameter { Value = error });
        cmd.Parameters.Add(new NpgsqlParameter { Value = commitLsn.HasValue ? commitLsn.Value : DBNull.Value, NpgsqlDbType = NpgsqlDbType.PgLsn });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
