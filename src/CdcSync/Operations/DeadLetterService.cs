using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Operations;

/// <summary>A row of cdc.dead_letters as operators see it.</summary>
internal sealed record DeadLetter
{
    public long Id { get; init; }

    public string Connector { get; init; } = "";

    public string Object { get; init; } = "";

    public string RecordKey { get; init; } = "";

    public string Status { get; init; } = "";

    public int Attempts { get; init; }

    public DateTime FirstSeen { get; init; }

    public DateTime LastSeen { get; init; }

    public string Error { get; init; } = "";

    /// <summary>What was sent (JSON), fields in cdc.sensitive_fields masked as in the audit trail.</summary>
    public string? Payload { get; init; }
}

/// <summary>
/// Records a connector could not deliver: list, discard, retry. Retry queues a one-row resync of
/// the current hub row to the connector that rejected it (see <see cref="RetryAsync"/>); nothing is
/// written to the hub row and no other connector is involved. Each verb runs in one transaction:
/// all ids or none.
/// </summary>
internal sealed class DeadLetterService(string hubConnectionString, string source)
{
    public async Task<IReadOnlyList<DeadLetter>> ListAsync(string? connector, bool all, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(hubConnectionString, source, cancellationToken);
        var letters = (await conn.QueryAsync<DeadLetter>(new CommandDefinition(
            """
            SELECT id AS "Id", connector AS "Connector", object AS "Object", record_key AS "RecordKey", status AS "Status",
                   attempts AS "Attempts", first_seen AS "FirstSeen", last_seen AS "LastSeen", error AS "Error",
                   cdc.mask_record(object, payload)::text AS "Payload"
            FROM cdc.dead_letters
            WHERE (@connector::text IS NULL OR connector = @connector) AND (@all OR status = 'open')
            ORDER BY last_seen DESC, id DESC
            """, new { connector, all }, cancellationToken: cancellationToken))).ToList();
        if (connector is not null && letters.Count == 0)
        {
            // "No dead letters" for a misspelled name would read as "all is well".
            var known = await KnownConnectorsAsync(conn, cancellationToken);
            if (!known.Contains(connector, StringComparer.Ordinal))
            {
                throw new OperatorException(
                    $"There is no connector '{connector}' in the hub {HubConnection.Describe(conn.ConnectionString)} ({(known.Count == 0 ? "none has run yet" : "known: " + string.Join(", ", known))}); names are the keys under Connectors in the config.");
            }
        }

        return letters;
    }

    /// <summary>Connectors the hub has seen: they keep a checkpoint, a cursor, a status row, dead letters or resync jobs.</summary>
    public static async Task<IReadOnlyList<string>> KnownConnectorsAsync(NpgsqlConnection conn, CancellationToken cancellationToken) =>
        (await conn.QueryAsync<string>(new CommandDefinition(
            """
            SELECT connector FROM cdc.checkpoints
            UNION SELECT connector FROM cdc.inbound_cursors
            UNION SELECT connector FROM cdc.connector_status
            UNION SELECT connector FROM cdc.dead_letters
            UNION SELECT connector FROM cdc.resync_jobs
            ORDER BY 1
            """, cancellationToken: cancellationToken))).ToList();

    public async Task DiscardAsync(IReadOnlyList<long> ids, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(hubConnectionString, source, cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        foreach (var id in ids)
        {
            await LoadOpenAsync(conn, tx, id, cancellationToken);
            await SetStatusAsync(conn, tx, id, "discarded", cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Re-sends the current hub row of each dead letter to the connector that rejected it, and to
    /// no other: each retry is a one-row resync job (full row, applied at its WAL position by the
    /// worker), so a connector that writes only changed fields still sends the whole record.
    /// Returns the resync job per dead letter.
    /// </summary>
    public async Task<IReadOnlyList<(long Id, string Object, Guid HubId, long Job)>> RetryAsync(IReadOnlyList<long> ids, ResyncService resync, CancellationToken cancellationToken)
    {
        var done = new List<(long, string, Guid, long)>();
        await using var conn = await HubConnection.OpenAsync(hubConnectionString, source, cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        foreach (var id in ids)
        {
            var letter = await LoadOpenAsync(conn, tx, id, cancellationToken);
            if (!Guid.TryParse(letter.RecordKey, out var hubId))
            {
                throw new OperatorException($"dead letter {id}: record key '{letter.RecordKey}' is not a hub_id; it cannot be retried from the hub (discard it, or fix and re-send the record by hand).");
            }

            var hasHubId = await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(@table) AND attname = 'hub_id' AND NOT attisdropped)",
                new { table = HubSql.Quote(letter.Object) }, tx, cancellationToken: cancellationToken));
            if (!hasHubId)
            {
                throw new OperatorException($"dead letter {id}: object '{letter.Object}' is not a hub table with a hub_id column; it cannot be retried from the hub.");
            }

            var exists = await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
                $"SELECT EXISTS (SELECT 1 FROM {HubSql.Quote(letter.Object)} WHERE hub_id = @hubId)", new { hubId }, tx, cancellationToken: cancellationToken));
            if (!exists)
            {
                throw new OperatorException($"dead letter {id}: {letter.Object} has no row with hub_id {hubId} any more; discard the dead letter instead.");
            }

            // The hub id was parsed as a uuid above, so the filter cannot carry anything but that value.
            var job = await resync.RequestAsync(letter.Connector, letter.Object, $"hub_id = '{hubId:D}'::uuid", 1, cancellationToken);
            await SetStatusAsync(conn, tx, id, "retried", cancellationToken);
            done.Add((id, letter.Object, hubId, job.Id));
        }

        await tx.CommitAsync(cancellationToken);
        return done;
    }

    private static async Task<DeadLetter> LoadOpenAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, CancellationToken cancellationToken)
    {
        var letter = await conn.QuerySingleOrDefaultAsync<DeadLetter>(new CommandDefinition(
            """SELECT id AS "Id", connector AS "Connector", object AS "Object", record_key AS "RecordKey", status AS "Status" FROM cdc.dead_letters WHERE id = @id FOR UPDATE""",
            new { id }, tx, cancellationToken: cancellationToken))
            ?? throw new OperatorException($"no dead letter with id {id} (see cdcsync deadletters list --all).");
        if (letter.Status != "open")
        {
            throw new OperatorException($"dead letter {id} is already {letter.Status}.");
        }

        return letter;
    }

    private static Task SetStatusAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, string status, CancellationToken cancellationToken) =>
        conn.ExecuteAsync(new CommandDefinition("UPDATE cdc.dead_letters SET status = @status, last_seen = now() WHERE id = @id", new { id, status }, tx, cancellationToken: cancellationToken));
}
