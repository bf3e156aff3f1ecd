using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors;
using CdcSync.Inbound;
using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Hub;

/// <summary>
/// Writes records from a system into the hub's staging tables under the connector's replication
/// origin. Upserts write nothing when no value changed, which is what stops echoes: a system that
/// reports our own write back as a change produces no WAL and so no outbound change.
/// </summary>
public sealed class HubWriter(NpgsqlDataSource hub)
{
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> _columnTypes = new();

    public NpgsqlDataSource DataSource => hub;

    /// <summary>
    /// Applies a page of inbound records and stores the connector's cursor, in one hub transaction.
    /// Returns how many rows actually changed.
    /// </summary>
    public async Task<int> ApplyInboundAsync(string connector, IReadOnlyList<InboundRecord> records, string? cursor, CancellationToken cancellationToken)
    {
        await using var session = await ReplicationOrigins.OpenAsync(hub, connector, cancellationToken);
        await using var tx = await session.Connection.BeginTransactionAsync(cancellationToken);
        var changed = 0;
        foreach (var record in records)
        {
            changed += record.Deleted
                ? await DeleteAsync(session.Connection, record, cancellationToken)
                : await UpsertAsync(session.Connection, record, cancellationToken);
        }

        if (cursor is not null)
        {
            await using var cmd = new NpgsqlCommand(
                """
                INSERT INTO cdc.inbound_cursors (connector, object, cursor, updated_at) VALUES ($1, '*', $2, now())
                ON CONFLICT (connector, object) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
                """, session.Connection, tx);
            cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
            cmd.Parameters.Add(new NpgsqlParameter { Value = cursor });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return changed;
    }

    public async Task<string?> ReadCursorAsync(string connector, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand("SELECT cursor FROM cdc.inbound_cursors WHERE connector = $1 AND object = '*'");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        return await cmd.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>
    /// Writes ids a system assigned (e.g. the Salesforce Id returned on create) back to the hub row,
    /// under the connector's origin, so the write-back is not sent to that same connector again.
    /// </summary>
    public Task<int> WriteBackAsync(string connector, string table, string keyColumn, object keyValue, IReadOnlyDictionary<string, object?> values, CancellationToken cancellationToken) =>
        WriteBackAsync(connector, table, keyColumn, [new WriteBack(keyValue, values)], cancellationToken);

    /// <summary>
    /// The write-backs of a whole batch (e.g. the Ids of one sObject Collection) in one origin
    /// session, one transaction and one round trip: per record, the round trips of setting up the
    /// origin cost more than the update itself.
    /// </summary>
    public async Task<int> WriteBackAsync(string connector, string table, string keyColumn, IReadOnlyCollection<WriteBack> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        await using var session = await ReplicationOrigins.OpenAsync(hub, connector, cancellationToken);
        var types = await ColumnTypesAsync(session.Connection, table, cancellationToken);
        await using var batch = new NpgsqlBatch(session.Connection);
        foreach (var row in rows)
        {
            var command = new NpgsqlBatchCommand();
            var sets = new List<string>();
            var compares = new List<string>();
            command.Parameters.Add(new NpgsqlParameter { Value = ToText(row.Key) });
            foreach (var (column, value) in row.Values)
            {
                var type = TypeOf(types, table, column);
                command.Parameters.Add(new NpgsqlParameter { Value = (object?)ToText(value) ?? DBNull.Value });
                var p = $"CAST(${command.Parameters.Count} AS {type})";
                sets.Add($"{Quote(column)} = {p}");
                compares.Add($"{Quote(column)} IS DISTINCT FROM {p}");
            }

            command.CommandText =
                $"UPDATE {Quote(table)} SET {string.Join(", ", sets)} WHERE {Quote(keyColumn)} = CAST($1 AS {TypeOf(types, table, keyColumn)}) AND ({string.Join(" OR ", compares)})";
            batch.BatchCommands.Add(command);
        }

        // A batch of several statements runs in one implicit transaction: all write-backs land or none.
        return await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Tells the hub which writes a system acknowledged (<c>cdc.record_outbound</c> per write: the
    /// written fields become that system's sync base, the write goes to the audit trail), in one
    /// round trip per batch.
    /// </summary>
    public async Task RecordOutboundAsync(string connector, IReadOnlyCollection<OutboundWrite> writes, CancellationToken cancellationToken)
    {
        if (writes.Count == 0)
        {
            return;
        }

        var array = new JsonArray();
        foreach (var write in writes)
        {
            array.Add(new JsonObject
            {
                ["object"] = write.Object,
                ["record_key"] = write.RecordKey,
                ["record_id"] = write.RecordId,
                ["operation"] = write.Operation,
                ["changes"] = write.Changes.DeepClone(),
                ["commit_lsn"] = write.CommitLsn.ToString(),
                ["stamp"] = write.SystemStamp?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            });
        }

        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "SELECT cdc.record_outbound_batch(@connector, CAST(@writes AS jsonb))",
            new { connector, writes = array.ToJsonString() },
            cancellationToken: cancellationToken));
    }

    /// <summary>Column name to SQL type of a staging table (cached; a table that does not exist is an error naming the fix).</summary>
    public async Task<IReadOnlyDictionary<string, string>> ColumnTypesAsync(string table, CancellationToken cancellationToken)
    {
        if (_columnTypes.TryGetValue(table, out var cached))
        {
            return cached;
        }

        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return await ColumnTypesAsync(connection, table, cancellationToken);
    }

    private async Task<int> UpsertAsync(NpgsqlConnection connection, InboundRecord record, CancellationToken cancellationToken)
    {
        var types = await ColumnTypesAsync(connection, record.Table, cancellationToken);
        if (!record.Values.ContainsKey(record.KeyColumn))
        {
            throw new ArgumentException($"Inbound record for {record.Table} has no value for its key column '{record.KeyColumn}'.");
        }

        await using var cmd = new NpgsqlCommand { Connection = connection };
        var columns = new List<string>();
        var placeholders = new List<string>();
        foreach (var (column, value) in record.Values)
        {
            var type = TypeOf(types, record.Table, column);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)ToText(value) ?? DBNull.Value });
            columns.Add(Quote(column));
            placeholders.Add($"CAST(${cmd.Parameters.Count} AS {type})");
        }

