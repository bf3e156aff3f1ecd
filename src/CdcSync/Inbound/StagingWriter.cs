using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Inbound;

/// <summary>
/// Writes records from a system into the hub's staging tables under the connector's replication
/// origin, with the connector's cursor in the same transaction. Upserts write nothing when no value
/// changed, which is what stops echoes: a system that reports our own write back as a change
/// produces no WAL and so no outbound change. The staging triggers run the SQL transforms and the
/// conflict rules in that transaction.
/// </summary>
internal sealed class StagingWriter(NpgsqlDataSource hub, TimeProvider? time = null)
{
    /// <summary>
    /// Times a page is tried when the hub aborts its transaction for a deadlock or a serialization
    /// failure: two inbound sides (a change stream and the other system's poller) write linked rows
    /// through the transforms in different orders, and PostgreSQL breaks such a cycle by aborting one.
    /// </summary>
    internal const int ConflictAttempts = 5;

    private readonly StagingColumns _columns = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>
    /// Applies a page of inbound records and stores the connector's cursor, in one hub transaction.
    /// Returns how many rows actually changed.
    /// </summary>
    public Task<int> ApplyInboundAsync(string connector, IReadOnlyList<InboundRecord> records, string? cursor, CancellationToken cancellationToken) =>
        ApplyInboundAsync(connector, records, PollCursor, cursor, cancellationToken);

