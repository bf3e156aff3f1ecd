using System.Globalization;
using System.Security.Cryptography;
using Dapper;
using Npgsql;

namespace CdcSync.Schema;

/// <summary>
/// A throwaway database on the hub's server, created for one run of the transform tests and
/// dropped when disposed, so the tests never see the hub's rows and the hub never sees theirs.
/// While it exists a lease connection stays open on it: that is what tells a later run's sweep
/// (which drops scratch databases a killed run left behind) that this one is still in use.
/// </summary>
internal sealed class ScratchDatabase : IAsyncDisposable
{
    internal const string Prefix = "cdcsync_test_";

    /// <summary>How long a scratch database without any session must be abandoned before a sweep drops it.</summary>
    private static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Dropping must not hang the exit after Ctrl-C (the caller's token is already cancelled by
    /// then), but DROP DATABASE waits for a checkpoint, which took over 15 s on a busy 2-core server.
    /// </summary>
    private static readonly TimeSpan DropTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// CREATE and DROP DATABASE wait for a checkpoint: on a busy 2-core server a sweep's DROP passed
    /// the connection's 30 s command timeout. They get this long (the caller's token still cancels).
    /// </summary>
    private const int DatabaseDdlSeconds = 180;

    private readonly NpgsqlConnectionStringBuilder _admin;
    private NpgsqlConnection? _lease;

    private ScratchDatabase(NpgsqlConnectionStringBuilder admin, string name, NpgsqlConnection lease)
    {
        _admin = admin;
        Name = name;
        _lease = lease;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = name, Pooling = false }.ConnectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    /// <summary>Set when the drop failed; says which database is left and how to drop it.</summary>
    public string? DropError { get; private set; }

    public static async Task<ScratchDatabase> CreateAsync(string hubConnectionString, TimeProvider time, CancellationToken cancellationToken)
    {
        var admin = new NpgsqlConnectionStringBuilder(hubConnectionString) { Pooling = false };
        var name = string.Create(CultureInfo.InvariantCulture,
            $"{Prefix}{time.GetUtcNow().ToUnixTimeSeconds()}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");

        await using (var conn = new NpgsqlConnection(admin.ConnectionString))
        {
            await conn.OpenAsync(cancellationToken);
            await SweepAsync(conn, time, cancellationToken);
            try
            {
                // template0: nothing an administrator put into template1 leaks into the tests.
                await conn.ExecuteAsync(new CommandDefinition($"CREATE DATABASE {Quote(name)} TEMPLATE template0", commandTimeout: DatabaseDdlSeconds, cancellationToken: cancellationToken));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw new OperatorException(
                    $"transforms test builds a scratch database, but role '{admin.Username}' may not create databases on {admin.Host}:{admin.Port}; "
                    + $"grant it (ALTER ROLE {Quote(admin.Username ?? "?")} CREATEDB) or pass --in-place to run the tests in rolled-back transactions on the hub itself.", e);
            }
        }

        var lease = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = name }.ConnectionString);
        var scratch = new ScratchDatabase(admin, name, lease);
        try
        {
            await lease.OpenAsync(cancellationToken);
        }
        catch
        {
            await scratch.DisposeAsync();
            throw;
        }

        return scratch;
    }

    public async ValueTask DisposeAsync()
    {
        if (_lease is not null)
        {
            await _lease.DisposeAsync();
            _lease = null;
        }

        using var timeout = new CancellationTokenSource(DropTimeout);
        try
        {
            await using var conn = new NpgsqlConnection(_admin.ConnectionString);
            await conn.OpenAsync(timeout.Token);
            await DropAsync(conn, Name, timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            DropError = $"could not drop scratch database {Name} ({e.Message}); drop it with: DROP DATABASE {Quote(Name)} WITH (FORCE)";
        }
    }

    private static async Task DropAsync(NpgsqlConnection conn, string name, CancellationToken cancellationToken)
    {
        // WITH (FORCE) ends sessions a cancelled test left behind (PostgreSQL 13+); older servers
        // need them terminated first.
        if (conn.PostgreSqlVersion.Major >= 13)
        {
            await conn.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)", commandTimeout: DatabaseDdlSeconds, cancellationToken: cancellationToken));
            return;
        }

        await conn.ExecuteAsync(new CommandDefinition(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @name AND pid <> pg_backend_pid()", new { name }, cancellationToken: cancellationToken));
        await conn.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {Quote(name)}", commandTimeout: DatabaseDdlSeconds, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Drops scratch databases of earlier runs that were killed (kill -9, power loss) before they
    /// could drop their own: no session on them and created more than <see cref="StaleAfter"/> ago.
    /// A running harness always holds its lease connection, so it is never swept.
    /// </summary>
    private static async Task SweepAsync(NpgsqlConnection conn, TimeProvider time, CancellationToken cancellationToken)
    {
        var stale = (await conn.QueryAsync<string>(new CommandDefinition(
            """
            SELECT d.datname FROM pg_database d
             WHERE CASE WHEN d.datname ~ ('^' || @prefix || '[0-9]{1,18}_[0-9a-f]{8}$')   -- guards the cast: AND has no order
                        THEN split_part(substr(d.datname, length(@prefix) + 1), '_', 1)::bigint < @createdBefore
                        ELSE false END
               AND pg_catalog.pg_has_role(d.datdba, 'USAGE')
               AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
            """, new { prefix = Prefix, createdBefore = (time.GetUtcNow() - StaleAfter).ToUnixTimeSeconds() }, cancellationToken: cancellationToken))).AsList();

        foreach (var name in stale)
        {
            try
            {
                await DropAsync(conn, name, cancellationToken);
            }
            catch (PostgresException)
            {
                // Someone connected meanwhile, or it is not ours to drop: leave it.
            }
        }
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
