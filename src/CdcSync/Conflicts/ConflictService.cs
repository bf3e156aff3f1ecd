using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Conflicts;

/// <summary>
/// Reads and decides the conflicts the hub's triggers recorded (transforms/005_sync_tracking.sql).
/// Deciding is SQL too (<c>cdc.resolve_conflict</c>): the decision is written to the hub as the
/// hub's own change, so the transforms and the outbound flow carry it to both systems.
/// </summary>
internal sealed class ConflictService(NpgsqlDataSource hub)
{
    private const string Columns =
        """
        id AS Id, connector AS Connector, object AS Object, record_key AS RecordKey, field AS Field,
        policy AS Policy, status AS Status, decision AS Decision, base_value::text AS BaseValue,
        hub_value::text AS HubValue, incoming_value::text AS IncomingValue, decided_value::text AS DecidedValue,
        hub_system AS HubSystem, incoming_system AS IncomingSystem, hub_modified_at AS HubModifiedAt,
        incoming_modified_at AS IncomingModifiedAt, created_at AS CreatedAt, resolved_at AS ResolvedAt,
        resolved_by AS ResolvedBy
        """;

    /// <summary>Conflicts, newest first: open ones only unless <paramref name="all"/>.</summary>
    public async Task<IReadOnlyList<ConflictRecord>> ListAsync(bool all, string? recordKey, int limit, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<ConflictRecord>(new CommandDefinition(
            $"""
            SELECT {Columns} FROM cdc.conflicts
            WHERE (@all OR status = 'open') AND (@recordKey::text IS NULL OR record_key = @recordKey)
            ORDER BY created_at DESC, id DESC
            LIMIT @limit
            """,
            new { all, recordKey, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<ConflictRecord?> GetAsync(long id, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        return await conn.QuerySingleOrDefaultAsync<ConflictRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM cdc.conflicts WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>Decides an open conflict with the value one of the two systems holds.</summary>
    public async Task<ConflictRecord> ResolveTakingAsync(long id, string system, string resolvedBy, CancellationToken cancellationToken)
    {
        var conflict = await GetAsync(id, cancellationToken) ?? throw NotFound(id);
        string? value;
        if (string.Equals(system, conflict.IncomingSystem, StringComparison.OrdinalIgnoreCase))
        {
            value = conflict.IncomingValue;
        }
        else if (string.Equals(system, conflict.HubSystem, StringComparison.OrdinalIgnoreCase))
        {
            value = conflict.HubValue;
        }
        else
        {
            throw new OperatorException(
                $"conflict {id} is between {conflict.IncomingSystem} and {conflict.HubSystem}; use --take {conflict.IncomingSystem} or --take {conflict.HubSystem}, or --value {conflict.Field}=<value>.");
        }

        return await ResolveAsync(conflict, value, resolvedBy, cancellationToken);
    }

    /// <summary>Decides an open conflict with a value the operator gives, as text in the column's type.</summary>
    public async Task<ConflictRecord> ResolveWithValueAsync(long id, string field, string? text, string resolvedBy, CancellationToken cancellationToken)
    {
        var conflict = await GetAsync(id, cancellationToken) ?? throw NotFound(id);
        if (!string.Equals(field, conflict.Field, StringComparison.Ordinal))
        {
            throw new OperatorException($"conflict {id} is about field '{conflict.Field}', not '{field}'; use --value {conflict.Field}=<value>.");
        }

        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        string? value;
        try
        {
            // The column's own input function parses the text, so a bad number or date is the
            // server's one-line message rather than a value that fails later in a system.
            value = await conn.ExecuteScalarAsync<string?>(new CommandDefinition(
                $"SELECT (to_jsonb(jsonb_populate_record(NULL::public.{HubSql.Quote(conflict.Object)}, jsonb_build_object(@field, @text::text))) -> @field)::text",
                new { field, text }, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("22", StringComparison.Ordinal))
        {
            throw new OperatorException($"'{text}' is not a valid value for {conflict.Object}.{field}: {e.MessageText}");
        }

        return await ResolveAsync(conflict, value, resolvedBy, cancellationToken);
    }

    private async Task<ConflictRecord> ResolveAsync(ConflictRecord conflict, string? value, string resolvedBy, CancellationToken cancellationToken)
    {
        if (conflict.Status != "open")
        {
            throw new OperatorException($"conflict {conflict.Id} is already {conflict.Status} ({conflict.Decision}); nothing to resolve.");
        }

        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        try
        {
            await conn.ExecuteAsync(new CommandDefinition(
                "SELECT cdc.resolve_conflict(@id, @value::jsonb, @resolvedBy)",
                new { id = conflict.Id, value, resolvedBy }, tx, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState is "P0002" or "P0003")
        {
            throw new OperatorException(e.MessageText);
        }

        await tx.CommitAsync(cancellationToken);
        return await GetAsync(conflict.Id, cancellationToken) ?? throw NotFound(conflict.Id);
    }

    private static OperatorException NotFound(long id) => new($"no conflict with id {id} (see cdcsync conflicts list --all).");
}
