using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Writes the configured staging tables to their NetSuite record types. A row NetSuite does not know
/// yet (no internal id) is upserted by external id (<c>PUT {type}/eid:{externalId}</c>), which makes a
/// re-sent change harmless, and the internal id from the <c>Location</c> header is written back to
/// the hub under this connector's origin; a known row is patched with the fields that changed and
/// nothing else. Sublists are merged with what NetSuite holds (<see cref="NetSuiteSublists"/>).
/// A reference the hub row leaves empty (an opportunity's entity whose customer NetSuite is still
/// creating) is filled at send time from the parent's hub row (<see cref="NetSuiteRecordOptions.Lookups"/>);
/// such rows go after the rest of the batch and its write-backs, so a parent created in the same
/// batch is known by then.
/// Deletes make the record inactive (or delete it when configured). Changes to different rows run
/// concurrently up to the account's limit; changes to one row run in commit order. Records NetSuite
/// refuses go to dead letters. Every request is acknowledged before <see cref="WriteAsync"/>
/// returns, and recorded in the hub (<c>cdc.record_outbound</c>) in one round trip per batch, so the
/// checkpoint is written in <see cref="CommitAsync"/> alone.
/// </summary>
internal sealed class NetSuiteOutboundConnector : IOutboundConnector, IHasCircuit
{
    private const string RecordPath = "services/rest/record/v1/";

    private readonly NetSuiteOptions _options;
    private readonly NetSuiteClient _client;
    private readonly bool _ownsClient;
    private readonly HubGateway _hub;
    private readonly NetSuiteSchemas _schemas;
    private readonly Dictionary<string, NetSuiteRecordOptions> _byTable;
    private readonly ILogger _logger;

    public NetSuiteOutboundConnector(
        string name,
        NetSuiteOptions options,
        HubGateway hub,
        ILogger<NetSuiteOutboundConnector>? logger = null,
        TimeProvider? timeProvider = null,
        HttpMessageHandler? handler = null)
        : this(name, options, new NetSuiteClient(name, options, handler, timeProvider ?? TimeProvider.System, (ILogger?)logger ?? NullLogger.Instance), hub, logger)
    {
        _ownsClient = true;
    }

    /// <summary>With the account's client shared with the inbound side (one limiter and breaker per account); the caller owns it.</summary>
    internal NetSuiteOutboundConnector(string name, NetSuiteOptions options, NetSuiteClient client, HubGateway hub, ILogger<NetSuiteOutboundConnector>? logger = null)
    {
        Name = name;
        _options = options;
        _hub = hub;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _client = client;
        _schemas = new NetSuiteSchemas(_client, hub, name, _logger);
        _byTable = options.Records.ToDictionary(r => r.Table, StringComparer.Ordinal);
    }

    public string Name { get; }

    /// <summary>Circuit breaker state and adaptive rate limiter, for health reporting.</summary>
    public HttpResilience Resilience => _client.Resilience;

    public Polly.CircuitBreaker.CircuitState CircuitState => _client.Resilience.CircuitBreaker.CircuitState;

