using System.Text.Json.Nodes;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Onboarding;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Reconcile;

/// <summary>
/// Reads one system completely, as onboarding does, with its inbound connector from no cursor
/// (Salesforce: a Bulk API 2.0 query job above Salesforce:BulkQueryThreshold, REST query pages
/// below; NetSuite: SuiteQL keyset pages), and copies every record into the run's scratch rows
/// (<c>cdc.reconcile_records</c>, one COPY per page). Nothing is written to the staging tables and
/// no cursor is stored.
/// </summary>
internal sealed class ReconcileLoader(NpgsqlDataSource hub)
{
    private readonly StagingColumns _columns = new();

    /// <summary>Returns the records read, and the staging tables they belong to.</summary>
    public async Task<(long Records, IReadOnlySet<string> Tables)> LoadAsync(long runId, IInboundConnector connector, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        string? cursor = null;
        long records = 0;
        var tables = new HashSet<string>(StringComparer.Ordinal);
        InboundPage page;
        do
        {
            page = await connector.ReadChangesAsync(cursor, cancellationToken);
            await CopyAsync(runId, page.Records, cancellationToken);
            records += page.Records.Count;
            tables.UnionWith(page.Records.Select(r => r.Table));
            cursor = page.NextCursor ?? cursor;
            progress?.Report(new LoadProgress(connector.Name, records, !page.HasMore));
        }
        while (page.HasMore);

        return (records, tables);
    }

    private async Task CopyAsync(long runId, IReadOnlyList<InboundRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
        {
            return;
        }

        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        var rows = new List<(string Table, bool Deleted, string Values)>(records.Count);
        foreach (var record in records)
        {
            var types = await _columns.TypesAsync(connection, record.Table, cancellationToken);
            rows.Add((record.Table, record.Deleted, ToJson(record, types)));
        }

        await using var copy = await connection.BeginBinaryImportAsync(
            "COPY cdc.reconcile_records (run_id, object, deleted, \"values\") FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var (table, deleted, values) in rows)
        {
            await copy.StartRowAsync(cancellationToken);
            await copy.WriteAsync(runId, NpgsqlDbType.Bigint, cancellationToken);
            await copy.WriteAsync(table, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(deleted, NpgsqlDbType.Boolean, cancellationToken);
            await copy.WriteAsync(values, NpgsqlDbType.Jsonb, cancellationToken);
        }

        await copy.CompleteAsync(cancellationToken);
    }

    /// <summary>Column -> value as the staging writer would send it (text), JSON columns as the JSON they hold.</summary>
    private static string ToJson(InboundRecord record, IReadOnlyDictionary<string, string> types)
    {
        var json = new JsonObject();
        foreach (var (column, value) in record.Values)
        {
            var text = HubSql.ToText(value);
            if (text is not null && types.TryGetValue(column, out var type) && type is "jsonb" or "json")
            {
                try
                {
                    json[column] = JsonNode.Parse(text);
                    continue;
                }
                catch (System.Text.Json.JsonException)
                {
                    // Not JSON after all: compared as the text it is.
                }
            }

            json[column] = text;
        }

        return json.ToJsonString();
    }
}
