using CdcSync.Hub;
using CdcSync.Routing;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Replication;

/// <summary>
/// Creates the publication and the pgoutput slot when they are missing, and refuses to paper
/// over a slot that was dropped or invalidated (that would hide a gap in the stream).
/// </summary>
public sealed class SlotManager(string connectionString, ILogger logger)
{
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
            await ExecuteAsync(conn, $"CREATE PUBLICATION {HubWriter.Quote(publication)} FOR TABLE {list}", cancellationToken);
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
                $"Publication {publication} exists but publishes ({string.Join(", ", published.Order(StringComparer.Ordinal))}) while the routes need ({list}); it was not created by CdcSync, so it is left alone: run ALTER PUBLICATION {HubWriter.Quote(publication)} SET TABLE {list}; or choose another Hub:Publication.");
        }

        // Ours: follow the routes (a new route starts streaming from now; resync it for the past).
        await ExecuteAsync(conn, $"ALTER PUBLICATION {HubWriter.Quote(publication)} SET TABLE {list}", cancellationToken);
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

        await using (var create = new NpgsqlCommand("SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", conn))
        {
            create.Parameters.Add(new NpgsqlParameter { Value = slot });
            var lsn = await create.ExecuteScalarAsync(cancellationToken);
            logger.LogInformation("Created replication slot {Slot} at {Lsn}", slot, lsn);
        }

        await RecordAsync(conn, slot, publication, cancellationToken);
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
