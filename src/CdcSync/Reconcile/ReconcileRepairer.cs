using System.Text.Json;
using CdcSync.Hub;
using CdcSync.Inbound;
using Dapper;
using Npgsql;

namespace CdcSync.Reconcile;

/// <summary>
/// Repairs drift by the documented rule (docs/operations.md, "Reconcile"), each write through the
/// inbound path under the system's connector origin, so it flows to the other systems like any
/// inbound change, conflict rules included:
/// <list type="bullet">
/// <item>late_edit (field_differs): a value the hub never saw is a late edit of that system; the
/// record as the system holds it is written into its staging row, dated now.</item>
/// <item>apply_delete (missing_in_system): a record removed without a trace is the delete the
/// inbound path would have seen (<c>cdc.reconcile_tombstone</c>: a soft-delete mark, or the row goes),
/// and the mapping's delete rule does the rest.</item>
/// <item>late_create (missing_in_hub): a record the hub never saw is a late creation in that system.</item>
/// </list>
/// unlinked and dangling_link findings are an operator's decision and are left as they are. Each
/// write and an audit row (<c>cdc.audit_log</c>, operation <c>reconcile:&lt;action&gt;</c>, the
/// differing fields before/after) commit together.
/// </summary>
internal sealed class ReconcileRepairer(NpgsqlDataSource hub, TimeProvider time)
{
    private readonly StagingWriter _writer = new(hub);
    private readonly StagingColumns _columns = new();

    /// <summary>The writes a repair of run <paramref name="runId"/> makes; <paramref name="connectorOf"/> maps a staging table to the connector that reads it.</summary>
    public async Task<IReadOnlyList<(RepairAction Action, InboundRecord? Record)>> PlanAsync(long runId, IReadOnlyDictionary<string, string> connectorOf, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<PlanRow>(new CommandDefinition(
            """
            SELECT f.repair AS Action, f.object AS Object, f.record_id AS RecordId, f.hub_id AS HubId, t.record_id_column AS IdColumn,
                   array_remove(array_agg(DISTINCT f.field), NULL) AS Fields,
                   (SELECT r."values"::text FROM cdc.reconcile_records r
                     WHERE r.run_id = f.run_id AND r.object = f.object AND NOT r.deleted AND r."values" ->> t.record_id_column = f.record_id
                     LIMIT 1) AS "Values",
                   cdc.reconcile_tombstone_row(f.object, f.hub_id)::text AS Tombstone
              FROM cdc.reconcile_findings f
              JOIN cdc.sync_tables t ON t.object = f.object
             WHERE f.run_id = @runId AND f.drift AND f.repair IN ('late_edit', 'apply_delete', 'recreate', 'late_create')
             GROUP BY f.run_id, f.repair, f.object, f.record_id, f.hub_id, t.record_id_column
             ORDER BY f.object, f.repair, f.record_id
            """,
            new { runId }, cancellationToken: cancellationToken));
        var now = time.GetUtcNow();
        var plan = new List<(RepairAction, InboundRecord?)>();
        foreach (var row in rows)
        {
            if (!connectorOf.TryGetValue(row.Object, out var connector) || row.RecordId is null)
            {
                continue;
            }

            var values = new Dictionary<string, object?>(StringComparer.Ordinal) { [row.IdColumn] = row.RecordId };
            InboundRecord? record;
            if (row.Action == "recreate")
            {
                // Not an inbound write: the hub asks the system for the record again (see ApplyAsync).
                record = null;
            }
            else if (row.Action == "apply_delete" && row.Tombstone is null)
            {
                record = new InboundRecord(row.Object, row.IdColumn, values, Deleted: true);
            }
            else
            {
                var source = row.Action == "apply_delete" ? row.Tombstone : row.Values;
                if (source is null)
                {
                    continue;
                }

                foreach (var property in JsonDocument.Parse(source).RootElement.EnumerateObject())
                {
                    values[property.Name] = property.Value.Clone();
                }

                // Dated now: the hub learns of it now, and last-write-wins treats it as the latest edit.
                values[StampColumn] = now;
                record = new InboundRecord(row.Object, row.IdColumn, values, Deleted: false);
            }

            plan.Add((new RepairAction(connector, row.Action, row.Object, row.RecordId, row.HubId, row.Fields), record));
        }

        return plan;
    }

