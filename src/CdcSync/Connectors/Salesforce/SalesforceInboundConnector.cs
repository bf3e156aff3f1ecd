using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Polly.CircuitBreaker;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Reads changed records with <c>queryAll</c> (deleted ones included, <c>IsDeleted = true</c>)
/// ordered by <c>SystemModstamp, Id</c>, one object after the other in configured order, following
/// <c>nextRecordsUrl</c> between pages. The cursor holds, per object, the last
/// SystemModstamp read, the Ids read at exactly that stamp, and the open query locator; it is JSON, e.g.
/// <c>{"Account":{"ts":"2024-05-01T10:00:00.123+00:00","ids":["001..."],"next":"/services/data/v61.0/query/01g...-2000"}}</c>.
/// </summary>
public sealed class SalesforceInboundConnector : IInboundConnector
{
    private const string DateTimePattern = "yyyy-MM-dd'T'HH:mm:ss.fffzzz";

    // Past this many records in one millisecond (a bulk load), the rest are read again next time: harmless, upserts write nothing.
    private const int MaxIdsAtCursor = 2000;

    private readonly SalesforceClient _client;
    private readonly NpgsqlDataSource? _hub;
    private readonly ILogger _logger;
    private readonly Dictionary<string, HashSet<string>> _tableColumns = new(StringComparer.Ordinal);

    /// <param name="hub">When given, only columns that exist in the staging tables are returned.</param>
    public SalesforceInboundConnector(SalesforceClient client, NpgsqlDataSource? hub = null, ILogger<SalesforceInboundConnector>? logger = null)
    {
        _client = client;
        _hub = hub;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public string Name => _client.Name;

    public HttpResilience Resilience => _client.Resilience;

    public CircuitState CircuitState => _client.CircuitState;

    public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken)
    {
        var states = ParseCursor(cursor);
        var records = new List<InboundRecord>();
        var hasMore = false;
        foreach (var map in _client.Options.EffectiveObjects.Where(o => o.Inbound))
        {
            var state = states.GetValueOrDefault(map.SObject) ?? new ObjectCursor();
            var (page, next) = await ReadPageAsync(map, state, cancellationToken);
            states[map.SObject] = next;
            records.AddRange(page);
            if (next.Next is not null)
            {
                // Parents first: children wait until every page of the objects before them is in.
                hasMore = true;
                break;
            }
        }

        return new InboundPage(records, JsonSerializer.Serialize(states), hasMore);
    }

    private async Task<(List<InboundRecord> Records, ObjectCursor Next)> ReadPageAsync(SalesforceObjectOptions map, ObjectCursor state, CancellationToken cancellationToken)
    {
        JsonNode? page = null;
        if (state.Next is not null)
        {
            try
            {
                page = await _client.SendAsync(HttpMethod.Get, state.Next, null, QueryHeaders, cancellationToken);
            }
            catch (SalesforceApiException e) when (e.ErrorCode == "INVALID_QUERY_LOCATOR")
            {
                // Locators expire after 15 minutes idle (or a restart of the sandbox): query again from the cursor.
                _logger.LogInformation("{Connector}: query locator for {SObject} expired; querying again from the cursor", Name, map.SObject);
            }
        }

        if (page is null)
        {
            var soql = Soql(map, state.Timestamp);
            page = await _client.SendAsync(HttpMethod.Get, $"{_client.ApiPath}/queryAll?q={Uri.EscapeDataString(soql)}", null, QueryHeaders, cancellationToken);
        }

        var columns = await ColumnsAsync(map.Table, cancellationToken);
        var result = new List<InboundRecord>();
        var lastTs = state.Timestamp;
        var seenAtLast = new List<string>(state.Ids ?? []);
        foreach (var node in page?["records"]?.AsArray() ?? [])
        {
            if (node is not JsonObject record)
            {
                continue;
            }

            var id = record["Id"]?.ToString();
            var stamp = ParseDateTime(record["SystemModstamp"]?.ToString());
            if (id is null || stamp is null)
            {
                throw new SalesforceApiException($"Salesforce returned a {map.SObject} record without Id or SystemModstamp.", null, null, isTransient: false);
            }

            // Salesforce filters datetimes to the second, so a query from the cursor returns the rest
            // of its second again, on as many pages as it takes. Records stamped before the cursor
            // were read; at the cursor's very millisecond only the Ids listed in the cursor were,
            // since a record changed later in that millisecond can sort before them by Id.
            if (lastTs is { } cursorTs && (stamp < cursorTs || (stamp == cursorTs && seenAtLast.Contains(id, StringComparer.Ordinal))))
            {
                continue;
            }

            result.Add(ToInbound(map, record, columns));
            if (stamp != lastTs)
            {
                lastTs = stamp;
                seenAtLast.Clear();
            }

            if (seenAtLast.Count < MaxIdsAtCursor)
            {
                seenAtLast.Add(id);
            }
        }

        var done = page?["done"]?.GetValue<bool>() ?? true;
        var next = done ? null : page?["nextRecordsUrl"]?.ToString();
        _logger.LogDebug("{Connector}: read {Count} {SObject} records (more: {HasMore})", Name, result.Count, map.SObject, next is not null);
        return (result, new ObjectCursor { Timestamp = lastTs, Ids = seenAtLast, Next = next });
    }

