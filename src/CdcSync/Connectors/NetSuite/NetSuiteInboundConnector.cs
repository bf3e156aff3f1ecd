using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Inbound;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Reads changed records of each configured record type with SuiteQL on their modification stamp,
/// the columns being the staging table's (see <see cref="NetSuiteRecordSchema"/>); sublists, which
/// SuiteQL does not return, are read from the record service for the records that changed.
/// NetSuite stamps modifications to the second, so every scan starts the overlap window behind the
/// newest stamp read and pages by keyset (stamp, id) from there; versions already read (id, stamp,
/// content) are dropped, so an edit in the same second as the cursor, or a second edit of a record
/// in one second, still arrives. Records deleted in NetSuite are read from SuiteQL's
/// <c>deletedrecord</c> table the same way.
/// </summary>
internal sealed class NetSuiteInboundConnector : IInboundConnector, IHasCircuit, IDisposable
{
    internal const string SuiteQlPath = "services/rest/query/v1/suiteql";
    private const string RecordPath = "services/rest/record/v1/";
    internal const string IsoFormat = "YYYY-MM-DD\"T\"HH24:MI:SS";
    private const string DeletedKey = "deletedrecord";

    private readonly NetSuiteOptions _options;
    private readonly NetSuiteClient _client;
    private readonly bool _ownsClient;
    private readonly NetSuiteSchemas _schemas;
    private readonly ILogger _logger;
    private bool _deletesUnavailable;

    public NetSuiteInboundConnector(
        string name,
        NetSuiteOptions options,
        NpgsqlDataSource hub,
        ILogger<NetSuiteInboundConnector>? logger = null,
        TimeProvider? timeProvider = null,
        HttpMessageHandler? handler = null)
        : this(name, options, new NetSuiteClient(name, options, handler, timeProvider ?? TimeProvider.System, (ILogger?)logger ?? NullLogger.Instance), hub, logger)
    {
        _ownsClient = true;
    }

    /// <summary>With the account's client shared with the outbound side (one limiter and breaker per account); the caller owns it.</summary>
    internal NetSuiteInboundConnector(string name, NetSuiteOptions options, NetSuiteClient client, NpgsqlDataSource hub, ILogger<NetSuiteInboundConnector>? logger = null)
    {
        Name = name;
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _client = client;
        _schemas = new NetSuiteSchemas(_client, new HubGateway(hub), name, _logger);
    }

    public string Name { get; }

    public InboundOptions Options => _options.Inbound;

    public HttpResilience Resilience => _client.Resilience;

    public Polly.CircuitBreaker.CircuitState CircuitState => _client.Resilience.CircuitBreaker.CircuitState;

