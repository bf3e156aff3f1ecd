using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Inbound;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Polly.CircuitBreaker;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Reads changed records with <c>queryAll</c> (deleted ones included, <c>IsDeleted = true</c>)
/// ordered by <c>SystemModstamp, Id</c>, one object after the other in configured order, following
/// <c>nextRecordsUrl</c> between pages. The fields read are the staging table's columns (see
/// <see cref="SalesforceObjectSchema"/>). Each scan starts the overlap window behind the newest
/// stamp read (a transaction that committed late still shows up) and drops versions it already
/// read; the cursor is JSON, one <see cref="OverlapCursor"/> per sObject.
/// </summary>
internal sealed class SalesforceInboundConnector : IInboundConnector, IHasCircuit, IHasApiBudget
{

    private readonly SalesforceClient _client;
    private readonly SalesforceSchemas _schemas;
    private readonly ILogger _logger;
    private bool _limitsRead;

    public SalesforceInboundConnector(SalesforceClient client, NpgsqlDataSource hub, ILogger<SalesforceInboundConnector>? logger = null)
    {
        _client = client;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _schemas = new SalesforceSchemas(client, new HubGateway(hub), _logger);
    }

    public string Name => _client.Name;

    public InboundOptions Options => _client.Options.Inbound;

    /// <summary>The org's daily API allowance as its last response reported it (<c>Sforce-Limit-Info</c>).</summary>
    public ApiBudget? Budget => _client.Budget;

    public HttpResilience Resilience => _client.Resilience;

    public CircuitState CircuitState => _client.CircuitState;

