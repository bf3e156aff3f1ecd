using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;
using Polly.CircuitBreaker;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Writes the hub's routed changes of the Salesforce staging tables with sObject Collections
/// (<c>allOrNone=false</c>, up to 200 records a request): rows that already have a Salesforce Id are
/// updated by Id, the others upserted by the external id field, and the Id of a created record is
/// written back to the hub under this connector's origin. A deleted row, or one marked
/// <c>isdeleted</c>, is deleted by Id. Records Salesforce rejects go to dead letters and the rest of
/// the batch lands. Changes are buffered up to a batch and sent in commit order; consecutive
/// changes of one row in a batch collapse into its last state.
/// </summary>
internal sealed class SalesforceOutboundConnector : IOutboundConnector, IHasCircuit, IHasApiBudget
{
    // Codes that mean "already gone": a delete that finds them has nothing left to do.
    private static readonly HashSet<string> GoneCodes = ["ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"];

    private readonly SalesforceClient _client;
    private readonly HubGateway _hub;
    private readonly ILogger _logger;
    private readonly Dictionary<string, SalesforceObjectOptions> _byTable;
    private readonly List<PendingWrite> _pending = [];

    // Transactions of the buffered writes: the hub must show them before the precondition reads it.
    private readonly HashSet<uint> _pendingXids = [];
    private readonly HashSet<string> _warnedTables = [];
    private readonly SalesforceSchemas _schemas;
    private readonly List<OutboundWrite> _acknowledged = [];

    // Rejections outside a collection's results (deletes, a refused request split into records),
    // recorded with the flush's last round trip.
    private readonly List<DeadLetter> _rejected = [];

    // The hub's share of the last collection sent (its Ids, acknowledgements and rejections), still
    // running: it overlaps the next collection's request, from one flush to the next too, so the
    // request is the only wait. Awaited before the hub is read for a later run (lookups,
    // preconditions), before a flush's own round trip and before the checkpoint.
    private Task _recording = Task.CompletedTask;

    // Buffered before a flush, in collections.
    private const int CollectionsPerFlush = 5;

    // Subrequests of one /composite request: updates up to this many go with a precondition each.
    private const int CompositeLimit = 25;

    public SalesforceOutboundConnector(
        SalesforceClient client,
        HubGateway hub,
        ILogger<SalesforceOutboundConnector>? logger = null)
    {
        _client = client;
        _hub = hub;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _byTable = client.Options.Objects.Where(o => o.Outbound).ToDictionary(o => o.Table, StringComparer.Ordinal);
        _schemas = new SalesforceSchemas(client, hub, _logger);
    }

    public string Name => _client.Name;

    public HttpResilience Resilience => _client.Resilience;

    public CircuitState CircuitState => _client.CircuitState;

    /// <summary>The org's daily API allowance, shared with the inbound side (one client per org).</summary>
    public ApiBudget? Budget => _client.Budget;

