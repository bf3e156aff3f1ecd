using Npgsql;

namespace CdcSync.Hub;

/// <summary>
/// Replication origins tag the WAL of inbound writes so the router never sends a change back to
/// the connector it came from. Changes made by triggers in the same transaction carry the same tag.
/// </summary>
internal static class ReplicationOrigins
{
    public const string Prefix = "cdcsync:";

    /// <summary>Every origin function the worker calls; the README's grants and the error below list the same set.</summary>
    public const string GrantAdvice = Resilience.FailureClassifier.ReplicationOriginGrantAdvice;

    /// <summary>
    /// The origin of <paramref name="connector"/>'s writes into the hub database <paramref name="database"/>:
    /// <c>cdcsync:&lt;database&gt;:&lt;connector&gt;</c>. Origins are server-wide, so the name carries the
    /// database: two hubs on one server with the same connector names do not contend for one origin.
    /// </summary>
    public static string For(string database, string connector) => Prefix + database + ":" + connector;

    /// <summary>The name versions before per-hub names used (<c>cdcsync:&lt;connector&gt;</c>).</summary>
    public static string Legacy(string connector) => Prefix + connector;

    /// <summary>
    /// Whether a transaction with this origin was written by <paramref name="connector"/> into the hub
    /// <paramref name="database"/>: its current name, or the name of versions before per-hub names, which
    /// a slot may still hold WAL under after an upgrade (a slot decodes its own database only, so that
    /// name cannot come from another hub).
    /// </summary>
    public static bool IsOwn(string? origin, string database, string connector) =>
        origin is not null && (origin == For(database, connector) || origin == Legacy(connector));

    /// <summary>The hub database a connection string names (Npgsql's default is the user's name); parsed once per string.</summary>
    public static string DatabaseOf(string connectionString) =>
        Databases.GetOrAdd(connectionString, static c =>
        {
            var builder = new NpgsqlConnectionStringBuilder(c);
            return builder.Database ?? builder.Username ?? Environment.UserName;
        });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Databases = new(StringComparer.Ordinal);