    public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken)
    {
        var states = ParseCursor(cursor);
        var records = new List<InboundRecord>();
        var hasMore = false;
        foreach (var map in _client.Options.Objects.Where(o => o.Inbound))
        {
            var state = states.GetValueOrDefault(map.SObject) ?? new OverlapCursor();
            records.AddRange(await ReadPageAsync(map, state, cancellationToken));
            states[map.SObject] = state;
            if (state.After is not null)
            {
                // Parents first: children wait until every page of the objects before them is in.
                hasMore = true;
                break;
            }
        }

        if (_client.Usage is null && !_limitsRead)
        {
            // No Sforce-Limit-Info on the responses: ask /limits once, so idle polling still knows its budget.
            _limitsRead = true;
            await _client.RefreshUsageAsync(cancellationToken);
        }

        return new InboundPage(records, JsonSerializer.Serialize(states.ToDictionary(kv => kv.Key, kv => kv.Value.ToString())), hasMore);
    }

    private async Task<List<InboundRecord>> ReadPageAsync(SalesforceObjectOptions map, OverlapCursor state, CancellationToken cancellationToken)
    {
        var schema = await _schemas.ForAsync(map, cancellationToken);
        JsonNode? page = null;
        if (state.After is not null)
        {
            try
            {
                page = await _client.SendAsync(HttpMethod.Get, state.After, null, QueryHeaders, cancellationToken);
            }
            catch (SalesforceApiException e) when (e.ErrorCode == "INVALID_QUERY_LOCATOR")
            {
                // Locators expire after 15 minutes idle (or a restart of the sandbox): scan again from its start.
                _logger.LogInformation("{Connector}: query locator for {SObject} expired; scanning again", Name, map.SObject);
            }
        }

        if (page is null)
        {
            state.ScanFrom = state.NewScanFrom(Options.OverlapWindow);
            var soql = Soql(map, schema, state.ScanFrom);
            page = await _client.SendAsync(HttpMethod.Get, $"{_client.ApiPath}/queryAll?q={Uri.EscapeDataString(soql)}", null, QueryHeaders, cancellationToken);
        }

        var result = new List<InboundRecord>();
        var read = 0;
        foreach (var node in page?["records"]?.AsArray() ?? [])
        {
            if (node is not JsonObject record)
            {
                continue;
            }

            read++;
            var fields = new Dictionary<string, JsonNode?>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, value) in record)
            {
                if (name != "attributes")
                {
                    fields[name] = value;
                }
            }

            var id = fields.GetValueOrDefault("Id")?.ToString();
            var stamp = SalesforceClient.ParseDateTime(fields.GetValueOrDefault("SystemModstamp")?.ToString());
            if (id is null || stamp is null)
            {
                throw new SalesforceApiException($"Salesforce returned a {map.SObject} record without Id or SystemModstamp.", null, null, isTransient: false);
            }

            if (state.TryAccept(id, stamp.Value, record.ToJsonString()))
            {
                result.Add(ToInbound(map, schema, id, fields));
            }
        }

        var done = page?["done"]?.GetValue<bool>() ?? true;
        state.After = done ? null : page?["nextRecordsUrl"]?.ToString();
        if (done)
        {
            state.ScanFrom = null;
            state.Prune(Options.OverlapWindow, Options.MaxSeenRecords);
        }

        _logger.LogDebug("{Connector}: {Read} {SObject} records read, {New} new (more: {HasMore})", Name, read, map.SObject, result.Count, !done);
        return result;
    }

    private InboundRecord ToInbound(SalesforceObjectOptions map, SalesforceObjectSchema schema, string id, Dictionary<string, JsonNode?> record)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in schema.Fields)
        {
            if (record.TryGetValue(field.Field, out var value))
            {
                values[field.Column] = FromJson(value);
            }
        }

        var modified = SalesforceClient.ParseDateTime(record.GetValueOrDefault("LastModifiedDate")?.ToString());
        if (map.SourceModifiedColumn.Length > 0)
        {
            values[map.SourceModifiedColumn] = modified;
        }

        values[map.IdColumn] = id;
        var deleted = record.GetValueOrDefault("IsDeleted")?.GetValueKind() == JsonValueKind.True;
        if (deleted && !_client.Options.SoftDeleteInbound)
        {
            return new InboundRecord(map.Table, map.IdColumn, new Dictionary<string, object?> { [map.IdColumn] = id }, Deleted: true);
        }

        if (deleted && schema.Find(map.DeletedColumn) is not null)
        {
            values[map.DeletedColumn] = true;
        }

        // A record the hub created carries the hub's external id: key it by that, so it meets its hub
        // row even before the Id write-back landed (keyed by Id it would be a second row, and a
        // duplicate of the unique external id). A record made in Salesforce has none; the hub assigns it.
        var key = map.IdColumn;
        if (values.TryGetValue(map.ExternalIdColumn, out var external))
        {
            if (external is null)
            {
                values.Remove(map.ExternalIdColumn);
            }
            else
            {
                key = map.ExternalIdColumn;
            }
        }

        return new InboundRecord(map.Table, key, values, Deleted: false)
        {
            StampColumn = map.SourceModifiedColumn.Length > 0 ? map.SourceModifiedColumn : null,
        };
    }

    private static string Soql(SalesforceObjectOptions map, SalesforceObjectSchema schema, DateTimeOffset? since)
    {
        // Id, IsDeleted and the two stamps drive the cursor and deletes; the rest is the staging table.
        var fields = new List<string> { "Id", "IsDeleted", "SystemModstamp", "LastModifiedDate" };
        foreach (var field in schema.Fields)
        {
            if (!fields.Contains(field.Field, StringComparer.OrdinalIgnoreCase))
            {
                fields.Add(field.Field);
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

    private static object? FromJson(JsonNode? node)
    {
        if (node is not JsonValue value)
        {
            // Compound fields (BillingAddress) and child relationships land in jsonb columns as they are.
            return node?.ToJsonString();
        }

        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                var text = value.GetValue<string>();
                return SalesforceClient.ParseDateTime(text) is { } dt ? dt : text;
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
    private Dictionary<string, OverlapCursor> ParseCursor(string? cursor)
    {
        var result = new Dictionary<string, OverlapCursor>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(cursor))
        {
            return result;
        }

        Dictionary<string, string>? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize<Dictionary<string, string>>(cursor);
        }
        catch (JsonException)
        {
            // A cursor of an older version: scan from the start; re-reads of what the hub holds write nothing.
            _logger.LogInformation("{Connector}: stored cursor has an older format; scanning from the start", Name);
            return result;
        }

        foreach (var (sObject, text) in parsed ?? [])
        {
            result[sObject] = OverlapCursor.Parse(text, Name);
        }

        return result;
    }
}
