using CdcSync.Hub;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Replication;

/// <summary>
/// Creates the publication and the pgoutput slot when they are missing, and refuses to paper
/// over a slot that was dropped or invalidated (that would hide a gap in the stream).
/// </summary>
internal sealed class SlotManager(string connectionString, ILogger logger, TimeProvider? timeProvider = null)
{
    /// <summary>How often a slot creation that waits on other transactions says what it waits for.</summary>
    public static readonly TimeSpan WaitReportInterval = TimeSpan.FromSeconds(2);

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>Called with one line whenever what the start waits for changes (status and /readyz show it).</summary>
    public Action<string>? Progress { get; init; }

    public async Task EnsureAsync(string slot, string publication, IReadOnlyCollection<TableName> tables, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(connectionString, "Hub:ConnectionString", cancellationToken);
        await HubConnection.RequireLogicalWalAsync(conn, cancellationToken);
        await RequireStateTableAsync(conn, cancellationToken);
        foreach (var table in tables)
        {
            await using var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", conn);
            exists.Parameters.Add(new NpgsqlParameter { Value = table.Quoted });
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
            {
                throw new OperatorException($"Routes name table {table}, which does not exist in the hub; fix Routes in the config or create the table with a migration.");
            }
        }

        await EnsurePublicationAsync(conn, slot, publication, tables, cancellationToken);
        await EnsureSlotAsync(conn, slot, publication, cancellationToken);
    }

