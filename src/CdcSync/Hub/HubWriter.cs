using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Hub;

/// <summary>
/// What outbound connectors write to the hub: the ids a system assigned, written back under the
/// connector's replication origin, and the acknowledged writes (<c>cdc.record_outbound</c>). The
/// inbound direction writes through <see cref="Inbound.StagingWriter"/>.
/// </summary>
public sealed class HubWriter(NpgsqlDataSource hub)
{
    private readonly StagingColumns _columns = new();

    public NpgsqlDataSource DataSource => hub;

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
        var types = await _columns.TypesAsync(session.Connection, table, cancellationToken);
        await using var batch = new NpgsqlBatch(session.Connection);
        foreach (var row in rows)
        {
            var command = new NpgsqlBatchCommand();
            var sets = new List<string>();
            var compares = new List<string>();
            command.Parameters.Add(new NpgsqlParameter { Value = ToText(row.Key) });
            foreach (var (column, value) in row.Values)
            {
                var type = StagingColumns.TypeOf(types, table, column);
                command.Parameters.Add(new NpgsqlParameter { Value = (object?)ToText(value) ?? DBNull.Value });
                var p = $"CAST(${command.Parameters.Count} AS {type})";
                sets.Add($"{Quote(column)} = {p}");
                compares.Add($"{Quote(column)} IS DISTINCT FROM {p}");
            }

            command.CommandText =
                $"UPDATE {Quote(table)} SET {string.Join(", ", sets)} WHERE {Quote(keyColumn)} = CAST($1 AS {StagingColumns.TypeOf(types, table, keyColumn)}) AND ({string.Join(" OR ", compares)})";
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
    public Task<IReadOnlyDictionary<string, string>> ColumnTypesAsync(string table, CancellationToken cancellationToken) =>
        _columns.TypesAsync(hub, table, cancellationToken);

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