    public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) =>
        _hub.ReadCheckpointAsync(Name, cancellationToken);

    public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        foreach (var change in changes)
        {
            var write = await ToWriteAsync(change, cancellationToken);
            if (write is null)
            {
                continue;
            }

            _pending.Add(write);
            _pendingXids.Add(change.Transaction.Xid);
            if (_pending.Count >= _client.Options.BatchSize * CollectionsPerFlush)
            {
                await FlushAsync(null, cancellationToken);
            }
        }
    }

    /// <summary>Sends what is buffered, then stores the checkpoint with the flush's last round trip: Salesforce has acknowledged every record by then.</summary>
    public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) =>
        FlushAsync(checkpoint, cancellationToken);

    /// <summary>
    /// Drops the buffer. What was already sent stays in Salesforce; the retry re-sends it, which
    /// upserts by external id and updates by Id make harmless.
    /// </summary>
    public async Task AbortAsync(CancellationToken cancellationToken)
    {
        _pending.Clear();
        _pendingXids.Clear();
        _acknowledged.Clear();
        _rejected.Clear();
        try
        {
            // Nothing of this connector may still write to the hub when the retry starts.
            await _recording;
        }
        catch (Exception e)
        {
            // The failure being retried is already reported; this write-back is redone by the retry.
            _logger.LogDebug(e, "{Connector}: the hub's share of the last collection sent did not complete; the retry sends it again", Name);
        }
        finally
        {
            _recording = Task.CompletedTask;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task<PendingWrite?> ToWriteAsync(ChangeEvent change, CancellationToken cancellationToken)
    {
        var relation = change.Relation;
        if (!_byTable.TryGetValue(relation.Name, out var map))
        {
            if (_warnedTables.Add(relation.Name))
            {
                _logger.LogWarning("{Connector}: no Salesforce object is mapped to table {Table}; its changes are skipped (add it to Salesforce:Objects or fix the route)", Name, relation.Name);
            }

            return null;
        }

        if (change.Kind == ChangeKind.Truncate)
        {
            _logger.LogWarning("{Connector}: TRUNCATE of {Table} is not sent to Salesforce; delete the records there or resync", Name, relation.Name);
            return null;
        }

        if ((change.Kind == ChangeKind.Delete ? change.Old ?? change.Key : change.New) is null)
        {
            return null;
        }

        var hubKey = RowChanges.Text(change, map.KeyColumn)
            ?? throw new InvalidOperationException($"A change of {relation.QualifiedName} has no value for its key column '{map.KeyColumn}'; set REPLICA IDENTITY FULL on the table.");
        var id = RowChanges.Text(change, map.IdColumn);
        var deleted = change.Kind == ChangeKind.Delete || RowChanges.Value(change, map.DeletedColumn) is true;
        if (deleted)
        {
            // A row Salesforce never saw has nothing to delete there; one already deleted, nothing more.
            var wasDeleted = change.Kind == ChangeKind.Update && RowChanges.OldValue(change, map.DeletedColumn) is true;
            return id is null || wasDeleted ? null : new PendingWrite(map, WriteKind.Delete, hubKey, id, null, new JsonObject(), change.Transaction.CommitLsn);
        }

        var schema = await _schemas.ForAsync(map, cancellationToken);
        var changed = RowChanges.ChangedColumns(change);
        var record = new JsonObject { ["attributes"] = new JsonObject { ["type"] = map.SObject } };
        var sent = new List<string>();
        foreach (var field in schema.Fields)
        {
            // Known to Salesforce: only what changed (a stale hub value must not undo a newer edit
            // made there meanwhile). Not yet known (upsert by external id, may create): every value.
            var send = id is null
                ? field.Createable && RowChanges.Value(change, field.Column) is not null
                : field.Updateable && changed.Contains(field.Column);
            if (send)
            {
                record[field.Field] = ToJson(RowChanges.Value(change, field.Column));
                sent.Add(field.Column);
            }
        }

        if (id is null && schema.Find(map.ExternalIdColumn) is { } external && record[external.Field] is null)
        {
            // The hub's trigger fills the external id from hub_id; fall back to it the same way.
            record[external.Field] = hubKey;
        }

        var write = new PendingWrite(map, WriteKind.Save, hubKey, id, record, RowChanges.Changes(change, sent), change.Transaction.CommitLsn);
        foreach (var lookup in map.Lookups)
        {
            if (id is null || changed.Contains(lookup.HubKeyColumn))
            {
                write.ParentKeys[lookup.HubKeyColumn] = RowChanges.Text(change, lookup.HubKeyColumn);
            }
        }

        if (id is not null && sent.Count == 0 && write.ParentKeys.Count == 0)
        {
            return null; // nothing Salesforce holds changed (a hub-only column, the Id write-back's echo)
        }

        return write;
    }

    /// <summary>
    /// Sends the buffer in runs; the hub gets each collection's results while the next one is sent
    /// (the last one's while the next flush starts), then the deletes' acknowledgements, the
    /// rejections and the checkpoint (when committing) in one round trip.
    /// </summary>
    private async Task FlushAsync(NpgsqlLogSequenceNumber? checkpoint, CancellationToken cancellationToken)
    {
        // The preconditions compare with the hub's rows: they must show the changes being sent.
        await _hub.AwaitVisibleAsync(Name, _pendingXids, cancellationToken);
        _pendingXids.Clear();

        // Runs of one object and one kind keep commit order between them; inside a run a row
        // appears once, in its last state.
        var start = 0;
        while (start < _pending.Count)
        {
            var end = start + 1;
            while (end < _pending.Count && _pending[end].Map == _pending[start].Map && _pending[end].Kind == _pending[start].Kind)
            {
                end++;
            }

            var run = _pending.GetRange(start, end - start)
                .GroupBy(w => w.HubKey, StringComparer.Ordinal)
                .Select(g => g.Aggregate((earlier, later) => later.MergedAfter(earlier)))
                .ToList();
            if (run[0].Kind == WriteKind.Delete)
            {
                await DeleteAsync(run, cancellationToken);
            }
            else
            {
                await ResolveLookupsAsync(run, cancellationToken);
                await SaveAsync(run.Where(w => w.Id is not null).ToList(), byId: true, cancellationToken);
                await SaveAsync(run.Where(w => w.Id is null).ToList(), byId: false, cancellationToken);
            }

            start = end;
        }

        _pending.Clear();
        if (checkpoint is null && _acknowledged.Count == 0 && _rejected.Count == 0)
        {
            return; // the last collection's hub work goes on while the next flush is sent
        }

        await _recording;
        var rest = new HubBatchResult { Checkpoint = checkpoint };
        rest.Acknowledged.AddRange(_acknowledged);
        rest.DeadLetters.AddRange(_rejected);
        await _hub.ApplyAsync(Name, rest, cancellationToken);
        _acknowledged.Clear();
        _rejected.Clear();
    }

    private async Task SaveAsync(List<PendingWrite> writes, bool byId, CancellationToken cancellationToken)
    {
        if (byId && writes.Count > 0)
        {
            // The precondition compares with the sync base an earlier run's acknowledgements set.
            // Inside a run a row appears once, so its own collections need not wait for each other.
            await _recording;
        }

        foreach (var all in writes.Chunk(_client.Options.BatchSize))
        {
            await SaveChunkAsync(all, byId, cancellationToken);
        }
    }

    /// <summary>Sends one collection and starts the hub work for it (<see cref="_recording"/>): the Ids it created, then the acknowledged writes.</summary>
    private async Task SaveChunkAsync(PendingWrite[] all, bool byId, CancellationToken cancellationToken)
    {
        var chunk = byId ? await WithoutHeldFieldsAsync(all, cancellationToken) : all;
        if (chunk.Length == 0)
        {
            return;
        }

        var map = chunk[0].Map;
        JsonArray? results;
        if (byId && chunk.Length <= CompositeLimit && chunk.All(w => w.ReadStamp is not null))
        {
            // Up to 25 records: one request as for a collection, and Salesforce checks each record's
            // precondition itself.
            (chunk, results) = await SendConditionallyAsync(chunk, cancellationToken);
            if (chunk.Length == 0)
            {
                return;
            }
        }
        else
        {
            var path = byId
                ? $"{_client.ApiPath}/composite/sobjects"
                : $"{_client.ApiPath}/composite/sobjects/{Uri.EscapeDataString(map.SObject)}/{Uri.EscapeDataString(map.ExternalIdField)}";
            var records = chunk.Select(w =>
            {
                var record = (JsonObject)w.Record!.DeepClone();
                if (byId)
                {
                    record["id"] = w.Id;
                }

                return (JsonNode)record;
            }).ToArray();
            var body = new JsonObject { ["allOrNone"] = false, ["records"] = new JsonArray(records) };
            results = await SendCollectionAsync(HttpMethod.Patch, path, body, chunk, cancellationToken);
        }

        if (results is null)
        {
            return; // sent one by one, each with its own hub work
        }

        var batch = new HubBatchResult();
        var succeeded = new List<OutboundWrite>();
        for (var i = 0; i < chunk.Length; i++)
        {
            var result = results[i];
            var write = chunk[i];
            if (result?["success"]?.GetValue<bool>() == true)
            {
                var newId = result["id"]?.GetValue<string>();
                if (write.Id is null && newId is not null)
                {
                    batch.WriteBacks.Add((map.Table, map.KeyColumn, new WriteBack(write.HubKey, new Dictionary<string, object?> { [map.IdColumn] = newId })));
                }

                succeeded.Add(new OutboundWrite(map.Table, write.HubKey, write.Id ?? newId, write.Id is null ? "upsert" : "update", write.Changes, write.CommitLsn));
            }
            else
            {
                batch.DeadLetters.Add(Rejected(write, Errors(result)));
            }
        }

        _logger.LogDebug("{Connector}: {Count} {SObject} records sent ({Created} Ids to write back)", Name, chunk.Length, map.SObject, batch.WriteBacks.Count);
        // One collection's hub work at a time, in the order they were sent.
        await _recording;
        _recording = RecordAsync();

        // The collection's Ids, acknowledgements and rejections: one hub round trip.
        async Task RecordAsync()
        {
            if (byId)
            {
                // Salesforce's stamp of each update: an inbound page read before it is then not taken for an edit.
                var stamps = await StampsAsync(map, succeeded.Select(a => a.RecordId!), cancellationToken);
                batch.Acknowledged.AddRange(succeeded.Select(a => stamps.TryGetValue(a.RecordId!, out var stamp) ? a with { SystemStamp = stamp } : a));
            }
            else
            {
                batch.Acknowledged.AddRange(succeeded);
            }

            await _hub.ApplyAsync(Name, batch, cancellationToken);
        }
    }

    /// <summary>
    /// Updates as one <c>/composite</c> request of <c>PATCH sobjects/{type}/{id}</c> subrequests, each
    /// with <c>If-Unmodified-Since</c> set to the stamp the precondition read. A record Salesforce
    /// answers 412 for changed after that read: the precondition runs again for it, so that edit is
    /// decided by the policy, and what is left is sent again. Returns the writes as sent and their
    /// results in a collection's form, aligned.
    /// </summary>
    private async Task<(PendingWrite[] Sent, JsonArray Results)> SendConditionallyAsync(PendingWrite[] writes, CancellationToken cancellationToken)
    {
        var sent = new List<PendingWrite>();
        var results = new JsonArray();
        var pending = writes;
        for (var attempt = 1; pending.Length > 0; attempt++)
        {
            var subrequests = pending.Select((w, i) =>
            {
                var record = (JsonObject)w.Record!.DeepClone();
                record.Remove("attributes");
                return (JsonNode)new JsonObject
                {
                    ["method"] = "PATCH",
                    ["url"] = $"{_client.ApiPath}/sobjects/{Uri.EscapeDataString(w.Map.SObject)}/{Uri.EscapeDataString(w.Id!)}",
                    ["referenceId"] = "w" + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["body"] = record,
                    ["httpHeaders"] = new JsonObject { ["If-Unmodified-Since"] = w.ReadStamp!.Value.ToUniversalTime().ToString("R", System.Globalization.CultureInfo.InvariantCulture) },
                };
            }).ToArray();
            var response = await _client.SendAsync(HttpMethod.Post, $"{_client.ApiPath}/composite", new JsonObject { ["allOrNone"] = false, ["compositeRequest"] = new JsonArray(subrequests) }, null, cancellationToken);
            if (response?["compositeResponse"] is not JsonArray answers || answers.Count != pending.Length)
            {
                throw new SalesforceApiException($"Salesforce answered a composite request of {pending.Length} updates without one response each.", null, null, isTransient: true);
            }

            var again = new List<PendingWrite>();
            for (var i = 0; i < pending.Length; i++)
            {
                var status = answers[i]?["httpStatusCode"]?.GetValue<int>() ?? 0;
                if (status == (int)HttpStatusCode.PreconditionFailed && attempt < 10)
                {
                    _logger.LogDebug("{Connector}: {SObject} {Id} changed in Salesforce after the precondition read; reading it again", Name, pending[i].Map.SObject, pending[i].Id);
                    again.Add(pending[i]);
                    continue;
                }

                if (status is 429 or >= 500)
                {
                    throw new SalesforceApiException($"Salesforce answered an update in a composite request with HTTP {status}.", (HttpStatusCode)status, null, isTransient: true);
                }

                sent.Add(pending[i]);
                results.Add(status is >= 200 and < 300
                    ? new JsonObject { ["id"] = pending[i].Id, ["success"] = true, ["errors"] = new JsonArray() }
                    : new JsonObject { ["id"] = pending[i].Id, ["success"] = false, ["errors"] = CollectionErrors(answers[i]?["body"]) });
            }

            pending = again.Count == 0 ? [] : await WithoutHeldFieldsAsync([.. again], cancellationToken);
        }

        return ([.. sent], results);
    }

    /// <summary>A subrequest's error body ({errorCode, message, fields}) in a collection result's form ({statusCode, message, fields}).</summary>
    private static JsonArray CollectionErrors(JsonNode? body) =>
        new([.. (body as JsonArray ?? []).OfType<JsonObject>().Select(e => (JsonNode)new JsonObject
        {
            ["statusCode"] = e["errorCode"]?.DeepClone(),
            ["message"] = e["message"]?.DeepClone(),
            ["fields"] = e["fields"]?.DeepClone() ?? new JsonArray(),
        })]);

    /// <summary>Salesforce's LastModifiedDate of records just written, one query for up to a collection of them.</summary>
    private async Task<Dictionary<string, DateTimeOffset>> StampsAsync(SalesforceObjectOptions map, IEnumerable<string> ids, CancellationToken cancellationToken)
    {
        var stamps = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        var list = ids.Where(id => id is not null).Distinct(StringComparer.Ordinal).ToList();
        if (list.Count == 0)
        {
            return stamps;
        }

        var soql = $"SELECT Id, LastModifiedDate FROM {map.SObject} WHERE Id IN ({SoqlIds(list)})";
        var page = await _client.SendAsync(HttpMethod.Get, $"{_client.ApiPath}/query?q={Uri.EscapeDataString(soql)}", null, null, cancellationToken);
        foreach (var record in (page?["records"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (record["Id"]?.GetValue<string>() is { } id && SalesforceClient.ParseDateTime(record["LastModifiedDate"]?.ToString()) is { } stamp)
            {
                stamps[id] = stamp;
            }
        }

        return stamps;
    }

    private static string SoqlIds(IEnumerable<string> ids) =>
        string.Join(", ", ids.Select(id => "'" + id.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'"));

    /// <summary>
    /// The precondition (OutboundPreconditions): one SOQL read of the chunk's records, then the
    /// fields Salesforce changed since the last sync are taken out of the writes; a write left with
    /// nothing to send is dropped. Runs right before the collection request, to keep the window
    /// between the read and the write small.
    /// </summary>
    private async Task<PendingWrite[]> WithoutHeldFieldsAsync(PendingWrite[] chunk, CancellationToken cancellationToken)
    {
        var map = chunk[0].Map;
        var schema = await _schemas.ForAsync(map, cancellationToken);
        var fields = chunk
            .SelectMany(w => w.Record!.Select(p => p.Key))
            .Where(f => f != "attributes" && schema.Fields.Any(x => x.Field == f))
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();
        if (fields.Count == 0)
        {
            return chunk;
        }

        var soql = $"SELECT Id, LastModifiedDate, {string.Join(", ", fields.Where(f => !f.Equals("LastModifiedDate", StringComparison.OrdinalIgnoreCase)))} FROM {map.SObject} WHERE Id IN ({SoqlIds(chunk.Select(w => w.Id!))})";
        var page = await _client.SendAsync(HttpMethod.Get, $"{_client.ApiPath}/query?q={Uri.EscapeDataString(soql)}", null, null, cancellationToken);
        var byId = (page?["records"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Where(r => r["Id"] is not null)
            .ToDictionary(r => r["Id"]!.GetValue<string>(), StringComparer.Ordinal);

        var current = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var write in chunk)
        {
            if (!byId.TryGetValue(write.Id!, out var record))
            {
                continue; // gone: the update reports it
            }

            write.ReadStamp = SalesforceClient.ParseDateTime(record["LastModifiedDate"]?.ToString());

            var values = new JsonObject();
            foreach (var field in schema.Fields.Where(f => write.Record!.ContainsKey(f.Field) && write.Changes.ContainsKey(f.Column)))
            {
                values[field.Column] = record[field.Field]?.DeepClone();
            }

            current[write.HubKey] = values;
        }

        var written = chunk.ToDictionary(w => w.HubKey, w => OutboundPreconditions.Written(w.Changes), StringComparer.Ordinal);
        var (held, superseded) = await OutboundPreconditions.CheckAsync(_hub, Name, map.Table, written, current, cancellationToken);
        if (held.Count == 0 && superseded.Count == 0)
        {
            return chunk;
        }

        // Decided now: Salesforce's values of the held fields go through the inbound path; the
        // fields the policy kept for the hub's value are written in this request after all.
        var edited = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (key, column) in held)
        {
            if (!edited.TryGetValue(key, out var values))
            {
                edited[key] = values = new JsonObject();
                var write = chunk.First(w => w.HubKey == key);
                if (map.SourceModifiedColumn.Length > 0 && byId[write.Id!]["LastModifiedDate"] is { } stamp)
                {
                    values[map.SourceModifiedColumn] = stamp.DeepClone();
                }
            }

            values[column] = current[key][column]?.DeepClone();
        }

        held.ExceptWith(await _hub.DecideHeldFieldsAsync(Name, map.Table, edited, cancellationToken));

        var kept = new List<PendingWrite>(chunk.Length);
        foreach (var write in chunk)
        {
            foreach (var field in schema.Fields.Where(f => (held.Contains((write.HubKey, f.Column)) || superseded.Contains((write.HubKey, f.Column))) && write.Record!.ContainsKey(f.Field)))
            {
                write.Record!.Remove(field.Field);
                write.Changes.Remove(field.Column);
                if (superseded.Contains((write.HubKey, field.Column)))
                {
                    _logger.LogDebug("{Connector}: {Table} {RecordId} field {Field}: the hub no longer holds the value of this change (a newer one arrived); not written", Name, map.Table, write.Id, field.Column);
                }
                else
                {
                    _logger.LogDebug("{Connector}: {Table} {RecordId} field {Field} was changed in Salesforce since the last sync; not written (the conflict policy took Salesforce's edit or holds it for review)", Name, map.Table, write.Id, field.Column);
                }
            }

            if (write.Record!.Any(p => p.Key != "attributes"))
            {
                kept.Add(write);
            }
        }

        return [.. kept];
    }

    private async Task DeleteAsync(List<PendingWrite> writes, CancellationToken cancellationToken)
    {
        foreach (var chunk in writes.Chunk(_client.Options.BatchSize))
        {
            var ids = string.Join(',', chunk.Select(w => Uri.EscapeDataString(w.Id!)));
            var results = await SendCollectionAsync(HttpMethod.Delete, $"{_client.ApiPath}/composite/sobjects?ids={ids}&allOrNone=false", null, chunk, cancellationToken);
            if (results is null)
            {
                continue;
            }

            for (var i = 0; i < chunk.Length; i++)
            {
                var result = results[i];
                if (result?["success"]?.GetValue<bool>() == true)
                {
                    _acknowledged.Add(new OutboundWrite(chunk[i].Map.Table, chunk[i].HubKey, chunk[i].Id, "delete", chunk[i].Changes, chunk[i].CommitLsn));
                    continue;
                }

                var codes = result?["errors"]?.AsArray().Select(e => e?["statusCode"]?.ToString()).ToList() ?? [];
                if (codes.Count > 0 && codes.All(c => c is not null && GoneCodes.Contains(c)))
                {
                    _logger.LogDebug("{Connector}: {SObject} {Id} was already deleted", Name, chunk[i].Map.SObject, chunk[i].Id);
                    continue;
                }

                _rejected.Add(Rejected(chunk[i], Errors(result)));
            }
        }
    }

    /// <summary>
    /// Sends one collection request and returns its per-record results, one per write. A request
    /// Salesforce refuses as a whole with a 4xx (a value it cannot parse, an unknown field) is split
    /// into single records, so one bad record is dead-lettered alone; null when that happened.
    /// </summary>
    private async Task<JsonArray?> SendCollectionAsync(HttpMethod method, string path, JsonObject? body, PendingWrite[] chunk, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _client.SendAsync(method, path, body, null, cancellationToken);
            if (response is JsonArray results && results.Count == chunk.Length)
            {
                return results;
            }

            throw new SalesforceApiException($"Salesforce answered {method} {path.Split('?')[0]} with {(response as JsonArray)?.Count ?? 0} results for {chunk.Length} records.", null, null, isTransient: true);
        }
        catch (SalesforceApiException e) when (!e.IsTransient && !e.IsAuthentication && e.StatusCode is >= HttpStatusCode.BadRequest and < HttpStatusCode.InternalServerError)
        {
            if (chunk.Length == 1)
            {
                _rejected.Add(Rejected(chunk[0], $"{e.ErrorCode}: {e.Message}"));
                return null;
            }

            _logger.LogWarning("{Connector}: Salesforce refused a batch of {Count} {SObject} records ({ErrorCode}); sending them one by one", Name, chunk.Length, chunk[0].Map.SObject, e.ErrorCode);
            foreach (var single in chunk)
            {
                if (single.Kind == WriteKind.Delete)
                {
                    await DeleteAsync([single], cancellationToken);
                }
                else
                {
                    await SaveAsync([single], single.Id is not null, cancellationToken);
                }
            }

            return null;
        }
    }

    /// <summary>Fills missing parent Ids (e.g. Contact.AccountId) from the parents' hub rows, every lookup of the run in one hub round trip.</summary>
    private async Task ResolveLookupsAsync(List<PendingWrite> writes, CancellationToken cancellationToken)
    {
        var map = writes[0].Map;
        var schema = await _schemas.ForAsync(map, cancellationToken);
        var wanted = new List<(LookupOptions Lookup, string Field, List<PendingWrite> Missing)>();
        foreach (var lookup in map.Lookups)
        {
            if (schema.Find(lookup.Column)?.Field is not { } field)
            {
                continue;
            }

            var missing = writes.Where(w => w.Record![field] is null && w.ParentKeys.TryGetValue(lookup.HubKeyColumn, out var k) && k is not null).ToList();
            if (missing.Count > 0)
            {
                wanted.Add((lookup, field, missing));
            }
        }

        if (wanted.Count == 0)
        {
            return;
        }

        // A parent may have been created by a collection whose Ids are still being written back.
        await _recording;
        var ids = await _hub.ParentIdsAsync(
            Name,
            wanted.Select(w => (w.Lookup.Parent(), (IReadOnlyCollection<string>)w.Missing.Select(m => m.ParentKeys[w.Lookup.HubKeyColumn]!).ToList())).ToList(),
            cancellationToken);
        foreach (var (lookup, field, missing) in wanted)
        {
            foreach (var write in missing)
            {
                if (ids[lookup.Parent()].TryGetValue(write.ParentKeys[lookup.HubKeyColumn]!, out var parentId))
                {
                    write.Record![field] = parentId;
                }
            }
        }
    }

    private DeadLetter Rejected(PendingWrite write, string error)
    {
        _logger.LogWarning("{Connector}: Salesforce rejected {SObject} {RecordKey}: {Error}", Name, write.Map.SObject, write.HubKey, error);
        var payload = write.Record?.ToJsonString() ?? new JsonObject { ["id"] = write.Id, ["operation"] = "delete" }.ToJsonString();
        return new DeadLetter(write.Map.Table, write.HubKey, payload, error, write.CommitLsn);
    }

    private static string Errors(JsonNode? result)
    {
        var errors = result?["errors"] as JsonArray;
        if (errors is null || errors.Count == 0)
        {
            return "Salesforce reported a failure without an error.";
        }

        return string.Join("; ", errors.Select(e =>
        {
            var fields = e?["fields"] is JsonArray f && f.Count > 0 ? $" [{string.Join(", ", f.Select(x => x?.ToString()))}]" : string.Empty;
            return $"{e?["statusCode"]}: {e?["message"]}{fields}";
        }));
    }

    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        short or int or long => JsonValue.Create(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)),
        decimal d => JsonValue.Create(d),
        float or double => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)),
        DateTime dt => JsonValue.Create(dt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture)),
        DateOnly d => JsonValue.Create(d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(HubSql.ToText(value)),
    };

    private enum WriteKind
    {
        Save,
        Delete,
    }

    private sealed class PendingWrite(SalesforceObjectOptions map, WriteKind kind, string hubKey, string? id, JsonObject? record, JsonObject changes, NpgsqlLogSequenceNumber commitLsn)
    {
        /// <summary>The fields sent, before (old hub value) and after (value written), for <c>cdc.record_outbound</c>.</summary>
        public JsonObject Changes { get; } = changes;

        public SalesforceObjectOptions Map { get; } = map;

        public WriteKind Kind { get; } = kind;

        public string HubKey { get; } = hubKey;

        public string? Id { get; } = id;

        public JsonObject? Record { get; } = record;

        public NpgsqlLogSequenceNumber CommitLsn { get; } = commitLsn;

        /// <summary>The record's LastModifiedDate as the precondition read it; null before that read.</summary>
        public DateTimeOffset? ReadStamp { get; set; }

        /// <summary>Hub keys of parents, for lookups the hub may resolve later.</summary>
        public Dictionary<string, string?> ParentKeys { get; } = new(StringComparer.Ordinal);

        /// <summary>
        /// This write following an earlier one of the same row in one run: the fields of both, later
        /// values winning, each field's "before" from the earlier write.
        /// </summary>
        public PendingWrite MergedAfter(PendingWrite earlier)
        {
            if (Kind == WriteKind.Delete || earlier.Kind == WriteKind.Delete || earlier.Record is null || Record is null)
            {
                return this;
            }

            var record = (JsonObject)earlier.Record.DeepClone();
            foreach (var (field, value) in Record)
            {
                record[field] = value?.DeepClone();
            }

            var changes = (JsonObject)earlier.Changes.DeepClone();
            foreach (var (column, change) in Changes)
            {
                changes[column] = changes[column] is JsonObject before
                    ? new JsonObject { ["before"] = before["before"]?.DeepClone(), ["after"] = change?["after"]?.DeepClone() }
                    : change?.DeepClone();
            }

            var merged = new PendingWrite(Map, Kind, HubKey, Id ?? earlier.Id, record, changes, CommitLsn);
            foreach (var (key, value) in earlier.ParentKeys.Concat(ParentKeys))
            {
                merged.ParentKeys[key] = value;
            }

            return merged;
        }
    }
}