    private static async Task RequireStateTableAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("SELECT to_regclass('cdc.slots') IS NOT NULL", conn);
        if (!(bool)(await cmd.ExecuteScalarAsync(cancellationToken))!)
        {
            throw new OperatorException($"The hub {HubConnection.Describe(conn.ConnectionString)} is not migrated (cdc.slots is missing); run 'cdcsync migrate' against it first.");
        }
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection conn, string slot, string publication, IReadOnlyCollection<TableName> tables, CancellationToken cancellationToken)
    {
        await using var find = new NpgsqlCommand(
            "SELECT p.puballtables, coalesce(array_agg(quote_ident(t.schemaname) || '.' || quote_ident(t.tablename)) FILTER (WHERE t.tablename IS NOT NULL), '{}') FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname WHERE p.pubname = $1 GROUP BY p.puballtables", conn);
        find.Parameters.Add(new NpgsqlParameter { Value = publication });
        bool? allTables = null;
        var published = new HashSet<string>(StringComparer.Ordinal);
        await using (var reader = await find.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                allTables = reader.GetBoolean(0);
                published.UnionWith(reader.GetFieldValue<string[]>(1));
            }
        }

        var wanted = await QuoteIdentsAsync(conn, tables, cancellationToken);
        var list = string.Join(", ", wanted.Order(StringComparer.Ordinal));
        if (allTables is null)
        {
            await ExecuteAsync(conn, $"CREATE PUBLICATION {HubSql.Quote(publication)} FOR TABLE {list}", cancellationToken);
            logger.LogInformation("Created publication {Publication} for {Tables}", publication, list);
            return;
        }

        if (allTables == true || published.SetEquals(wanted))
        {
            return;
        }

        await using var owned = new NpgsqlCommand("SELECT count(*) FROM cdc.slots WHERE slot = $1 AND publication = $2", conn);
        owned.Parameters.Add(new NpgsqlParameter { Value = slot });
        owned.Parameters.Add(new NpgsqlParameter { Value = publication });
        if ((long)(await owned.ExecuteScalarAsync(cancellationToken))! == 0)
        {
            throw new OperatorException(
                $"Publication {publication} exists but publishes ({string.Join(", ", published.Order(StringComparer.Ordinal))}) while the routes need ({list}); it was not created by CdcSync, so it is left alone: run ALTER PUBLICATION {HubSql.Quote(publication)} SET TABLE {list}; or choose another Hub:Publication.");
        }

        // Ours: follow the routes (a new route starts streaming from now; resync it for the past).
        await ExecuteAsync(conn, $"ALTER PUBLICATION {HubSql.Quote(publication)} SET TABLE {list}", cancellationToken);
        logger.LogWarning("Publication {Publication} now publishes {Tables}; run 'cdcsync resync' for tables newly routed to backfill their existing rows", publication, list);
    }

    private async Task EnsureSlotAsync(NpgsqlConnection conn, string slot, string publication, CancellationToken cancellationToken)
    {
        await using var find = new NpgsqlCommand(
            "SELECT plugin, slot_type, database, coalesce(wal_status, ''), database = current_database() FROM pg_replication_slots WHERE slot_name = $1", conn);
        find.Parameters.Add(new NpgsqlParameter { Value = slot });
        (string Plugin, string Type, string Database, string WalStatus, bool SameDatabase)? existing = null;
        await using (var reader = await find.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                existing = (reader.IsDBNull(0) ? "" : reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? "" : reader.GetString(2),
                    reader.GetString(3), !reader.IsDBNull(4) && reader.GetBoolean(4));
            }
        }

        if (existing is var (plugin, type, database, walStatus, sameDatabase))
        {
            if (type != "logical" || plugin != "pgoutput")
            {
                throw new OperatorException($"Replication slot {slot} exists but is a {type} slot using '{plugin}', not a pgoutput logical slot; choose another Hub:Slot or drop it (SELECT pg_drop_replication_slot('{slot}')) if nothing uses it.");
            }

            if (!sameDatabase)
            {
                throw new OperatorException($"Replication slot {slot} belongs to database '{database}', not to this hub's database; choose another Hub:Slot.");
            }

            if (walStatus == "lost")
            {
                throw new OperatorException(
                    $"Replication slot {slot} was invalidated (wal_status=lost: the server removed WAL it still needed, see max_slot_wal_keep_size). Changes were lost: run 'cdcsync slots reset --slot {slot}', start again, then 'cdcsync resync --table <table>' for every routed table.");
            }

            await RecordAsync(conn, slot, publication, cancellationToken);
            return;
        }

        await using var known = new NpgsqlCommand("SELECT created_at FROM cdc.slots WHERE slot = $1", conn);
        known.Parameters.Add(new NpgsqlParameter { Value = slot });
        if (await known.ExecuteScalarAsync(cancellationToken) is DateTime created)
        {
            throw new OperatorException(
                $"Replication slot {slot} (created {created:u}) no longer exists: someone dropped it, and the changes since the last checkpoint are gone with it. CdcSync will not recreate it silently. Run 'cdcsync slots reset --slot {slot}' to start a new slot, then 'cdcsync resync' every routed table to each connector.");
        }

        await CreateSlotAsync(conn, slot, cancellationToken);

        await RecordAsync(conn, slot, publication, cancellationToken);
    }

    /// <summary>
    /// A logical slot is consistent only once every transaction that holds an xid when it is created
    /// has ended, on the whole server, not only in the hub's database: one long load elsewhere holds
    /// the creation for as long as it runs. So the creation has no command timeout (a timeout would
    /// abort it and start the wait over), and while it waits a second session says what for.
    /// </summary>
    private async Task CreateSlotAsync(NpgsqlConnection conn, string slot, CancellationToken cancellationToken)
    {
        var creatorPid = conn.ProcessID;
        Progress?.Invoke($"creating replication slot {slot}");
        await using var create = new NpgsqlCommand("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", conn) { CommandTimeout = 0 };
        create.Parameters.Add(new NpgsqlParameter { Value = slot });
        var creation = create.ExecuteScalarAsync(cancellationToken);
        using var stopWatching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watching = WatchSlotCreationAsync(slot, creatorPid, stopWatching.Token);
        object? lsn;
        try
        {
            lsn = await creation;
        }
        finally
        {
            await stopWatching.CancelAsync();
            await watching;
        }

        logger.LogInformation("Created replication slot {Slot} at {Lsn}", slot, lsn);
    }

    private async Task WatchSlotCreationAsync(string slot, int creatorPid, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var lastLogged = (long?)null;
        try
        {
            await using var conn = await HubConnection.OpenAsync(connectionString, "Hub:ConnectionString", cancellationToken);
            while (true)
            {
                await Task.Delay(WaitReportInterval, _time, cancellationToken);
                var waiting = await BlockingTransactionsAsync(conn, creatorPid, cancellationToken);
                if (waiting is null)
                {
                    continue;
                }

                var line = $"creating replication slot {slot}: waiting for {waiting.Value.Count} open transaction(s) on the server to end " +
                           $"(oldest: pid {waiting.Value.Pid} in database {waiting.Value.Database}{(string.IsNullOrEmpty(waiting.Value.Application) ? string.Empty : $" ({waiting.Value.Application})")}, open {waiting.Value.OpenSeconds:F0} s; " +
                           "a logical slot starts only after every transaction older than it has ended)";
                Progress?.Invoke(line);
                if (lastLogged is null || _time.GetElapsedTime(lastLogged.Value) >= TimeSpan.FromSeconds(30))
                {
                    logger.LogWarning(
                        "Creating replication slot {Slot} has waited {Waited:F0} s for {Count} open transaction(s) on the server to end (oldest: pid {Pid} in database {Database}, open {Open:F0} s); streaming starts when they do",
                        slot, _time.GetElapsedTime(started).TotalSeconds, waiting.Value.Count, waiting.Value.Pid, waiting.Value.Database, waiting.Value.OpenSeconds);
                    lastLogged = _time.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is NpgsqlException or OperatorException or TimeoutException)
        {
            // Only the report is lost; the creation itself goes on and fails on its own if the hub went away.
            logger.LogDebug("Cannot watch the slot creation: {Message}", e.Message);
        }
    }

    private static async Task<(long Count, int Pid, string Database, string? Application, double OpenSeconds)?> BlockingTransactionsAsync(NpgsqlConnection conn, int creatorPid, CancellationToken cancellationToken)
    {
        // Transactions holding an xid, oldest first: what the snapshot builder waits for to end.
        await using var cmd = new NpgsqlCommand(
            """
            SELECT count(*) OVER (), a.pid, coalesce(a.datname, '?'), a.application_name, extract(epoch FROM now() - a.xact_start)::float8
            FROM pg_stat_activity a
            WHERE a.pid <> $1 AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL
            ORDER BY a.xact_start
            LIMIT 1
            """, conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = creatorPid });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return (reader.GetInt64(0), reader.GetInt32(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? 0 : reader.GetDouble(4));
    }

    private static async Task RecordAsync(NpgsqlConnection conn, string slot, string publication, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            """
            INSERT INTO cdc.slots (slot, publication, created_lsn)
            SELECT $1, $2, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1
            ON CONFLICT (slot) DO UPDATE SET publication = EXCLUDED.publication
            """, conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
        cmd.Parameters.Add(new NpgsqlParameter { Value = publication });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<HashSet<string>> QuoteIdentsAsync(NpgsqlConnection conn, IEnumerable<TableName> tables, CancellationToken cancellationToken)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tables)
        {
            await using var cmd = new NpgsqlCommand("SELECT quote_ident($1) || '.' || quote_ident($2)", conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = t.Schema });
            cmd.Parameters.Add(new NpgsqlParameter { Value = t.Name });
            result.Add((string)(await cmd.ExecuteScalarAsync(cancellationToken))!);
        }

        return result;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Drops a slot and forgets it (after an operator chose to start over).</summary>
    public async Task ResetAsync(string slot, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(connectionString, "Hub:ConnectionString", cancellationToken);
        foreach (var sql in new[] { "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", "DELETE FROM cdc.slots WHERE slot = $1" })
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