        var updatable = columns.Where(c => c != Quote(record.KeyColumn)).ToList();
        var table = Quote(record.Table);
        var newer = string.Empty;
        if (record.StampColumn is { } stampColumn && record.Values.ContainsKey(stampColumn))
        {
            // A re-read of an older version (overlap window, a retried page) must not undo what the
            // hub learned since, e.g. a link the other system's write-back put there meanwhile.
            var stamp = Quote(stampColumn);
            newer = $" AND (t.{stamp} IS NULL OR EXCLUDED.{stamp} IS NULL OR EXCLUDED.{stamp} {(record.SameStampMayBeNewer ? ">=" : ">")} t.{stamp})";
        }

        var conflict = updatable.Count == 0
            ? "DO NOTHING"
            : $"DO UPDATE SET ({string.Join(", ", updatable)}) = ROW({string.Join(", ", updatable.Select(c => "EXCLUDED." + c))}) " +
              $"WHERE ({string.Join(", ", updatable.Select(c => "t." + c))}) IS DISTINCT FROM ({string.Join(", ", updatable.Select(c => "EXCLUDED." + c))}){newer}";
        cmd.CommandText =
            $"INSERT INTO {table} AS t ({string.Join(", ", columns)}) VALUES ({string.Join(", ", placeholders)}) ON CONFLICT ({Quote(record.KeyColumn)}) {conflict}";
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<int> DeleteAsync(NpgsqlConnection connection, InboundRecord record, CancellationToken cancellationToken)
    {
        var types = await ColumnTypesAsync(connection, record.Table, cancellationToken);
        await using var cmd = new NpgsqlCommand(
            $"DELETE FROM {Quote(record.Table)} WHERE {Quote(record.KeyColumn)} = CAST($1 AS {TypeOf(types, record.Table, record.KeyColumn)})", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)ToText(record.Values.GetValueOrDefault(record.KeyColumn)) ?? DBNull.Value });
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<IReadOnlyDictionary<string, string>> ColumnTypesAsync(NpgsqlConnection connection, string table, CancellationToken cancellationToken)
    {
        if (_columnTypes.TryGetValue(table, out var cached))
        {
            return cached;
        }

        await using var cmd = new NpgsqlCommand(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
            """, connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                types[reader.GetString(0)] = reader.GetString(1);
            }
        }

        if (types.Count == 0)
        {
            throw new InvalidOperationException($"Staging table '{table}' does not exist in the hub; run 'cdcsync migrate' or fix the table name in the connector's configuration.");
        }

        _columnTypes[table] = types;
        return types;
    }

    private static string TypeOf(IReadOnlyDictionary<string, string> types, string table, string column) =>
        types.TryGetValue(column, out var type)
            ? type
            : throw new InvalidOperationException($"Staging table '{table}' has no column '{column}'; add it in a migration or drop the field from the connector's mapping.");

    internal static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Values travel as text and are cast by the server to the column's type.</summary>
    internal static string? ToText(object? value) => value switch
    {
        null => null,
        DBNull => null,
        string s => s,
        bool b => b ? "true" : "false",
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        JsonElement { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } => null,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        JsonElement e => e.GetRawText(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value),
    };
}

/// <summary>Values a system assigned to one hub row (its id, a link), written back under the connector's origin.</summary>
public sealed record WriteBack(object Key, IReadOnlyDictionary<string, object?> Values);

/// <summary>A write a system acknowledged: the staging row, the system's id, and the fields written (before/after).</summary>
public sealed record OutboundWrite(string Object, string RecordKey, string? RecordId, string Operation, JsonObject Changes, NpgsqlLogSequenceNumber CommitLsn)
{
    /// <summary>
    /// The system's modified stamp of the record after this write, read back from the system; null
    /// when unknown. An inbound row with an older stamp was read before the write landed.
    /// </summary>
    public DateTimeOffset? SystemStamp { get; init; }
}