    public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) =>
        _hub.ReadCheckpointAsync(Name, cancellationToken);

    public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        // The preconditions compare with the hub's rows: they must show these changes.
        await _hub.AwaitVisibleAsync(Name, changes.Select(c => c.Transaction.Xid), cancellationToken);

        // One queue per row keeps each row's changes in commit order while rows run in parallel.
        var perRow = new Dictionary<string, List<(ChangeEvent, NetSuiteRecordOptions)>>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            if (change.Kind == ChangeKind.Truncate)
            {
                _logger.LogWarning("{Connector}: ignoring TRUNCATE of {Table}; NetSuite records are never removed in bulk", Name, change.Relation.Name);
                continue;
            }

            if (!_byTable.TryGetValue(change.Relation.Name, out var map))
            {
                throw new InvalidOperationException(
                    $"Connector '{Name}' was routed a change of '{change.Relation.QualifiedName}', which none of its Records maps; add it to Connectors:{Name}:Records (RecordType, Table) or fix the route.");
            }

            var key = change.Relation.Name + "|" + (RowChanges.Text(change, map.KeyColumn) ?? change.Position.ToString(CultureInfo.InvariantCulture));
            if (!perRow.TryGetValue(key, out var list))
            {
                perRow[key] = list = [];
            }

            list.Add((change, map));
        }

        // Rows waiting for a parent's internal id (a lookup) go after the others and their internal
        // id write-backs, so a parent created in the same batch is known to the hub by then. The
        // hub hears of the batch in one round trip at its end (plus one for those write-backs and
        // one for the parents' ids when a row waits for a parent).
        var done = new WaveResults();
        var waves = perRow.Values.ToLookup(NeedsParent);
        await ApplyWaveAsync(waves[false], done, null, cancellationToken);
        if (waves[true].Any())
        {
            var writeBacks = new HubBatchResult();
            writeBacks.WriteBacks.AddRange(done.WriteBacks);
            done.WriteBacks.Clear();
            await _hub.ApplyAsync(Name, writeBacks, cancellationToken);
            await ApplyWaveAsync(waves[true], done, await ParentIdsAsync(waves[true], cancellationToken), cancellationToken);
        }

        var result = new HubBatchResult();
        result.WriteBacks.AddRange(done.WriteBacks);
        result.Acknowledged.AddRange(await WithStampsAsync(done.Acknowledged, cancellationToken));
        result.DeadLetters.AddRange(done.DeadLetters);
        await _hub.ApplyAsync(Name, result, cancellationToken);
    }

    /// <summary>The internal ids of the parents the rows of a wave name by hub key, every lookup in one hub round trip.</summary>
    private async Task<IReadOnlyDictionary<ParentLookup, Dictionary<string, string>>> ParentIdsAsync(IEnumerable<List<(ChangeEvent Change, NetSuiteRecordOptions Map)>> rows, CancellationToken cancellationToken)
    {
        var keys = new Dictionary<ParentLookup, HashSet<string>>();
        foreach (var (change, map) in rows.SelectMany(r => r))
        {
            foreach (var lookup in map.Lookups)
            {
                if (RowChanges.Text(change, lookup.HubKeyColumn) is { } key)
                {
                    (keys.TryGetValue(lookup.Parent(), out var set) ? set : keys[lookup.Parent()] = new HashSet<string>(StringComparer.Ordinal)).Add(key);
                }
            }
        }

        return await _hub.ParentIdsAsync(Name, keys.Select(k => (k.Key, (IReadOnlyCollection<string>)k.Value)).ToList(), cancellationToken);
    }

    /// <summary>What the rows of a batch left for the hub, gathered from the concurrent writes.</summary>
    private sealed class WaveResults
    {
        public ConcurrentQueue<OutboundWrite> Acknowledged { get; } = new();

        public ConcurrentQueue<DeadLetter> DeadLetters { get; } = new();

        public List<(string Table, string KeyColumn, WriteBack Row)> WriteBacks { get; } = [];

        public ConcurrentQueue<(NetSuiteRecordOptions Map, string HubId, Dictionary<string, object?> Values)> Assigned { get; } = new();
    }

    /// <summary>
    /// NetSuite's lastModifiedDate of each updated or upserted record, one SuiteQL query per record type
    /// and batch (a PATCH answers 204 without it, a PUT 204 with the Location only), so an inbound page
    /// read before the write is not taken for an edit: the first read-back of a record we created, read
    /// before our next write of it and applied after, carries the create's stamp, not a newer one.
    /// </summary>
    private async Task<List<OutboundWrite>> WithStampsAsync(IEnumerable<OutboundWrite> writes, CancellationToken cancellationToken)
    {
        var list = writes.ToList();
        foreach (var group in list.Where(w => Stamped(w) && long.TryParse(w.RecordId, NumberStyles.None, CultureInfo.InvariantCulture, out _)).GroupBy(w => w.Object, StringComparer.Ordinal))
        {
            var map = _byTable[group.Key];
            var stamps = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            foreach (var ids in group.Select(w => w.RecordId!).Distinct(StringComparer.Ordinal).Chunk(500))
            {
                var query = $"SELECT id, TO_CHAR({map.ModifiedField}, '{NetSuiteInboundConnector.IsoFormat}') AS cdc_modified_iso FROM {map.RecordType} WHERE id IN ({string.Join(", ", ids)})";
                var response = await _client.SendAsync(HttpMethod.Post, $"{NetSuiteInboundConnector.SuiteQlPath}?limit=1000&offset=0", new JsonObject { ["q"] = query }, true, cancellationToken);
                NetSuiteClient.EnsureSuccess(response, $"SuiteQL read-back of {map.RecordType} stamps");
                foreach (var row in (JsonNode.Parse(response.Body)?["items"] as JsonArray ?? []).OfType<JsonObject>())
                {
                    if (row["id"]?.ToString() is { } id && NetSuiteInboundConnector.ParseIso(row["cdc_modified_iso"]?.ToString()) is { } stamp)
                    {
                        stamps[id] = stamp;
                    }
                }
            }

            for (var i = 0; i < list.Count; i++)
            {
                if (list[i].Object == group.Key && Stamped(list[i]) && list[i].RecordId is { } recordId && stamps.TryGetValue(recordId, out var stamp))
                {
                    list[i] = list[i] with { SystemStamp = stamp };
                }
            }
        }

        return list;
    }

    /// <summary>Writes whose base gets NetSuite's stamp: updates and upserts (a delete leaves no base).</summary>
    private static bool Stamped(OutboundWrite write) => write.Operation is "update" or "upsert";

    private async Task ApplyWaveAsync(
        IEnumerable<List<(ChangeEvent, NetSuiteRecordOptions)>> rows, WaveResults done, IReadOnlyDictionary<ParentLookup, Dictionary<string, string>>? parents, CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(
            rows,
            new ParallelOptions { MaxDegreeOfParallelism = _options.ConcurrencyLimit, CancellationToken = cancellationToken },
            async (rowChanges, ct) =>
            {
                foreach (var (change, map) in Collapse(rowChanges))
                {
                    await ApplyAsync(change, map, done, parents, ct);
                }
            });

        while (done.Assigned.TryDequeue(out var assigned))
        {
            done.WriteBacks.Add((assigned.Map.Table, assigned.Map.KeyColumn, new WriteBack(assigned.HubId, assigned.Values)));
        }
    }

    /// <summary>A row that names a parent by hub key only (the lookup column is empty): its internal id is resolved at send time.</summary>
    private static bool NeedsParent(List<(ChangeEvent Change, NetSuiteRecordOptions Map)> rowChanges) =>
        rowChanges.Any(c => c.Change.Kind != ChangeKind.Delete && c.Change.New is not null
            && c.Map.Lookups.Any(l => RowChanges.Value(c.Change, l.Column) is null && RowChanges.Value(c.Change, l.HubKeyColumn) is not null));

    public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) =>
        _hub.WriteCheckpointAsync(Name, checkpoint, cancellationToken);

    /// <summary>Nothing to drop: writes are upserts keyed by external id or patches by internal id, so replaying them is harmless.</summary>
    public Task AbortAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Consecutive inserts and updates of one row in a batch become one change from the first old
    /// row to the last new one (a transform that inserts a row and then fills one more field in the
    /// same transaction costs one NetSuite write, not two). Deletes and schema changes break a run.
    /// </summary>
    private static IEnumerable<(ChangeEvent, NetSuiteRecordOptions)> Collapse(List<(ChangeEvent Change, NetSuiteRecordOptions Map)> rowChanges)
    {
        var i = 0;
        while (i < rowChanges.Count)
        {
            var (first, map) = rowChanges[i];
            var j = i + 1;
            while (first.Kind is ChangeKind.Insert or ChangeKind.Update
                && j < rowChanges.Count
                && rowChanges[j].Change.Kind == ChangeKind.Update
                && ReferenceEquals(rowChanges[j].Change.Relation, first.Relation)
                && rowChanges[j].Change.New is not null)
            {
                j++;
            }

            if (j == i + 1)
            {
                yield return (first, map);
            }
            else
            {
                var last = rowChanges[j - 1].Change;
                yield return (first with { New = last.New, Old = first.Kind == ChangeKind.Insert ? null : first.Old, Transaction = last.Transaction, Position = last.Position }, map);
            }

            i = j;
        }
    }

    private async Task ApplyAsync(
        ChangeEvent change,
        NetSuiteRecordOptions map,
        WaveResults done,
        IReadOnlyDictionary<ParentLookup, Dictionary<string, string>>? parents,
        CancellationToken cancellationToken)
    {
        var relation = change.Relation;
        if ((change.Kind == ChangeKind.Delete ? change.Old : change.New) is null)
        {
            _logger.LogWarning("{Connector}: {Table} change {Id} carries no row (REPLICA IDENTITY must be FULL); skipped", Name, relation.Name, change.IdempotencyKey);
            return;
        }

        var hubId = RowChanges.Text(change, map.KeyColumn);
        var internalId = RowChanges.Text(change, map.IdColumn);
        var externalId = RowChanges.Text(change, map.ExternalIdColumn);
        var schema = await _schemas.ForAsync(map, cancellationToken);
        JsonObject? body = null;
        try
        {
            if (change.Kind == ChangeKind.Delete)
            {
                if (await DeleteAsync(map, schema, internalId, externalId, cancellationToken))
                {
                    done.Acknowledged.Enqueue(new OutboundWrite(map.Table, hubId ?? change.IdempotencyKey, internalId, "delete", new JsonObject(), change.Transaction.CommitLsn));
                }

                return;
            }

            // Known to NetSuite: only what changed, so a stale hub value never undoes a newer edit
            // made there meanwhile. Not known yet (upsert, may create): every value the row has.
            var changed = RowChanges.ChangedColumns(change);
            var sent = schema.Fields
                .Where(f => f.Writable && (internalId is null ? RowChanges.Value(change, f.Column) is not null : changed.Contains(f.Column)))
                .ToList();
            if (internalId is not null && sent.Count == 0 && !map.Lookups.Any(l => changed.Contains(l.HubKeyColumn)))
            {
                // Nothing NetSuite holds changed (the internal id write-back, a hub-only column).
                _logger.LogDebug("{Connector}: {Table} {RecordId}: no field NetSuite holds changed ({Changed}); nothing written", Name, map.Table, internalId, string.Join(",", changed));
                return;
            }

            // The precondition: what NetSuite holds now, so a field edited there since the last sync
            // is not overwritten (OutboundPreconditions); the same read feeds the sublist merge.
            JsonObject? current = null;
            if (internalId is not null && hubId is not null)
            {
                current = await CurrentRecordAsync(map, internalId, cancellationToken);
                var held = await HeldAsync(change, map, hubId, internalId, sent, current, cancellationToken);
                sent.RemoveAll(f => held.Contains(f.Column));
                if (sent.Count == 0 && !map.Lookups.Any(l => changed.Contains(l.HubKeyColumn)))
                {
                    _logger.LogDebug("{Connector}: {Table} {RecordId}: every changed field held ({Held}); nothing written", Name, map.Table, internalId, string.Join(",", held));
                    return;
                }
            }

            body = new JsonObject();
            var sublists = new List<string>();
            foreach (var field in sent)
            {
                body[field.Field] = await ToNodeAsync(change, map, field, internalId, current, cancellationToken);
                if (field.Kind == NetSuiteFieldKind.Sublist)
                {
                    sublists.Add(field.Field);
                }
            }

            var changes = RowChanges.Changes(change, sent.Select(f => f.Column));
            var resolved = new Dictionary<string, object?>(StringComparer.Ordinal);
            if (ResolveLookups(change, map, schema, internalId, changed, body, changes, resolved, parents) is { } missingParent)
            {
                done.DeadLetters.Enqueue(Rejected(change, hubId ?? externalId, body, missingParent));
                return;
            }

            if (internalId is not null && body.Count == 0)
            {
                return; // only a lookup's hub key changed, to a parent NetSuite does not know yet
            }

            // Sublists were merged with NetSuite's current lines above, so the merged list replaces them.
            var replace = sublists.Count > 0 ? "?replace=" + Uri.EscapeDataString(string.Join(',', sublists)) : string.Empty;
            if (internalId is not null)
            {
                var response = await _client.SendAsync(HttpMethod.Patch, $"{RecordPath}{map.RecordType}/{Uri.EscapeDataString(internalId)}{replace}", body, false, cancellationToken);
                NetSuiteClient.EnsureSuccess(response, $"update {map.RecordType} {internalId}");
                done.Acknowledged.Enqueue(new OutboundWrite(map.Table, hubId ?? internalId, internalId, "update", changes, change.Transaction.CommitLsn));
                if (resolved.Count > 0 && hubId is not null)
                {
                    done.Assigned.Enqueue((map, hubId, resolved));
                }

                return;
            }

            if (externalId is null)
            {
                done.DeadLetters.Enqueue(Rejected(change, hubId, body, $"The row has neither {map.IdColumn} nor {map.ExternalIdColumn}; NetSuite upserts need an external id (set it in the transform)."));
                return;
            }

            var upsert = await _client.SendAsync(HttpMethod.Put, $"{RecordPath}{map.RecordType}/eid:{Uri.EscapeDataString(externalId)}{replace}", body, false, cancellationToken);
            NetSuiteClient.EnsureSuccess(upsert, $"upsert {map.RecordType} eid:{externalId}");
            var newId = upsert.Location?.Segments[^1];
            done.Acknowledged.Enqueue(new OutboundWrite(map.Table, hubId ?? externalId, newId, "upsert", changes, change.Transaction.CommitLsn));
            if (newId is null || hubId is null)
            {
                _logger.LogWarning("{Connector}: upsert of {RecordType} {ExternalId} returned no Location header; internal id not written back", Name, map.RecordType, externalId);
                return;
            }

            // The resolved parent ids too, under this connector's origin (not routed back): the hub
            // then holds what NetSuite holds, and no transform re-sends them as a change.
            resolved[map.IdColumn] = newId;
            done.Assigned.Enqueue((map, hubId, resolved));
        }
        catch (NetSuiteApiException e) when (e.IsPermanentRecordError)
        {
            done.DeadLetters.Enqueue(Rejected(change, hubId ?? externalId ?? internalId, body, e.Message));
        }
    }

    /// <summary>
    /// Fills an empty reference (e.g. an opportunity's entity) from the internal id of the parent's
    /// hub row, for a row NetSuite does not know yet or whose parent changed. Returns why the row
    /// cannot be sent when a new row's parent has no internal id, else null.
    /// </summary>
    private static string? ResolveLookups(
        ChangeEvent change,
        NetSuiteRecordOptions map,
        NetSuiteRecordSchema schema,
        string? internalId,
        HashSet<string> changed,
        JsonObject body,
        JsonObject changes,
        Dictionary<string, object?> resolved,
        IReadOnlyDictionary<ParentLookup, Dictionary<string, string>>? parents)
    {
        foreach (var lookup in map.Lookups)
        {
            var parentKey = RowChanges.Text(change, lookup.HubKeyColumn);
            if (schema.Find(lookup.Column) is not { Writable: true } field
                || RowChanges.Value(change, lookup.Column) is not null
                || parentKey is null
                || (internalId is not null && !changed.Contains(lookup.HubKeyColumn) && !changed.Contains(lookup.Column)))
            {
                continue;
            }

            if (parents is not null && parents.TryGetValue(lookup.Parent(), out var ids) && ids.TryGetValue(parentKey, out var parentId))
            {
                body[field.Field] = new JsonObject { ["id"] = parentId };
                resolved[lookup.Column] = parentId;
                changes[lookup.Column] = new JsonObject { ["before"] = RowChanges.OldValue(change, lookup.Column) is { } old ? JsonValue.Create(HubSql.ToText(old)) : null, ["after"] = parentId };
            }
            else if (internalId is null)
            {
                return $"Its {lookup.Column} is {lookup.ParentTable} row {parentKey}, which NetSuite has not created (no {lookup.ParentIdColumn}); replay this dead letter once that row is in NetSuite.";
            }
            else
            {
                // Moved to a parent NetSuite does not know yet: keep the old reference rather than blank it.
                body.Remove(field.Field);
                changes.Remove(lookup.Column);
            }
        }

        return null;
    }

    private async Task<JsonNode?> ToNodeAsync(ChangeEvent change, NetSuiteRecordOptions map, NetSuiteField field, string? internalId, JsonObject? current, CancellationToken cancellationToken)
    {
        var value = RowChanges.Value(change, field.Column);
        switch (field.Kind)
        {
            case NetSuiteFieldKind.Reference:
                return value is null ? null : new JsonObject { ["id"] = HubSql.ToText(value) };
            case NetSuiteFieldKind.Sublist:
                var after = value is string json ? JsonNode.Parse(json) as JsonArray ?? [] : [];
                if (internalId is null)
                {
                    return new JsonObject { ["items"] = after };
                }

                var before = RowChanges.OldValue(change, field.Column) is string old ? JsonNode.Parse(old) as JsonArray : null;
                var lines = current is null
                    ? await CurrentLinesAsync(map, field, internalId, cancellationToken)
                    : NetSuiteSublists.Clean(current[field.Field]?["items"] as JsonArray ?? []);
                return new JsonObject { ["items"] = NetSuiteSublists.Merge(before, after, lines, map.SublistKeys.GetValueOrDefault(field.Column)) };
            case NetSuiteFieldKind.Timestamp:
                return value is DateTime dt ? JsonValue.Create(dt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)) : null;
            case NetSuiteFieldKind.Date:
                return value is DateOnly d ? JsonValue.Create(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)) : null;
            default:
                return value switch
                {
                    null => null,
                    bool b => JsonValue.Create(b),
                    string s => JsonValue.Create(s),
                    decimal number => JsonValue.Create(number),
                    short or int or long => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
                    float or double => JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
                    _ => JsonValue.Create(HubSql.ToText(value)),
                };
        }
    }

    /// <summary>The record as NetSuite holds it now (sublists expanded), or null when it is gone (the PATCH then reports it).</summary>
    private async Task<JsonObject?> CurrentRecordAsync(NetSuiteRecordOptions map, string internalId, CancellationToken cancellationToken)
    {
        var response = await _client.SendAsync(HttpMethod.Get, $"{RecordPath}{map.RecordType}/{Uri.EscapeDataString(internalId)}?expandSubResources=true", null, false, cancellationToken);
        if (response.StatusCode == 404)
        {
            return null;
        }

        NetSuiteClient.EnsureSuccess(response, $"read {map.RecordType} {internalId}");
        return JsonNode.Parse(response.Body) as JsonObject;
    }

    /// <summary>
    /// Columns of <paramref name="sent"/> not to write: those whose value the hub no longer holds (a
    /// newer change arrived since this one), and those NetSuite changed since the last sync (for sublists,
    /// lines NetSuite changed that this change does not rewrite survive the merge) unless the policy kept the hub's value.
    /// Logged at Debug and counted.
    /// </summary>
    private async Task<HashSet<string>> HeldAsync(ChangeEvent change, NetSuiteRecordOptions map, string hubId, string internalId, List<NetSuiteField> sent, JsonObject? current, CancellationToken cancellationToken)
    {
        var columns = new HashSet<string>(StringComparer.Ordinal);
        if (current is null)
        {
            return columns;
        }

        var values = new JsonObject();
        foreach (var field in sent)
        {
            // The REST record returns references as {"id", "refName"}; the hub keeps the id (as SuiteQL
            // reads it), and sublists as their lines (as the inbound side reads them).
            var node = current[field.Field];
            values[field.Column] = field.Kind switch
            {
                NetSuiteFieldKind.Reference => node?["id"]?.DeepClone(),
                NetSuiteFieldKind.Sublist => NetSuiteSublists.Clean(node?["items"] as JsonArray ?? []),
                _ => node?.DeepClone(),
            };
        }

        var written = OutboundPreconditions.Written(RowChanges.Changes(change, sent.Select(f => f.Column)));
        var (held, superseded) = await OutboundPreconditions.CheckAsync(_hub, Name, map.Table, new Dictionary<string, JsonObject> { [hubId] = written }, new Dictionary<string, JsonObject> { [hubId] = values }, cancellationToken);
        foreach (var (_, column) in superseded)
        {
            columns.Add(column);
            _logger.LogDebug("{Connector}: {Table} {RecordId} field {Field}: the hub no longer holds the value of this change (a newer one arrived); not written", Name, map.Table, internalId, column);
        }

        // A sublist NetSuite changed is merged line by line (its other lines survive the write); it is
        // held only when a line this change rewrites was changed in NetSuite too.
        foreach (var field in sent.Where(f => f.Kind == NetSuiteFieldKind.Sublist && held.Contains((hubId, f.Column))))
        {
            var before = RowChanges.OldValue(change, field.Column) is string old ? JsonNode.Parse(old) as JsonArray : null;
            var after = RowChanges.Value(change, field.Column) is string json ? JsonNode.Parse(json) as JsonArray ?? [] : [];
            if (!NetSuiteSublists.ChangedOnBothSides(before, after, (JsonArray)values[field.Column]!, map.SublistKeys.GetValueOrDefault(field.Column)))
            {
                held.Remove((hubId, field.Column));
            }
        }

        if (held.Count == 0)
        {
            return columns;
        }

        // Decided now: NetSuite's values of the held fields go through the inbound path.
        var edited = new JsonObject();
        foreach (var (_, column) in held)
        {
            edited[column] = values[column]?.DeepClone();
        }

        if (map.SourceModifiedColumn.Length > 0 && current["lastModifiedDate"] is { } stamp)
        {
            edited[map.SourceModifiedColumn] = stamp.DeepClone();
        }

        var writeNow = await _hub.DecideHeldFieldsAsync(Name, map.Table, new Dictionary<string, JsonObject> { [hubId] = edited }, cancellationToken);
        foreach (var (_, column) in held)
        {
            if (writeNow.Contains((hubId, column)))
            {
                _logger.LogDebug("{Connector}: {Table} {RecordId} field {Field} was changed in NetSuite since the last sync; the conflict policy kept the hub's value, written", Name, map.Table, internalId, column);
                continue;
            }

            columns.Add(column);
            _logger.LogDebug("{Connector}: {Table} {RecordId} field {Field} was changed in NetSuite since the last sync; not written (the conflict policy took NetSuite's edit or holds it for review)", Name, map.Table, internalId, column);
        }

        return columns;
    }

    /// <summary>The sublist's lines as NetSuite holds them now, so lines the hub does not know about survive the write.</summary>
    private async Task<JsonArray> CurrentLinesAsync(NetSuiteRecordOptions map, NetSuiteField field, string internalId, CancellationToken cancellationToken)
    {
        var response = await _client.SendAsync(HttpMethod.Get, $"{RecordPath}{map.RecordType}/{Uri.EscapeDataString(internalId)}?expandSubResources=true", null, false, cancellationToken);
        if (response.StatusCode == 404)
        {
            return [];
        }

        NetSuiteClient.EnsureSuccess(response, $"read {map.RecordType} {internalId}");
        return NetSuiteSublists.Clean(JsonNode.Parse(response.Body)?[field.Field]?["items"] as JsonArray ?? []);
    }

    /// <summary>Inactivates (or deletes) the record; false when it never reached NetSuite.</summary>
    private async Task<bool> DeleteAsync(NetSuiteRecordOptions map, NetSuiteRecordSchema schema, string? internalId, string? externalId, CancellationToken cancellationToken)
    {
        var key = internalId is not null ? Uri.EscapeDataString(internalId) : externalId is not null ? "eid:" + Uri.EscapeDataString(externalId) : null;
        if (key is null)
        {
            return false;
        }

        var inactivate = _options.InactivateInsteadOfDelete && schema.Find(map.InactiveColumn) is not null;
        var response = inactivate
            ? await _client.SendAsync(HttpMethod.Patch, $"{RecordPath}{map.RecordType}/{key}", new JsonObject { [schema.Find(map.InactiveColumn)!.Field] = true }, false, cancellationToken)
            : await _client.SendAsync(HttpMethod.Delete, $"{RecordPath}{map.RecordType}/{key}", null, false, cancellationToken);
        if (response.StatusCode == 404)
        {
            return true; // Already gone: the delete has happened.
        }

        NetSuiteClient.EnsureSuccess(response, $"{(inactivate ? "inactivate" : "delete")} {map.RecordType} {key}");
        return true;
    }

    private DeadLetter Rejected(ChangeEvent change, string? recordKey, JsonObject? body, string error)
    {
        _logger.LogWarning("{Connector}: NetSuite rejected {Table} row {RecordKey}; dead-lettered: {Error}", Name, change.Relation.Name, recordKey, error);
        var payload = new JsonObject
        {
            ["operation"] = change.Kind.ToString().ToLowerInvariant(),
            ["changeId"] = change.IdempotencyKey,
            ["record"] = body,
        };
        return new DeadLetter(change.Relation.Name, recordKey ?? change.IdempotencyKey, payload.ToJsonString(), error, change.Transaction.CommitLsn);
    }
}