    /// <summary>
    /// Marks this session's writes as coming from <paramref name="connector"/> until
    /// <see cref="ResetAsync"/> (call it before the connection goes back to the pool).
    /// </summary>
    public static async Task SetupSessionAsync(NpgsqlConnection connection, string connector, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                foreach (var (sql, value) in SetupStatements(For(connection.Database, connector), connector))
                {
                    await using var cmd = new NpgsqlCommand(sql, connection);
                    cmd.Parameters.Add(new NpgsqlParameter { Value = value });
                    await cmd.ExecuteNonQueryAsync(cancellationToken);
                }

                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw NotGranted(connector, e);
            }
            catch (PostgresException e) when (IsHeldElsewhere(e) && attempt < BusyAttempts)
            {
                // The setup failed, so this session is not tagged: wait and try again.
                await Task.Delay(BusyDelay(attempt), TimeProvider.System, cancellationToken);
            }
        }
    }

    /// <summary>
    /// PostgreSQL lets one session at a time use an origin (before version 16): another process's
    /// session holds it while its transaction lasts — a running worker's inbound page or write-back
    /// beside an operator's <c>cdcsync reconcile --repair</c>, say. Inside one process the gate below
    /// takes turns; across processes the setup waits, for about a minute in all, before the error
    /// goes up.
    /// </summary>
    internal static bool IsHeldElsewhere(PostgresException e) => e.SqlState == PostgresErrorCodes.ObjectInUse;

    internal const int BusyAttempts = 80;

    /// <summary>25 ms more at every attempt, at most 1 s: ≈ 60 s over <see cref="BusyAttempts"/>.</summary>
    internal static TimeSpan BusyDelay(int attempt) => TimeSpan.FromMilliseconds(Math.Min(1000, 25 * attempt));

    /// <summary>The hub user lacks the origin functions: one line naming the grants.</summary>
    internal static OperatorException NotGranted(string connector, PostgresException e) =>
        new($"The hub user may not use replication origins (needed to tag {connector}'s writes: {e.MessageText}); {GrantAdvice}.", e);

    /// <summary>
    /// The statements that tag a session with <paramref name="origin"/> (created when missing), each
    /// with its one parameter. cdc.connector names the connector to the hub's triggers (conflicts,
    /// audit trail: transforms/005_sync_tracking.sql); PostgreSQL offers no way to read the session's origin.
    /// </summary>
    internal static IEnumerable<(string Sql, string Value)> SetupStatements(string origin, string connector) =>
    [
        ("SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL", origin),
        ("SELECT pg_replication_origin_session_setup($1)", origin),
        ("SELECT set_config('cdc.connector', $1, false)", connector),
    ];

    /// <summary>Untags a session (after its commit: the commit record takes the origin the session has then).</summary>
    internal const string ResetStatement = "SELECT pg_replication_origin_session_reset(), set_config('cdc.connector', '', false)";

    public static async Task ResetAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(ResetStatement, connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Before an origin session's connection goes back to the pool: untags it, whatever its setup
    /// reached (a setup cancelled half way may have tagged it). One that cannot be untagged must not
    /// be pooled again (its pool is cleared, which closes it when disposed), or the next user of that
    /// pooled session would hold the origin (every later setup failing with 55006) and tag unrelated
    /// writes with it.
    /// </summary>
    internal static async Task UntagForPoolAsync(NpgsqlConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            // A broken connection is discarded by the pool, tag and all.
            return;
        }

        try
        {
            await ResetAsync(connection, CancellationToken.None);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectNotInPrerequisiteState)
        {
            // "no replication origin is configured": the setup never got that far; nothing to untag.
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            NpgsqlConnection.ClearPool(connection);
        }
    }

    // PostgreSQL lets one session at a time use an origin (55006 otherwise): inbound pages and
    // id write-backs of the same connector into the same hub take turns inside this process.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);

    /// <summary>Takes this process's turn at <paramref name="connector"/>'s origin in this hub; dispose to give it back.</summary>
    internal static async Task<OriginTurn> EnterAsync(NpgsqlDataSource hub, string connector, CancellationToken cancellationToken)
    {
        var gate = Gate(hub, connector);
        await gate.WaitAsync(cancellationToken);
        return new OriginTurn(gate);
    }

    private static SemaphoreSlim Gate(NpgsqlDataSource hub, string connector) =>
        Gates.GetOrAdd(For(DatabaseOf(hub.ConnectionString), connector), _ => new SemaphoreSlim(1, 1));

    /// <summary>Opens a connection whose writes carry <paramref name="connector"/>'s origin.</summary>
    public static async Task<OriginSession> OpenAsync(NpgsqlDataSource hub, string connector, CancellationToken cancellationToken)
    {
        var gate = Gate(hub, connector);
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
                // Cancelled or failed after pg_replication_origin_session_setup ran: untag before pooling.
                await UntagForPoolAsync(connection);
                await connection.DisposeAsync();
            }

            gate.Release();
            throw;
        }
    }
}

/// <summary>This process's turn at one origin (<see cref="ReplicationOrigins.EnterAsync"/>).</summary>
internal sealed class OriginTurn(SemaphoreSlim gate) : IAsyncDisposable
{
    public ValueTask DisposeAsync()
    {
        gate.Release();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A hub connection tagged with a connector's origin; resets the tag when disposed.</summary>
internal sealed class OriginSession(NpgsqlConnection connection, SemaphoreSlim? gate = null) : IAsyncDisposable
{
    public NpgsqlConnection Connection { get; } = connection;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ReplicationOrigins.UntagForPoolAsync(Connection);
            await Connection.DisposeAsync();
        }
        finally
        {
            gate?.Release();
        }
    }
}
