using System.Buffers.Binary;
using System.Data;
using System.Security.Cryptography;
using System.Text;
using CdcSync.Hub;
using CdcSync.Resilience;
using Dapper;
using Npgsql;

namespace CdcSync.Operations;

/// <summary>
/// Who may read the slot: a session-level advisory lock on a dedicated hub connection, keyed by
/// the slot name. The server releases it when the holder's backend ends, which for a SIGKILLed
/// worker is when the server notices the dead connection, so the connection uses short TCP
/// keepalives (and the server's own keepalive settings apply on its side). Operator verbs that
/// must not race a worker (replay on a stopped worker) take the same lease.
/// </summary>
internal sealed class LeaderLease : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly long _key;

    private LeaderLease(NpgsqlConnection connection, long key)
    {
        _connection = connection;
        _key = key;
    }

    /// <summary>The advisory-lock key of a slot: the first 8 bytes of SHA-256("cdcsync:" + slot).</summary>
    public static long KeyFor(string slot) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("cdcsync:" + slot)));

    /// <summary>Takes the lease if nobody holds it; null when another session does.</summary>
    public static async Task<LeaderLease?> TryAcquireAsync(string hubConnectionString, string slot, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(hubConnectionString)
        {
            // The lease lives as long as this backend; keepalives let both ends notice a dead peer fast.
            KeepAlive = 2,
            TcpKeepAlive = true,
            TcpKeepAliveTime = 2,
            TcpKeepAliveInterval = 1,
            Pooling = false,
            ApplicationName = "cdcsync lease " + slot,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // Server-side keepalives too, so a worker whose host vanished is noticed in seconds.
            await connection.ExecuteAsync(new CommandDefinition(
                "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3", cancellationToken: cancellationToken));

            var key = KeyFor(slot);
            if (await connection.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT pg_try_advisory_lock(@key)", new { key }, cancellationToken: cancellationToken)))
            {
                var lease = new LeaderLease(connection, key);
                connection = null;
                return lease;
            }

            return null;
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Waits until the lease is free and takes it, calling <paramref name="standingBy"/> once when
    /// the first attempt finds it held, and <paramref name="unreachable"/> when the hub cannot be
    /// reached (then retrying with a backoff capped at 30 s: the hub may be restarting).
    /// </summary>
    public static async Task<LeaderLease> AcquireAsync(string hubConnectionString, string slot, TimeSpan pollInterval, TimeProvider time, Action standingBy, Action<string> unreachable, CancellationToken cancellationToken)
    {
        var told = false;
        var backoff = pollInterval;
        while (true)
        {
            LeaderLease? lease;
            try
            {
                lease = await TryAcquireAsync(hubConnectionString, slot, cancellationToken);
                backoff = pollInterval;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                // The one classifier decides: a wrong password, a missing database or a missing
                // grant stops the worker with the fix; only an unreachable or restarting hub waits.
                var explained = HubConnection.Explain(e, new NpgsqlConnectionStringBuilder(hubConnectionString), "Hub:ConnectionString");
                if (FailureClassifier.Classify(explained) == FailureKind.Permanent)
                {
                    throw explained;
                }

                unreachable(explained.Message);
                await Task.Delay(backoff, time, cancellationToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                continue;
            }

            if (lease is not null)
            {
                return lease;
            }

            if (!told)
            {
                standingBy();
                told = true;
            }

            await Task.Delay(pollInterval, time, cancellationToken);
        }
    }

    /// <summary>True while the lease connection is alive (a lost connection means a lost lease).</summary>
    public async Task<bool> IsHeldAsync(CancellationToken cancellationToken)
    {
        try
        {
            // Dapper opens a closed connection by itself; a new session would not hold the lock.
            if (_connection.State != ConnectionState.Open)
            {
                return false;
            }

            return await _connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = (@key::bigint & 4294967295)::oid AND granted",
                new { key = _key }, cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            // A broken lease connection (the hub restarted) surfaces as "Connection is not open":
            // the lock went with the session, so the lease is lost, not the worker.
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Closing the session releases the lock; no explicit unlock needed (or possible if the connection broke).
        await _connection.DisposeAsync();
    }
}
