using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.Salesforce.PubSub;
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
/// The first read of an sObject (no cursor for it yet) with more records than
/// <see cref="SalesforceOptions.BulkQueryThreshold"/> goes through a Bulk API 2.0 query job
/// instead: its results pages are the inbound pages, the job and locator are the cursor (so a
/// restart resumes at the next page), and once the job is read the scans go on from the job's
/// snapshot time minus the overlap window. A job that fails, times out or disappears falls back to
/// REST query pages from the start: re-reading what the hub already holds writes nothing.
/// </summary>
internal sealed class SalesforceInboundConnector : IInboundConnector, IHasCircuit, IHasApiBudget, IHasChangeStream
{

    private readonly SalesforceClient _client;
    private readonly SalesforceSchemas _schemas;
    private readonly SalesforceBulkQuery _bulk;
    private readonly ILogger _logger;
    private readonly HubGateway _gateway;
    private bool _limitsRead;

    public SalesforceInboundConnector(SalesforceClient client, NpgsqlDataSource hub, ILogger<SalesforceInboundConnector>? logger = null, TimeProvider? timeProvider = null)
    {
        _client = client;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _gateway = new HubGateway(hub);
        _schemas = new SalesforceSchemas(client, _gateway, _logger);
        _bulk = new SalesforceBulkQuery(client, timeProvider ?? TimeProvider.System, _logger);
        ChangeStream = client.Options.PubSub.Enabled
            ? new SalesforceChangeStream(client, this, new StagingWriter(hub), timeProvider ?? TimeProvider.System, _logger)
            : null;
    }

    /// <summary>Change Data Capture over the Pub/Sub API when an endpoint is configured; null: polling only.</summary>
    public IChangeStream? ChangeStream { get; }

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
            var firstRead = !states.TryGetValue(map.SObject, out var state);
            state ??= new OverlapCursor();
            records.AddRange(await ReadPageAsync(map, state, firstRead, cancellationToken));
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

