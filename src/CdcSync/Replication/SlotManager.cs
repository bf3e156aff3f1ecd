using CdcSync.Hub;
using Dapper;
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
            if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass(@table) IS NOT NULL", new { table = table.Quoted }, cancellationToken: cancellationToken)))
            {
                throw new OperatorException($"Routes name table {table}, which does not exist in the hub; fix Routes in the config or create the table with a migration.");
            }
        }

        await EnsurePublicationAsync(conn, slot, publication, tables, cancellationToken);
        await EnsureSlotAsync(conn, slot, publication, cancellationToken);
    }

    private static async Task RequireStateTableAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass('cdc.slots') IS NOT NULL", cancellationToken: cancellationToken)))
        {
            throw new OperatorException($"The hub {HubConnection.Describe(conn.ConnectionString)} is not migrated (cdc.slots is missing); run 'cdcsync migrate' against it first.");
        }
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection conn, string slot, string publication, IReadOnlyCollection<TableName> tables, CancellationToken cancellationToken)
    {
        var found = (await conn.QueryAsync<(bool AllTables, string[] Tables)>(new CommandDefinition(
            "SELECT p.puballtables, coalesce(array_agg(quote_ident(t.schemaname) || '.' || quote_ident(t.tablename)) FILTER (WHERE t.tablename IS NOT NULL), '{}') FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname WHERE p.pubname = @publication GROUP BY p.puballtables",
            new { publication }, cancellationToken: cancellationToken))).AsList();
        bool? allTables = null;
        var published = new HashSet<string>(StringComparer.Ordinal);
        if (found.Count > 0)
        {
            allTables = found[0].AllTables;
            published.UnionWith(found[0].Tables);
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

        if (await conn.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM cdc.slots WHERE slot = @slot AND publication = @publication", new { slot, publication }, cancellationToken: cancellationToken)) == 0)
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
        // A physical slot has no plugin and no database: those columns are NULL.
        var found = (await conn.QueryAsync<(string? Plugin, string Type, string? Database, string WalStatus, bool? SameDatabase)>(new CommandDefinition(
            "SELECT plugin, slot_type, database, coalesce(wal_status, ''), database = current_database() FROM pg_replication_slots WHERE slot_name = @slot",
            new { slot }, cancellationToken: cancellationToken))).AsList();
        (string Plugin, string Type, string Database, string WalStatus, bool SameDatabase)? existing = found.Count == 0
            ? null
            : (found[0].Plugin ?? "", found[0].Type, found[0].Database ?? "", found[0].WalStatus, found[0].SameDatabase ?? false);

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

        if (await conn.ExecuteScalarAsync<DateTime?>(new CommandDefinition("SELECT created_at FROM cdc.slots WHERE slot = @slot", new { slot }, cancellationToken: cancellationToken)) is { } created)
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
        var creation = conn.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(@slot, 'pgoutput')", new { slot }, commandTimeout: 0, cancellationToken: cancellationToken));
        using var stopWatching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watching = WatchSlotCreationAsync(slot, creatorPid, stopWatching.Token);
        string? lsn;
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
        var rows = (await conn.QueryAsync<(long Count, int Pid, string Database, string? Application, double? OpenSeconds)>(new CommandDefinition(
            """
            SELECT count(*) OVER (), a.pid, coalesce(a.datname, '?'), a.application_name, extract(epoch FROM now() - a.xact_start)::float8
            FROM pg_stat_activity a
            WHERE a.pid <> @creatorPid AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL
            ORDER BY a.xact_start
            LIMIT 1
            """, new { creatorPid }, cancellationToken: cancellationToken))).AsList();
        if (rows.Count == 0)
        {
            return null;
        }

        var (count, pid, database, application, openSeconds) = rows[0];
        return (count, pid, database, application, openSeconds ?? 0);
    }

    private static async Task RecordAsync(NpgsqlConnection conn, string slot, string publication, CancellationToken cancellationToken)
    {
        await conn.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO cdc.slots (slot, publication, created_lsn)
            SELECT @slot, @publication, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = @slot
            ON CONFLICT (slot) DO UPDATE SET publication = EXCLUDED.publication
            """, new { slot, publication }, cancellationToken: cancellationToken));
    }

    private static async Task<HashSet<string>> QuoteIdentsAsync(NpgsqlConnection conn, IEnumerable<TableName> tables, CancellationToken cancellationToken)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tables)
        {
            result.Add((await conn.ExecuteScalarAsync<string>(new CommandDefinition(
                "SELECT quote_ident(@schema) || '.' || quote_ident(@name)", new { schema = t.Schema, name = t.Name }, cancellationToken: cancellationToken)))!);
        }

        return result;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken cancellationToken)
    {
        await conn.ExecuteAsync(new CommandDefinition(sql, cancellationToken: cancellationToken));
    }

    /// <summary>Drops a slot and forgets it (after an operator chose to start over).</summary>
    public async Task ResetAsync(string slot, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(connectionString, "Hub:ConnectionString", cancellationToken);
        foreach (var sql in new[] { "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = @slot", "DELETE FROM cdc.slots WHERE slot = @slot" })
        {
            await conn.ExecuteAsync(new CommandDefinition(sql, new { slot }, cancellationToken: cancellationToken));
        }
    }
}