    private InboundRecord ToInbound(SalesforceObjectOptions map, JsonObject record, HashSet<string>? columns)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (column, field) in map.Fields.Concat(map.ReadOnlyFields))
        {
            if (columns is null || columns.Contains(column))
            {
                values[column] = FromJson(record[field]);
            }
        }

        if (map.SourceModifiedColumn.Length > 0 && (columns is null || columns.Contains(map.SourceModifiedColumn)))
        {
            values[map.SourceModifiedColumn] = ParseDateTime(record["LastModifiedDate"]?.ToString());
        }

        values[map.IdColumn] = record["Id"]!.ToString();
        var deleted = record["IsDeleted"]?.GetValueKind() == JsonValueKind.True;
        if (deleted && !_client.Options.SoftDeleteInbound)
        {
            return new InboundRecord(map.Table, map.IdColumn, new Dictionary<string, object?> { [map.IdColumn] = values[map.IdColumn] }, Deleted: true);
        }

        if (deleted && (columns is null || columns.Contains(map.DeletedColumn)))
        {
            values[map.DeletedColumn] = true;
        }

        return new InboundRecord(map.Table, map.IdColumn, values, Deleted: false);
    }

    private static string Soql(SalesforceObjectOptions map, DateTimeOffset? since)
    {
        var fields = new List<string> { "Id", "IsDeleted", "SystemModstamp", "LastModifiedDate" };
        foreach (var field in map.Fields.Values.Concat(map.ReadOnlyFields.Values))
        {
            if (!fields.Contains(field, StringComparer.OrdinalIgnoreCase))
            {
                fields.Add(field);
            }
        }

        var where = since is { } ts
            ? $" WHERE SystemModstamp >= {ts.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}"
            : string.Empty;
        return $"SELECT {string.Join(", ", fields)} FROM {map.SObject}{where} ORDER BY SystemModstamp, Id";
    }

    private Dictionary<string, string> QueryHeaders => new(StringComparer.Ordinal)
    {
        ["Sforce-Query-Options"] = $"batchSize={_client.Options.QueryBatchSize}",
    };

    private async Task<HashSet<string>?> ColumnsAsync(string table, CancellationToken cancellationToken)
    {
        if (_hub is null)
        {
            return null;
        }

        if (_tableColumns.TryGetValue(table, out var cached))
        {
            return cached;
        }

        await using var cmd = _hub.CreateCommand(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped");
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        var columns = new HashSet<string>(StringComparer.Ordinal);
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                columns.Add(reader.GetString(0));
            }
        }

        if (columns.Count == 0)
        {
            throw new InvalidOperationException($"Staging table '{table}' does not exist in the hub; run 'cdcsync migrate' or fix Salesforce:Objects.");
        }

        _tableColumns[table] = columns;
        return columns;
    }

    private static object? FromJson(JsonNode? node)
    {
        if (node is not JsonValue value)
        {
            return node?.ToJsonString();
        }

        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                var text = value.GetValue<string>();
                return ParseDateTime(text) is { } dt ? dt : text;
            case JsonValueKind.Number:
                var raw = value.ToJsonString();
                return decimal.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.Parse(raw, CultureInfo.InvariantCulture);
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }

    /// <summary>Salesforce datetimes look like <c>2024-05-01T10:00:00.000+0000</c>.</summary>
    private static DateTimeOffset? ParseDateTime(string? text)
    {
        if (text is null || text.Length != 28 || text[10] != 'T')
        {
            return null;
        }

        var normalized = text[..26] + ":" + text[26..];
        return DateTimeOffset.TryParseExact(normalized, DateTimePattern, CultureInfo.InvariantCulture, DateTimeStyles.None, out var value)
            ? value.ToUniversalTime()
            : null;
    }

    private static Dictionary<string, ObjectCursor> ParseCursor(string? cursor)
    {
        if (string.IsNullOrWhiteSpace(cursor))
        {
            return new(StringComparer.Ordinal);
        }

        try
        {
            var parsed = JsonSerializer.Deserialize<Dictionary<string, ObjectCursor>>(cursor);
            return parsed is null ? new(StringComparer.Ordinal) : new(parsed, StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"The stored Salesforce cursor is not valid JSON ({e.Message}); reset it in cdc.inbound_cursors to re-read from the start.", e);
        }
    }

    internal sealed class ObjectCursor
    {
        [System.Text.Json.Serialization.JsonPropertyName("ts")]
        public DateTimeOffset? Timestamp { get; set; }

        /// <summary>Ids already read whose SystemModstamp equals <see cref="Timestamp"/>.</summary>
        [System.Text.Json.Serialization.JsonPropertyName("ids")]
        public List<string>? Ids { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("next")]
        public string? Next { get; set; }
    }
}