    /// <summary>
    /// Like the poll's, with the cursor kept under its own name (<paramref name="cursorObject"/>, e.g.
    /// a change stream's replay position), so a stream and the polls never overwrite each other's.
    /// </summary>
    /// <param name="missing">Gets the <see cref="InboundRecord.UpdateOnly"/> records whose row the hub does not hold.</param>
    /// <remarks>
    /// A page the hub aborted for a deadlock or a serialization failure is applied again from the
    /// start (the whole transaction rolled back, the cursor with it), up to <see cref="ConflictAttempts"/>
    /// times: a change stream would otherwise drop its subscription for what is a moment's contention.
    /// </remarks>
    public async Task<int> ApplyInboundAsync(string connector, IReadOnlyList<InboundRecord> records, string cursorObject, string? cursor, CancellationToken cancellationToken, ICollection<InboundRecord>? missing = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var notFound = missing is null ? null : new List<InboundRecord>();
            try
            {
                await using var session = await ReplicationOrigins.OpenAsync(hub, connector, cancellationToken);
                await using var tx = await session.Connection.BeginTransactionAsync(cancellationToken);
                var changed = await ApplyInboundAsync(session.Connection, connector, records, cursorObject, cursor, cancellationToken, notFound);
                await tx.CommitAsync(cancellationToken);
                foreach (var record in notFound ?? [])
                {
                    missing!.Add(record);
                }

                return changed;
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure && attempt < ConflictAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt), _time, cancellationToken);
            }
        }
    }

    /// <summary>The object name of the poll cursor in <c>cdc.inbound_cursors</c>.</summary>
    public const string PollCursor = "*";

    /// <summary>
    /// Applies a page and the cursor on a connection the caller has tagged with the connector's
    /// origin, inside the caller's transaction (an onboarding dry run rolls everything back at the end).
    /// </summary>
    public Task<int> ApplyInboundAsync(NpgsqlConnection connection, string connector, IReadOnlyList<InboundRecord> records, string? cursor, CancellationToken cancellationToken) =>
        ApplyInboundAsync(connection, connector, records, PollCursor, cursor, cancellationToken);

    private async Task<int> ApplyInboundAsync(NpgsqlConnection connection, string connector, IReadOnlyList<InboundRecord> records, string cursorObject, string? cursor, CancellationToken cancellationToken, ICollection<InboundRecord>? missing = null)
    {
        var changed = 0;
        var ownWrite = false;
        foreach (var record in records)
        {
            if (record.OwnWrite != ownWrite)
            {
                // Read by the staging triggers (transforms/005_sync_tracking.sql) for the statements that follow.
                ownWrite = record.OwnWrite;
                await SetOwnWriteAsync(connection, ownWrite, cancellationToken);
            }

            if (record.UpdateOnly && !record.Deleted)
            {
                var (rows, exists) = await UpdateAsync(connection, record, cancellationToken);
                changed += rows;
                if (!exists)
                {
                    missing?.Add(record);
                }

                continue;
            }

            changed += record.Deleted
                ? await DeleteAsync(connection, record, cancellationToken)
                : await UpsertAsync(connection, record, cancellationToken);
        }

        if (ownWrite)
        {
            await SetOwnWriteAsync(connection, false, cancellationToken);
        }

        if (cursor is not null)
        {
            await using var cmd = new NpgsqlCommand(
                """
                INSERT INTO cdc.inbound_cursors (connector, object, cursor, updated_at) VALUES ($1, $2, $3, now())
                ON CONFLICT (connector, object) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
                """, connection);
            cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
            cmd.Parameters.Add(new NpgsqlParameter { Value = cursorObject });
            cmd.Parameters.Add(new NpgsqlParameter { Value = cursor });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        return changed;
    }

    private static async Task SetOwnWriteAsync(NpgsqlConnection connection, bool on, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("SELECT set_config('cdc.inbound_own_write', $1, true)", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = on ? "on" : "off" });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task<string?> ReadCursorAsync(string connector, CancellationToken cancellationToken) =>
        ReadCursorAsync(connector, PollCursor, cancellationToken);

    /// <summary>The cursor kept under <paramref name="cursorObject"/> (a change stream's position).</summary>
    public async Task<string?> ReadCursorAsync(string connector, string cursorObject, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand("SELECT cursor FROM cdc.inbound_cursors WHERE connector = $1 AND object = $2");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        cmd.Parameters.Add(new NpgsqlParameter { Value = cursorObject });
        return await cmd.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>Forgets the cursor kept under <paramref name="cursorObject"/> (a position the system no longer knows).</summary>
    public async Task DeleteCursorAsync(string connector, string cursorObject, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand("DELETE FROM cdc.inbound_cursors WHERE connector = $1 AND object = $2");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        cmd.Parameters.Add(new NpgsqlParameter { Value = cursorObject });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The connector's cursor as <paramref name="connection"/> sees it (inside its transaction, if any).</summary>
    public static async Task<string?> ReadCursorAsync(NpgsqlConnection connection, string connector, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(CursorQuery, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        return await cmd.ExecuteScalarAsync(cancellationToken) as string;
    }

    private const string CursorQuery = "SELECT cursor FROM cdc.inbound_cursors WHERE connector = $1 AND object = '*'";

    private async Task<int> UpsertAsync(NpgsqlConnection connection, InboundRecord record, CancellationToken cancellationToken)
    {
        var types = await _columns.TypesAsync(connection, record.Table, cancellationToken);
        if (!record.Values.ContainsKey(record.KeyColumn))
        {
            throw new ArgumentException($"Inbound record for {record.Table} has no value for its key column '{record.KeyColumn}'.");
        }

        await using var cmd = new NpgsqlCommand { Connection = connection };
        var columns = new List<string>();
        var placeholders = new List<string>();
        foreach (var (column, value) in record.Values)
        {
            var type = StagingColumns.TypeOf(types, record.Table, column);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)HubSql.ToText(value) ?? DBNull.Value });
            columns.Add(HubSql.Quote(column));
            placeholders.Add($"CAST(${cmd.Parameters.Count} AS {type})");
        }

        var updatable = columns.Where(c => c != HubSql.Quote(record.KeyColumn)).ToList();
        var table = HubSql.Quote(record.Table);
        var newer = string.Empty;
        if (record.StampColumn is { } stampColumn && record.Values.ContainsKey(stampColumn))
        {
            // A re-read of an older version (overlap window, a retried page) must not undo what the
            // hub learned since, e.g. a link the other system's write-back put there meanwhile.
            var stamp = HubSql.Quote(stampColumn);
            newer = $" AND (t.{stamp} IS NULL OR EXCLUDED.{stamp} IS NULL OR EXCLUDED.{stamp} {(record.SameStampMayBeNewer ? ">=" : ">")} t.{stamp})";
        }

        var conflict = updatable.Count == 0
            ? "DO NOTHING"
            : $"DO UPDATE SET ({string.Join(", ", updatable)}) = ROW({string.Join(", ", updatable.Select(c => "EXCLUDED." + c))}) " +
              $"WHERE ({string.Join(", ", updatable.Select(c => "t." + c))}) IS DISTINCT FROM ({string.Join(", ", updatable.Select(c => "EXCLUDED." + c))}){newer}";
        cmd.CommandText =
            $"INSERT INTO {table} AS t ({string.Join(", ", columns)}) VALUES ({string.Join(", ", placeholders)}) ON CONFLICT ({HubSql.Quote(record.KeyColumn)}) {conflict}";
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Updates the named row with the record's fields (when any differs and the version is not older); says whether the row exists.</summary>
    private async Task<(int Rows, bool Exists)> UpdateAsync(NpgsqlConnection connection, InboundRecord record, CancellationToken cancellationToken)
    {
        var types = await _columns.TypesAsync(connection, record.Table, cancellationToken);
        await using var cmd = new NpgsqlCommand { Connection = connection };
        var key = HubSql.Quote(record.KeyColumn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)HubSql.ToText(record.Values.GetValueOrDefault(record.KeyColumn)) ?? DBNull.Value });
        var keyValue = $"CAST($1 AS {StagingColumns.TypeOf(types, record.Table, record.KeyColumn)})";
        var columns = new List<string>();
        var values = new List<string>();
        foreach (var (column, value) in record.Values)
        {
            if (column == record.KeyColumn)
            {
                continue;
            }

            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)HubSql.ToText(value) ?? DBNull.Value });
            columns.Add(HubSql.Quote(column));
            values.Add($"CAST(${cmd.Parameters.Count} AS {StagingColumns.TypeOf(types, record.Table, column)})");
        }

        var table = HubSql.Quote(record.Table);
        if (columns.Count == 0)
        {
            cmd.CommandText = $"SELECT 0, EXISTS (SELECT 1 FROM {table} WHERE {key} = {keyValue})";
        }
        else
        {
            var newer = string.Empty;
            if (record.StampColumn is { } stampColumn && record.Values.ContainsKey(stampColumn))
            {
                var stamp = HubSql.Quote(stampColumn);
                var incoming = values[columns.IndexOf(stamp)];
                newer = $" AND (t.{stamp} IS NULL OR {incoming} IS NULL OR {incoming} {(record.SameStampMayBeNewer ? ">=" : ">")} t.{stamp})";
            }

            // A one-column ROW() needs the ROW keyword on both sides.
            cmd.CommandText =
                $"""
                WITH u AS (
                    UPDATE {table} AS t SET ({string.Join(", ", columns)}) = ROW({string.Join(", ", values)})
                     WHERE t.{key} = {keyValue}
                       AND ROW({string.Join(", ", columns.Select(c => "t." + c))}) IS DISTINCT FROM ROW({string.Join(", ", values)}){newer}
                    RETURNING 1)
                SELECT (SELECT count(*) FROM u)::int, EXISTS (SELECT 1 FROM {table} WHERE {key} = {keyValue})
                """;
        }

        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt32(0), reader.GetBoolean(1));
    }

    private async Task<int> DeleteAsync(NpgsqlConnection connection, InboundRecord record, CancellationToken cancellationToken)
    {
        var types = await _columns.TypesAsync(connection, record.Table, cancellationToken);
        await using var cmd = new NpgsqlCommand(
            $"DELETE FROM {HubSql.Quote(record.Table)} WHERE {HubSql.Quote(record.KeyColumn)} = CAST($1 AS {StagingColumns.TypeOf(types, record.Table, record.KeyColumn)})", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)HubSql.ToText(record.Values.GetValueOrDefault(record.KeyColumn)) ?? DBNull.Value });
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