    /// <summary>Applies the plan, each write with its audit row in one transaction; returns how many writes were made.</summary>
    public async Task<int> ApplyAsync(long runId, IReadOnlyList<(RepairAction Action, InboundRecord? Record)> plan, CancellationToken cancellationToken)
    {
        var applied = 0;
        foreach (var (action, planned) in plan)
        {
            if (planned is not { } record)
            {
                // A hub write, under no connector's origin: routed to the record's own system.
                await using var connection = await hub.OpenConnectionAsync(cancellationToken);
                await using var hubTx = await connection.BeginTransactionAsync(cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition(
                    "SELECT cdc.reconcile_recreate(@object, @hubId)", new { @object = action.Object, hubId = action.HubId }, transaction: hubTx, cancellationToken: cancellationToken));
                await AuditAsync(connection, hubTx, runId, action, cancellationToken);
                await hubTx.CommitAsync(cancellationToken);
                applied++;
                continue;
            }

            await using var session = await ReplicationOrigins.OpenAsync(hub, action.Connector, cancellationToken);
            await using var tx = await session.Connection.BeginTransactionAsync(cancellationToken);
            var types = await _columns.TypesAsync(session.Connection, record.Table, cancellationToken);
            if (!types.ContainsKey(StampColumn) && record.Values.ContainsKey(StampColumn))
            {
                // A staging table without the source stamp: the write is dated by the hub (now) anyway.
                record = record with { Values = record.Values.Where(v => v.Key != StampColumn).ToDictionary() };
            }

            await _writer.ApplyInboundAsync(session.Connection, action.Connector, [record], cursor: null, cancellationToken);
            await AuditAsync(session.Connection, tx, runId, action, cancellationToken);
            await tx.CommitAsync(cancellationToken);
            applied++;
        }

        return applied;
    }

    /// <summary>The repair in the audit trail (operation <c>reconcile:&lt;action&gt;</c>, the differing fields before and after, masked), and its findings marked repaired.</summary>
    private static async Task AuditAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long runId, RepairAction action, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system, target_system, record_id, changes)
            SELECT @connector, 'inbound', f.object, coalesce(f.hub_id::text, f.record_id), 'reconcile:' || f.repair, f.system, 'hub', f.record_id,
                   cdc.mask_changes(f.object, coalesce(jsonb_object_agg(f.field, jsonb_build_object('before', f.hub_value, 'after', f.system_value))
                                                       FILTER (WHERE f.field IS NOT NULL), '{}'))
              FROM cdc.reconcile_findings f
             WHERE f.run_id = @runId AND f.drift AND f.object = @object AND f.record_id = @recordId AND f.repair = @repair
             GROUP BY f.object, f.hub_id, f.record_id, f.repair, f.system;
            UPDATE cdc.reconcile_findings f SET repaired_at = now()
             WHERE f.run_id = @runId AND f.drift AND f.object = @object AND f.record_id = @recordId AND f.repair = @repair;
            """,
            new { connector = action.Connector, runId, @object = action.Object, recordId = action.RecordId, repair = action.Action },
            transaction: transaction, cancellationToken: cancellationToken));
    }

    private const string StampColumn = "cdc_source_modified_at";

    private sealed record PlanRow
    {
        public string Action { get; init; } = "";
        public string Object { get; init; } = "";
        public string? RecordId { get; init; }
        public Guid? HubId { get; init; }
        public string IdColumn { get; init; } = "";
        public string[] Fields { get; init; } = [];
        public string? Values { get; init; }
        public string? Tombstone { get; init; }
    }
}
