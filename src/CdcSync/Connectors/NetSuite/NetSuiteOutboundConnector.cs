using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Checkpoints;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Writes the customer staging table to NetSuite. Rows without an internal id are upserted by
/// external id (<c>PUT customer/eid:{externalId}</c>), which makes a re-sent change harmless, and the
/// internal id from the <c>Location</c> header is written back to the hub under this connector's
/// origin; rows with one are patched. Deletes make the customer inactive (or delete it when
/// configured). Changes to different rows run concurrently up to the account's limit; changes to
/// one row run in commit order. Records NetSuite refuses go to dead letters.
/// Every request is acknowledged before <see cref="WriteAsync"/> returns, so the checkpoint is
/// written in <see cref="CommitAsync"/> alone.
/// </summary>
public sealed class NetSuiteOutboundConnector : IOutboundConnector
{
    private const string RecordPath = "services/rest/record/v1/customer";

    private readonly NetSuiteOptions _options;
    private readonly NetSuiteClient _client;
    private readonly HubWriter _hub;
    private readonly HubCheckpointStore _checkpoints;
    private readonly DeadLetterStore _deadLetters;
    private readonly ILogger _logger;

    public NetSuiteOutboundConnector(
        string name,
        NetSuiteOptions options,
        HubWriter hub,
        HubCheckpointStore checkpoints,
        DeadLetterStore deadLetters,
        ILogger<NetSuiteOutboundConnector>? logger = null,
        TimeProvider? timeProvider = null,
        HttpMessageHandler? handler = null)
    {
        Name = name;
        _options = options;
        _hub = hub;
        _checkpoints = checkpoints;
        _deadLetters = deadLetters;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _client = new NetSuiteClient(name, options, handler, timeProvider ?? TimeProvider.System, _logger);
    }

    public string Name { get; }

    /// <summary>Circuit breaker state and adaptive rate limiter, for health reporting.</summary>
    public HttpResilience Resilience => _client.Resilience;

