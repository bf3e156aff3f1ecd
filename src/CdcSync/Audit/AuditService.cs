using System.Text.Json.Nodes;
using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Audit;

/// <summary>
/// Reads the audit trail (<c>cdc.audit_log</c>, written by the staging tables' triggers for inbound
/// changes and by <c>cdc.record_outbound</c> for outbound ones) and enforces its retention.
/// </summary>
internal sealed class AuditService(NpgsqlDataSource hub)
{
    /// <summary>
    /// The history of one real-world record: <paramref name="reference"/> is a hub id or a system's
    /// own id (Salesforce Id, NetSuite internal id); every row linked to it through
    /// <c>cdc.identity_links</c> belongs to the history.
    /// </summary>
    public async Task<AuditHistory> HistoryAsync(string reference, int limit, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        // The rows the reference names directly (a hub id of any tracked table, a system id known
        // to the links or to the audit trail), then everything linked to them.
        const string Rows =
            """
            WITH direct AS (
                SELECT l.object, l.hub_id::text AS hub_id FROM cdc.identity_links l
                 WHERE l.hub_id::text = @reference OR l.record_id = @reference
                UNION
                SELECT a.object, a.record_key FROM cdc.audit_log a
                 WHERE a.record_key = @reference OR a.record_id = @reference
            ), linked AS (
                SELECT o.object, o.hub_id::text AS hub_id FROM direct d
                  JOIN cdc.identity_links s ON s.object = d.object AND s.hub_id::text = d.hub_id
                  JOIN cdc.identity_links o ON o.link_id = s.link_id
                UNION
                SELECT object, hub_id FROM direct
            )
            """;
        var identities = (await conn.QueryAsync<AuditIdentity>(new CommandDefinition(
            Rows +
            """
            SELECT k.object AS Object, coalesce(t.system, l.system, k.object) AS System, k.hub_id AS HubId,
                   coalesce(l.record_id, (SELECT a.record_id FROM cdc.audit_log a
                                           WHERE a.object = k.object AND a.record_key = k.hub_id AND a.record_id IS NOT NULL
                                           ORDER BY a.id DESC LIMIT 1)) AS RecordId
              FROM linked k
              LEFT JOIN cdc.sync_tables t ON t.object = k.object
              LEFT JOIN cdc.identity_links l ON l.object = k.object AND l.hub_id::text = k.hub_id
             ORDER BY 2, 1
            """,
            new { reference }, cancellationToken: cancellationToken))).AsList();

        var entries = (await conn.QueryAsync<AuditEntry>(new CommandDefinition(
            Rows +
            """
            SELECT a.id AS Id, a.applied_at AS AppliedAt, a.direction AS Direction, a.connector AS Connector,
                   a.source_system AS SourceSystem, a.target_system AS TargetSystem, a.object AS Object,
                   a.record_key AS RecordKey, a.record_id AS RecordId, a.operation AS Operation, a.changes::text AS Changes,
                   a.actor AS Actor
              FROM cdc.audit_log a
              JOIN linked k ON k.object = a.object AND k.hub_id = a.record_key
             ORDER BY a.applied_at, a.id
             LIMIT @limit
            """,
            new { reference, limit }, cancellationToken: cancellationToken))).AsList();
        return new AuditHistory(identities, entries);
    }

    /// <summary>
    /// Records what a person did (a conflict decided, a dead letter retried) in the audit trail:
    /// direction 'operator', the person as actor, so it is part of the record's history.
    /// <paramref name="details"/> is masked like any change (<c>cdc.mask_record</c>).
    /// </summary>
    public async Task RecordActionAsync(string actor, string action, string obj, string recordKey, string? recordId, JsonObject details, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        await conn.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system, target_system, record_id, changes, actor)
            VALUES ('console', 'operator', @obj, @recordKey, @action, 'console', 'hub', @recordId, cdc.mask_record(@obj, @details::jsonb), @actor)
            """,
            new { actor, action, obj, recordKey, recordId, details = details.ToJsonString() }, cancellationToken: cancellationToken));
    }

    /// <summary>The newest actions people took, newest first.</summary>
    public async Task<IReadOnlyList<AuditEntry>> RecentActionsAsync(int limit, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<AuditEntry>(new CommandDefinition(
            """
            SELECT id AS Id, applied_at AS AppliedAt, direction AS Direction, connector AS Connector, source_system AS SourceSystem,
                   target_system AS TargetSystem, object AS Object, record_key AS RecordKey, record_id AS RecordId,
                   operation AS Operation, changes::text AS Changes, actor AS Actor
              FROM cdc.audit_log WHERE direction = 'operator'
             ORDER BY id DESC LIMIT @limit
            """, new { limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>
    /// The hub's current row of <paramref name="obj"/> with key <paramref name="hubId"/> (what CdcSync
    /// holds for that system), sensitive fields masked; null when there is none.
    /// </summary>
    public async Task<string?> CurrentRowAsync(string obj, Guid hubId, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var table = "public." + HubSql.Quote(obj);
        var hasHubId = await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(@table) AND attname = 'hub_id' AND NOT attisdropped)",
            new { table }, cancellationToken: cancellationToken));
        return hasHubId
            ? await conn.ExecuteScalarAsync<string?>(new CommandDefinition(
                $"SELECT cdc.mask_record(@obj, to_jsonb(t))::text FROM {table} t WHERE hub_id = @hubId",
                new { obj, hubId }, cancellationToken: cancellationToken))
            : null;
    }

    /// <summary>Deletes audit rows older than the <c>audit_retention</c> setting; returns how many.</summary>
    public async Task<long> PurgeAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        return await conn.ExecuteScalarAsync<long>(new CommandDefinition("SELECT cdc.purge_audit_log()", cancellationToken: cancellationToken));
    }

    /// <summary>Sets how long audit rows are kept (a PostgreSQL interval such as <c>90 days</c>).</summary>
    public async Task SetRetentionAsync(string retention, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        try
        {
            await conn.ExecuteAsync(new CommandDefinition(
                "UPDATE cdc.settings SET value = @retention::interval::text WHERE key = 'audit_retention'",
                new { retention }, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidDatetimeFormat)
        {
            throw new OperatorException($"audit retention '{retention}' is not a PostgreSQL interval; write it like '90 days' or '12 hours'.");
        }
    }

    public async Task<string> RetentionAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        return await conn.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT value FROM cdc.settings WHERE key = 'audit_retention'", cancellationToken: cancellationToken)) ?? "";
    }
}