    private async Task<List<InboundRecord>> ReadPageAsync(SalesforceObjectOptions map, OverlapCursor state, bool firstRead, CancellationToken cancellationToken)
    {
        var schema = await _schemas.ForAsync(map, cancellationToken);
        var bulk = SalesforceBulkCursor.TryParse(state.After);
        if (bulk is null && firstRead && state.After is null && state.HighWater is null)
        {
            bulk = await StartBulkAsync(map, schema, cancellationToken);
        }

        if (bulk is not null && await ReadBulkPageAsync(map, schema, state, bulk, cancellationToken) is { } bulkRecords)
        {
            return bulkRecords;
        }

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

    /// <summary>
    /// Counts the sObject and creates a query job when it holds more than the threshold; null means
    /// REST pages (below it, or a query Bulk API refuses, e.g. a compound field in the staging table).
    /// </summary>
    private async Task<SalesforceBulkCursor?> StartBulkAsync(SalesforceObjectOptions map, SalesforceObjectSchema schema, CancellationToken cancellationToken)
    {
        var threshold = _client.Options.BulkQueryThreshold;
        if (threshold == int.MaxValue)
        {
            return null;
        }

        var count = await _bulk.CountAsync(map.SObject, cancellationToken);
        if (count <= threshold || count == 0)
        {
            _logger.LogDebug("{Connector}: {SObject} holds {Count} records, not above Salesforce:BulkQueryThreshold {Threshold}; reading it with REST query pages", Name, map.SObject, count, threshold);
            return null;
        }

        try
        {
            var (jobId, created) = await _bulk.CreateAsync(Soql(map, schema, since: null, ordered: false), cancellationToken);
            _logger.LogInformation("{Connector}: {SObject} holds {Count} records, above Salesforce:BulkQueryThreshold {Threshold}; loading it with Bulk API 2.0 query job {JobId}", Name, map.SObject, count, threshold, jobId);
            return new SalesforceBulkCursor { JobId = jobId, Created = created };
        }
        catch (SalesforceApiException e) when (!e.IsTransient && !e.IsAuthentication)
        {
            _logger.LogWarning("{Connector}: Salesforce refused a Bulk API 2.0 query job for {SObject} ({Reason}); reading it with REST query pages", Name, map.SObject, e.Message);
            return null;
        }
    }

    /// <summary>
    /// The next results page of the sObject's query job as inbound records, waiting for the job to
    /// complete first; null when the job cannot be read (failed, aborted, timed out, deleted), after
    /// which the caller reads the sObject with REST pages from the start.
    /// </summary>
    private async Task<List<InboundRecord>?> ReadBulkPageAsync(SalesforceObjectOptions map, SalesforceObjectSchema schema, OverlapCursor state, SalesforceBulkCursor bulk, CancellationToken cancellationToken)
    {
        if (!bulk.Complete)
        {
            var outcome = await _bulk.WaitAsync(bulk.JobId, cancellationToken);
            if (!outcome.Complete)
            {
                _logger.LogWarning("{Connector}: Bulk API 2.0 query job {JobId} for {SObject} ended {State} ({Reason}); reading {SObject} with REST query pages instead", Name, bulk.JobId, map.SObject, outcome.State, outcome.ErrorMessage ?? "no error message", map.SObject);
                await _bulk.DeleteAsync(bulk.JobId, cancellationToken);
                state.After = null;
                return null;
            }

            bulk.Complete = true;
        }

        SalesforceBulkPage page;
        try
        {
            page = await _bulk.ReadPageAsync(bulk.JobId, bulk.Locator, cancellationToken);
        }
        catch (SalesforceApiException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.Conflict)
        {
            // Deleted (by an admin, or Salesforce after 7 days), or a locator it no longer knows.
            _logger.LogWarning("{Connector}: results of Bulk API 2.0 query job {JobId} for {SObject} cannot be read ({Reason}); reading {SObject} with REST query pages from the start", Name, bulk.JobId, map.SObject, e.Message, map.SObject);
            state.After = null;
            return null;
        }

        var result = new List<InboundRecord>(page.Rows.Count);
        foreach (var row in page.Rows)
        {
            var fields = new Dictionary<string, JsonNode?>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < page.Header.Length; i++)
            {
                fields[page.Header[i]] = FromCsv(page.Header[i], row[i]);
            }

            var id = fields.GetValueOrDefault("Id")?.ToString();
            var stamp = SalesforceClient.ParseDateTime(fields.GetValueOrDefault("SystemModstamp")?.ToString());
            if (id is null || stamp is null)
            {
                throw new SalesforceApiException($"Salesforce returned a {map.SObject} record without Id or SystemModstamp in query job {bulk.JobId}.", null, null, isTransient: false);
            }

            if (bulk.MaxStamp is null || stamp > bulk.MaxStamp)
            {
                bulk.MaxStamp = stamp;
            }

            result.Add(ToInbound(map, schema, id, fields));
        }

        bulk.Read += page.Rows.Count;
        bulk.Locator = page.NextLocator;
        if (page.NextLocator is not null)
        {
            state.After = bulk.ToString();
            _logger.LogDebug("{Connector}: {Read} {SObject} records read from query job {JobId} so far", Name, bulk.Read, map.SObject, bulk.JobId);
            return result;
        }

        // Everything changed after the snapshot carries a later stamp: the next scan starts from the
        // snapshot (no later than the job's creation) minus the overlap window.
        state.After = null;
        state.ScanFrom = null;
        state.HighWater = bulk.MaxStamp is { } max && max < bulk.Created ? max : bulk.Created;
        _logger.LogInformation("{Connector}: {Read} {SObject} records loaded from Bulk API 2.0 query job {JobId}; polling goes on from {Since}", Name, bulk.Read, map.SObject, bulk.JobId, state.HighWater);
        await _bulk.DeleteAsync(bulk.JobId, cancellationToken);
        return result;
    }