    public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) =>
        _checkpoints.ReadAsync(Name, cancellationToken);

    public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        // One queue per row keeps each row's changes in commit order while rows run in parallel.
        var perRow = new Dictionary<string, List<ChangeEvent>>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            if (change.Kind == ChangeKind.Truncate)
            {
                _logger.LogWarning("{Connector}: ignoring TRUNCATE of {Table}; NetSuite customers are never removed in bulk", Name, change.Relation.Name);
                continue;
            }

            if (change.Relation.Name != _options.Table)
            {
                throw new InvalidOperationException(
                    $"Connector '{Name}' writes NetSuite customers from table '{_options.Table}' but was routed a change of '{change.Relation.QualifiedName}'; fix the route or the connector's Table setting.");
            }

            var key = RowKey(change);
            if (!perRow.TryGetValue(key, out var list))
            {
                perRow[key] = list = [];
            }

            list.Add(change);
        }

        var writeBacks = new ConcurrentQueue<(string Table, string HubId, string InternalId)>();
        await Parallel.ForEachAsync(
            perRow.Values,
            new ParallelOptions { MaxDegreeOfParallelism = _options.ConcurrencyLimit, CancellationToken = cancellationToken },
            async (rowChanges, ct) =>
            {
                foreach (var change in rowChanges)
                {
                    await ApplyAsync(change, writeBacks, ct);
                }
            });

        // One session at a time: PostgreSQL 15 lets only one backend hold a replication origin.
        foreach (var (table, hubId, internalId) in writeBacks)
        {
            await WriteBackAsync(table, hubId, internalId, cancellationToken);
        }
    }

    public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) =>
        _checkpoints.WriteAsync(Name, checkpoint, cancellationToken);

    /// <summary>Nothing to drop: writes are upserts keyed by external id, so replaying them is harmless.</summary>
    public Task AbortAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task WriteBackAsync(string table, string hubId, string internalId, CancellationToken cancellationToken)
    {
        var values = new Dictionary<string, object?> { ["internalid"] = internalId };
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _hub.WriteBackAsync(Name, table, "hub_id", hubId, values, cancellationToken);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 20)
            {
                // The inbound side of this connector holds the origin for a moment.
                await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), cancellationToken);
            }
        }
    }

    private async Task ApplyAsync(ChangeEvent change, ConcurrentQueue<(string, string, string)> writeBacks, CancellationToken cancellationToken)
    {
        var relation = change.Relation;
        var row = change.Kind == ChangeKind.Delete ? change.Old : change.New;
        if (row is null)
        {
            _logger.LogWarning("{Connector}: {Table} change {Id} carries no row (REPLICA IDENTITY must be FULL); skipped", Name, relation.Name, change.IdempotencyKey);
            return;
        }

        var hubId = NetSuiteCustomerMapper.Text(relation, row, "hub_id");
        var internalId = NetSuiteCustomerMapper.Text(relation, change.New ?? change.Old, "internalid")
            ?? NetSuiteCustomerMapper.Text(relation, change.Old, "internalid");
        var externalId = NetSuiteCustomerMapper.Text(relation, row, "externalid")
            ?? NetSuiteCustomerMapper.Text(relation, change.Old, "externalid");

        if (change.Kind == ChangeKind.Update && change.Old is not null && change.New is not null && NetSuiteCustomerMapper.SameRecord(relation, change.Old, change.New))
        {
            return;
        }

        JsonObject? body = null;
        try
        {
            if (change.Kind == ChangeKind.Delete)
            {
                await DeleteAsync(internalId, externalId, cancellationToken);
                return;
            }

            body = NetSuiteCustomerMapper.ToRecord(relation, row);
            var replace = body.ContainsKey("addressBook") ? "?replace=addressBook" : string.Empty;
            if (internalId is not null)
            {
                var response = await _client.SendAsync(HttpMethod.Patch, $"{RecordPath}/{Uri.EscapeDataString(internalId)}{replace}", body, false, cancellationToken);
                NetSuiteClient.EnsureSuccess(response, "update customer " + internalId);
                return;
            }

            if (externalId is null)
            {
                await DeadLetterAsync(change, hubId, body, "The row has neither an internalid nor an externalid; NetSuite upserts need an external id (set it in the transform).", cancellationToken);
                return;
            }

            var upsert = await _client.SendAsync(HttpMethod.Put, $"{RecordPath}/eid:{Uri.EscapeDataString(externalId)}{replace}", body, false, cancellationToken);
            NetSuiteClient.EnsureSuccess(upsert, "upsert customer eid:" + externalId);
            var newId = upsert.Location?.Segments[^1];
            if (newId is null || hubId is null)
            {
                _logger.LogWarning("{Connector}: upsert of {ExternalId} returned no Location header; internal id not written back", Name, externalId);
                return;
            }

            if (newId != internalId)
            {
                writeBacks.Enqueue((relation.Name, hubId, newId));
            }
        }
        catch (NetSuiteApiException e) when (e.IsPermanentRecordError)
        {
            await DeadLetterAsync(change, hubId ?? externalId ?? internalId, body, e.Message, cancellationToken);
        }
    }

    private async Task DeleteAsync(string? internalId, string? externalId, CancellationToken cancellationToken)
    {
        var key = internalId is not null ? Uri.EscapeDataString(internalId) : externalId is not null ? "eid:" + Uri.EscapeDataString(externalId) : null;
        if (key is null)
        {
            return; // Never reached NetSuite.
        }

        var response = _options.InactivateInsteadOfDelete
            ? await _client.SendAsync(HttpMethod.Patch, $"{RecordPath}/{key}", new JsonObject { ["isInactive"] = true }, false, cancellationToken)
            : await _client.SendAsync(HttpMethod.Delete, $"{RecordPath}/{key}", null, false, cancellationToken);
        if (response.StatusCode == 404)
        {
            return; // Already gone: the delete has happened.
        }

        NetSuiteClient.EnsureSuccess(response, (_options.InactivateInsteadOfDelete ? "inactivate customer " : "delete customer ") + key);
    }

    private async Task DeadLetterAsync(ChangeEvent change, string? recordKey, JsonObject? body, string error, CancellationToken cancellationToken)
    {
        _logger.LogWarning("{Connector}: NetSuite rejected {Table} row {RecordKey}; dead-lettered: {Error}", Name, change.Relation.Name, recordKey, error);
        var payload = new JsonObject
        {
            ["operation"] = change.Kind.ToString().ToLowerInvariant(),
            ["changeId"] = change.IdempotencyKey,
            ["record"] = body,
        };
        await _deadLetters.AddAsync(Name, change.Relation.Name, recordKey ?? change.IdempotencyKey, payload.ToJsonString(), error, change.Transaction.CommitLsn, cancellationToken);
    }

    private static string RowKey(ChangeEvent change) =>
        NetSuiteCustomerMapper.Text(change.Relation, change.Key, "hub_id")
            ?? NetSuiteCustomerMapper.Text(change.Relation, change.New, "hub_id")
            ?? change.Position.ToString(CultureInfo.InvariantCulture);
}