    public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken)
    {
        var states = ParseCursor(cursor);
        var records = new List<InboundRecord>();
        var hasMore = false;
        foreach (var map in _options.Records)
        {
            var state = states.GetValueOrDefault(map.Table) ?? new OverlapCursor();
            records.AddRange(await ReadPageAsync(map, state, cancellationToken));
            states[map.Table] = state;
            if (state.After is not null)
            {
                hasMore = true;
                break;
            }
        }

        if (!hasMore && _options.DetectDeletes)
        {
            var state = states.GetValueOrDefault(DeletedKey) ?? new OverlapCursor();
            records.AddRange(await ReadDeletedAsync(state, cancellationToken));
            states[DeletedKey] = state;
            hasMore = state.After is not null;
        }

        return new InboundPage(records, System.Text.Json.JsonSerializer.Serialize(states.ToDictionary(kv => kv.Key, kv => kv.Value.ToString())), hasMore);
    }

    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }

    private async Task<List<InboundRecord>> ReadPageAsync(NetSuiteRecordOptions map, OverlapCursor state, CancellationToken cancellationToken)
    {
        var schema = await _schemas.ForAsync(map, cancellationToken);
        var select = new List<string>();
        foreach (var field in schema.Fields.Where(f => f.SuiteQlName is not null))
        {
            // SuiteQL renders dates in the user's format (M/D/YYYY) unless told otherwise.
            select.Add(field.Kind switch
            {
                NetSuiteFieldKind.Timestamp => $"TO_CHAR({field.SuiteQlName}, '{IsoFormat}') AS {field.SuiteQlName}",
                NetSuiteFieldKind.Date => $"TO_CHAR({field.SuiteQlName}, 'YYYY-MM-DD') AS {field.SuiteQlName}",
                _ => field.SuiteQlName!,
            });
        }

        if (!select.Contains("id"))
        {
            select.Add("id");
        }

        var modified = map.ModifiedField;
        select.Add($"TO_CHAR({modified}, '{IsoFormat}') AS cdc_modified_iso");
        var rows = await QueryAsync($"SELECT {string.Join(", ", select)} FROM {map.RecordType}", modified, "id", state, cancellationToken);

        var result = new List<InboundRecord>();
        foreach (var row in rows)
        {
            var id = row["id"]!.ToString();
            var stamp = ParseIso(row["cdc_modified_iso"]?.ToString())
                ?? throw new InvalidOperationException($"NetSuite returned a {map.RecordType} without {modified}; check the record type's ModifiedField setting.");
            if (!state.TryAccept(id, stamp, row.ToJsonString()))
            {
                continue;
            }

            var values = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var field in schema.Fields.Where(f => f.SuiteQlName is not null))
            {
                // SuiteQL leaves empty fields out of an item; an absent field is a cleared one.
                var text = row[field.SuiteQlName!]?.ToString();
                values[field.Column] = field.Kind switch
                {
                    NetSuiteFieldKind.Boolean => text == "T",
                    NetSuiteFieldKind.Timestamp => ParseIso(text),
                    _ => text,
                };
            }

            values[map.IdColumn] = id;
            if (map.SourceModifiedColumn.Length > 0)
            {
                values[map.SourceModifiedColumn] = stamp;
            }

            if (schema.Fields.Any(f => f.Kind == NetSuiteFieldKind.Sublist))
            {
                await ReadSublistsAsync(map, schema, id, values, cancellationToken);
            }

            // Records carrying an external id are keyed by it, so a record this connector just created
            // meets its hub row even before the internal id has been written back.
            var key = values.GetValueOrDefault(map.ExternalIdColumn) is null ? map.IdColumn : map.ExternalIdColumn;
            if (key == map.IdColumn)
            {
                values.Remove(map.ExternalIdColumn);
            }

            result.Add(new InboundRecord(map.Table, key, values, Deleted: false)
            {
                StampColumn = map.SourceModifiedColumn.Length > 0 ? map.SourceModifiedColumn : null,
                SameStampMayBeNewer = true,
            });
        }

        _logger.LogDebug("{Connector}: {Count} new {RecordType} versions read", Name, result.Count, map.RecordType);
        return result;
    }

    /// <summary>Records deleted in NetSuite (SuiteQL <c>deletedrecord</c>): the hub row goes too, and the transforms act on it.</summary>
    private async Task<List<InboundRecord>> ReadDeletedAsync(OverlapCursor state, CancellationToken cancellationToken)
    {
        if (_deletesUnavailable)
        {
            return [];
        }

        List<JsonObject> rows;
        try
        {
            rows = await QueryAsync(
                $"SELECT recordid, recordtypeid, TO_CHAR(deleteddate, '{IsoFormat}') AS cdc_modified_iso FROM deletedrecord", "deleteddate", "recordid", state, cancellationToken);
        }
        catch (NetSuiteApiException e) when (e.StatusCode == 400)
        {
            // The role cannot see deletedrecord (or the account lacks it): everything else still syncs.
            _deletesUnavailable = true;
            _logger.LogWarning("{Connector}: SuiteQL on deletedrecord failed ({Detail}); records deleted in NetSuite are not detected. Grant the integration role access to deleted records, or set DetectDeletes to false", Name, e.Detail);
            return [];
        }

        var result = new List<InboundRecord>();
        foreach (var row in rows)
        {
            var id = row["recordid"]?.ToString();
            var type = row["recordtypeid"]?.ToString();
            var stamp = ParseIso(row["cdc_modified_iso"]?.ToString());
            if (id is null || stamp is null || !state.TryAccept(type + ":" + id, stamp.Value, row.ToJsonString()))
            {
                continue;
            }

            var map = _options.Records.FirstOrDefault(r => string.Equals(r.RecordType, type, StringComparison.OrdinalIgnoreCase));
            if (map is not null)
            {
                result.Add(new InboundRecord(map.Table, map.IdColumn, new Dictionary<string, object?> { [map.IdColumn] = id }, Deleted: true));
            }
        }

        return result;
    }

    /// <summary>One keyset page of a scan that starts the overlap window behind the newest stamp read.</summary>
    private async Task<List<JsonObject>> QueryAsync(string selectFrom, string stampColumn, string idColumn, OverlapCursor state, CancellationToken cancellationToken)
    {
        state.ScanFrom ??= state.NewScanFrom(Options.OverlapWindow) ?? DateTimeOffset.UnixEpoch;
        var from = Timestamp(state.ScanFrom.Value);
        var where = $"{stampColumn} >= {from}";
        if (state.After?.Split('|') is [var afterStamp, var afterId]
            && DateTimeOffset.TryParse(afterStamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            && long.TryParse(afterId, NumberStyles.None, CultureInfo.InvariantCulture, out var aid))
        {
            where += $" AND ({stampColumn} > {Timestamp(at)} OR ({stampColumn} = {Timestamp(at)} AND {idColumn} > {aid.ToString(CultureInfo.InvariantCulture)}))";
        }

        var query = $"{selectFrom} WHERE {where} ORDER BY {stampColumn}, {idColumn}";
        var response = await _client.SendAsync(
            HttpMethod.Post,
            $"{SuiteQlPath}?limit={_options.PageSize.ToString(CultureInfo.InvariantCulture)}&offset=0",
            new JsonObject { ["q"] = query },
            transient: true,
            cancellationToken);
        NetSuiteClient.EnsureSuccess(response, "SuiteQL query " + selectFrom[(selectFrom.LastIndexOf(" FROM ", StringComparison.Ordinal) + 1)..]);
        var page = JsonNode.Parse(response.Body) as JsonObject
            ?? throw new InvalidOperationException("NetSuite answered a SuiteQL query with something other than a JSON object.");
        var rows = (page["items"]?.AsArray() ?? []).OfType<JsonObject>().ToList();
        var hasMore = page["hasMore"]?.GetValue<bool>() ?? false;
        if (hasMore && rows.Count > 0 && ParseIso(rows[^1]["cdc_modified_iso"]?.ToString()) is { } lastStamp)
        {
            state.After = lastStamp.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) + "|" + rows[^1][idColumn];
        }
        else
        {
            state.After = null;
            state.ScanFrom = null;
            state.Prune(Options.OverlapWindow, Options.MaxSeenRecords);
        }

        return rows;
    }

    private async Task ReadSublistsAsync(NetSuiteRecordOptions map, NetSuiteRecordSchema schema, string id, Dictionary<string, object?> values, CancellationToken cancellationToken)
    {
        var response = await _client.SendAsync(HttpMethod.Get, $"{RecordPath}{map.RecordType}/{Uri.EscapeDataString(id)}?expandSubResources=true", null, false, cancellationToken);
        if (response.StatusCode == 404)
        {
            return; // deleted since the query: deletedrecord brings it
        }

        NetSuiteClient.EnsureSuccess(response, $"read {map.RecordType} {id}");
        var record = JsonNode.Parse(response.Body) as JsonObject;
        foreach (var field in schema.Fields.Where(f => f.Kind == NetSuiteFieldKind.Sublist))
        {
            var items = record?[field.Field]?["items"] as JsonArray ?? [];
            values[field.Column] = NetSuiteSublists.Clean(items).ToJsonString();
        }
    }

    private static string Timestamp(DateTimeOffset value) =>
        $"TO_TIMESTAMP('{value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}', 'YYYY-MM-DD HH24:MI:SS')";

    private Dictionary<string, OverlapCursor> ParseCursor(string? cursor)
    {
        var result = new Dictionary<string, OverlapCursor>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(cursor) || !cursor.StartsWith('{'))
        {
            return result; // none yet, or an older version's "<stamp>|<id>": scan from the start, re-reads write nothing
        }

        try
        {
            foreach (var (key, text) in System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(cursor) ?? [])
            {
                result[key] = OverlapCursor.Parse(text, Name);
            }
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidOperationException($"The stored NetSuite cursor of '{Name}' is not valid ({e.Message}); delete its row in cdc.inbound_cursors to re-read from the start.", e);
        }

        return result;
    }

    // The account's time zone is UTC in the sandbox; a real account reports its own, set the
    // integration user's time zone preference to GMT so these timestamps are UTC.
    internal static DateTimeOffset? ParseIso(string? text) =>
        text is null ? null : DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