    /// <summary>A CSV value as the REST path sees it in JSON: null for empty, IsDeleted a boolean, datetimes in the REST format.</summary>
    private static JsonNode? FromCsv(string field, string? value)
    {
        if (value is null)
        {
            return null;
        }

        if (field.Equals("IsDeleted", StringComparison.OrdinalIgnoreCase))
        {
            return JsonValue.Create(value.Equals("true", StringComparison.OrdinalIgnoreCase));
        }

        // Bulk API writes 2024-05-01T10:00:00.000Z where REST writes 2024-05-01T10:00:00.000+0000.
        if (value.Length == 24 && value[10] == 'T' && value[23] == 'Z')
        {
            return JsonValue.Create(value[..23] + "+0000");
        }

        return JsonValue.Create(value);
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

    /// <summary>
    /// The hub records a change event describes, one per record id, with only the fields it names
    /// (and the stamp, Id and deleted flag); none for an object not configured inbound.
    /// <paramref name="ownWrite"/>: the event names our client as its origin.
    /// </summary>
    internal async Task<IReadOnlyList<InboundRecord>> FromChangeEventAsync(SalesforceChangeEvent change, bool ownWrite, CancellationToken cancellationToken)
    {
        var map = _client.Options.Objects.FirstOrDefault(o => o.Inbound && o.SObject.Equals(change.EntityName, StringComparison.OrdinalIgnoreCase));
        if (map is null || change.IsGap)
        {
            return [];
        }

        var schema = await _schemas.ForAsync(map, cancellationToken);
        var types = await _gateway.ColumnTypesAsync(Name, map.Table, cancellationToken);
        var byField = schema.Fields.ToDictionary(f => f.Field, f => f.Column, StringComparer.OrdinalIgnoreCase);
        var deleted = change.ChangeType is "DELETE";
        var result = new List<InboundRecord>(change.RecordIds.Count);
        foreach (var id in change.RecordIds)
        {
            var fields = new Dictionary<string, JsonNode?>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, value) in change.Fields)
            {
                var type = byField.TryGetValue(name, out var column) ? types.GetValueOrDefault(column) : null;
                fields[name] = EventValue(name, value, type);
            }

            fields["Id"] = id;
            fields["IsDeleted"] = deleted;
            if (fields.GetValueOrDefault("LastModifiedDate") is null)
            {
                // A delete names no fields: the commit's time is the deletion's stamp.
                fields["LastModifiedDate"] = FormatDateTime(change.CommitTimestamp);
            }

            // Events come in commit order: one with the same stamp as the hub's version (two edits in one
            // second, or one millisecond) is the later one.
            var record = ToInbound(map, schema, id, fields) with { OwnWrite = ownWrite, SameStampMayBeNewer = true };
            // Only a create (or undelete) names every field; any other event updates the row the hub holds by its Id.
            result.Add(change.ChangeType is "CREATE" or "UNDELETE" ? record : record with { KeyColumn = map.IdColumn, UpdateOnly = true });
        }

        return result;
    }

    /// <summary>An event value as the REST path reads it: date-times (ms since the epoch) and dates (days) as Salesforce's text.</summary>
    private static JsonNode? EventValue(string field, object? value, string? columnType)
    {
        var dateTime = columnType?.StartsWith("timestamp", StringComparison.Ordinal) == true
            || field is "LastModifiedDate" or "CreatedDate" or "SystemModstamp";
        return value switch
        {
            null => null,
            long ms when dateTime => FormatDateTime(DateTimeOffset.FromUnixTimeMilliseconds(ms)),
            long ms when columnType == "date" => DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            int days when columnType == "date" => DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            string text => JsonValue.Create(text),
            bool flag => JsonValue.Create(flag),
            int number => JsonValue.Create(number),
            long number => JsonValue.Create(number),
            double number => JsonValue.Create(number),
            float number => JsonValue.Create(number),
            byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
            _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
        };
    }

    private static JsonNode FormatDateTime(DateTimeOffset value) =>
        JsonValue.Create(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture));

    private static string Soql(SalesforceObjectOptions map, SalesforceObjectSchema schema, DateTimeOffset? since, bool ordered = true)
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
        // Bulk API 2.0 jobs go unordered: ORDER BY turns off the PK chunking large jobs rely on.
        return $"SELECT {string.Join(", ", fields)} FROM {map.SObject}{where}{(ordered ? " ORDER BY SystemModstamp, Id" : string.Empty)}";
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
