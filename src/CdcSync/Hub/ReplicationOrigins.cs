using Npgsql;

namespace CdcSync.Hub;

/// <summary>
/// Replication origins tag the WAL of inbound writes so the router never sends a change back to
/// the connector it came from. Changes made by triggers in the same transaction carry the same tag.
/// </summary>
public static class ReplicationOrigins
{
    public const string Prefix = "cdcsync:";

    /// <summary>Every origin function the worker calls; the README's grants and the error below list the same set.</summary>
    public const string GrantAdvice =
        "grant them with GRANT EXECUTE ON FUNCTION pg_replication_origin_oid(text), pg_replication_origin_create(text), pg_replication_origin_session_setup(text), pg_replication_origin_session_reset() TO <hub user>, or use a superuser";

    public static string For(string connector) => Prefix + connector;

    /// <summary>
    /// Marks this session's writes as coming from <paramref name="connector"/> until
    /// <see cref="ResetAsync"/> (call it before the connection goes back to the pool).
    /// </summary>
    public static async Task SetupSessionAsync(NpgsqlConnection connection, string connector, CancellationToken cancellationToken)
    {
        var origin = For(connector);
        // cdc.connector names the connector to the hub's triggers (conflicts, audit trail:
        // transforms/005_sync_tracking.sql); PostgreSQL offers no way to read the session's origin.
        try
        {
            foreach (var sql in new[] { "SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL", "SELECT pg_replication_origin_session_setup($1)", "SELECT set_config('cdc.connector', substr($1, 9), false)" })
            {
                await using var cmd = new NpgsqlCommand(sql, connection);
                cmd.Parameters.Add(new NpgsqlParameter { Value = origin });
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new OperatorException(
                $"The hub user may not use replication origins (needed to tag {connector}'s writes: {e.MessageText}); {GrantAdvice}.", e);
        }
    }

    public static async Task ResetAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_replication_origin_session_reset(), set_config('cdc.connector', '', false)", connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    // PostgreSQL lets one session at a time use an origin (55006 otherwise): inbound pages and
    // id write-backs of the same connector take turns inside this process.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);

    /// <summary>Opens a connection whose writes carry <paramref name="connector"/>'s origin.</summary>
    public static async Task<OriginSession> OpenAsync(NpgsqlDataSource hub, string connector, CancellationToken cancellationToken)
    {
        var gate = Gates.GetOrAdd(connector, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        NpgsqlConnection? connection = null;
        try
        {
            connection = await hub.OpenConnectionAsync(cancellationToken);
            await SetupSessionAsync(connection, connector, cancellationToken);
            return new OriginSession(connection, gate);
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }

            gate.Release();
            throw;
        }
    }
}

/// <summary>A hub connection tagged with a connector's origin; resets the tag when disposed.</summary>
public sealed class OriginSession(NpgsqlConnection connection, SemaphoreSlim? gate = null) : IAsyncDisposable
{
    public NpgsqlConnection Connection { get; } = connection;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Connection.State == System.Data.ConnectionState.Open)
            {
                await ReplicationOrigins.ResetAsync(Connection, CancellationToken.None);
            }
        }
        catch (NpgsqlException)
        {
            // A broken connection is discarded by the pool, tag and all.
        }

        await Connection.DisposeAsync();
        gate?.Release();
    }
}
