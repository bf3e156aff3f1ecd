using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Prometheus;

namespace CdcSync.Hub;

/// <summary>
/// Everything an outbound connector asks of the hub, behind one dependency and in set-based calls:
/// staging column types (read once per table), parents' ids for lookups, the precondition's
/// skipped fields, decisions on held fields, and what a batch leaves behind (ids written back,
/// acknowledged writes, dead letters, the checkpoint) in one round trip. Connectors build no SQL of
/// their own; the SQL that decides lives in the hub's <c>cdc</c> functions.
/// </summary>
/// <remarks>
/// Round trips of an outbound batch, whatever its size: the precondition (<see cref="SkippedFieldsAsync"/>),
/// a decision when the system changed some fields (<see cref="DecideHeldFieldsAsync"/>), the batch's
/// results (<see cref="ApplyAsync"/>), and one more for the parents of all lookups of a batch when a
/// parent must be found (<see cref="ParentIdsAsync"/>), and one before the precondition that makes sure
/// the hub shows the batch's transactions (<see cref="AwaitVisibleAsync"/>). A write under a connector's replication origin
/// is one round trip too: setting the origin up, the statements, <c>COMMIT</c> and the reset travel as
/// one batch, and the commit record carries the origin.
/// </remarks>
public sealed class HubGateway(NpgsqlDataSource hub, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    private static readonly Counter RoundTripsCounter = Metrics.CreateCounter(
        "cdcsync_hub_round_trips_total",
        "Round trips connectors made to the hub, by connector and call (types, lookups, precondition, decide, apply, checkpoint, fetch).",
        "connector", "call");

    private readonly StagingColumns _columns = new();
    private long _roundTrips;

    /// <summary>Round trips made through this gateway so far (each command or batch sent is one).</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    internal NpgsqlDataSource DataSource => hub;

    /// <summary>How long <see cref="AwaitVisibleAsync"/> waits for a commit to become visible before it goes on regardless.</summary>
    public static readonly TimeSpan VisibilityTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Waits until the transactions of the changes about to be checked are visible to new hub
    /// snapshots. The server streams a commit once its WAL record is flushed, which is a moment
    /// before the committing session leaves the list of running transactions: a precondition read
    /// in that moment would see the row as it was before the change and take the change for one
    /// the hub has moved on from (superseded), losing the edit. One round trip while all are
    /// visible (the common case); a short wait per retry otherwise.
    /// </summary>
    public async Task AwaitVisibleAsync(string connector, IEnumerable<uint> xids, CancellationToken cancellationToken)
    {
        // 0, 1 and 2 are not transactions (a resync chunk carries no xid).
        var wanted = xids.Where(x => x > 2).Distinct().Select(x => (long)x).ToArray();
        if (wanted.Length == 0)
        {
            return;
        }

        var started = _time.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            // A 32-bit xid becomes the snapshot's 64-bit form with the epoch of the snapshot's xmax
            // (one less when the xid lies above xmax's low half: it is from before the wrap).
            await using var cmd = hub.CreateCommand("""
                SELECT count(*)
                  FROM (SELECT pg_current_snapshot() AS s) snap
                  CROSS JOIN LATERAL (SELECT pg_snapshot_xmax(snap.s)::text::bigint AS xmax) m
                  CROSS JOIN unnest($1::bigint[]) AS x(xid)
                 WHERE NOT pg_visible_in_snapshot(((((m.xmax >> 32) - CASE WHEN x.xid > (m.xmax & 4294967295) THEN 1 ELSE 0 END) << 32) | x.xid)::text::xid8, snap.s)
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = wanted, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            Count(connector, "visibility");
            var pending = (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
            if (pending == 0)
            {
                return;
            }

            if (_time.GetElapsedTime(started) >= VisibilityTimeout)
            {
                // Never expected (a streamed commit becomes visible within moments); going on beats a stalled pipeline.
                return;
            }

            await Task.Delay(pause, _time, cancellationToken);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
        }
    }

    /// <summary>Column name to SQL type of a staging table (read once; a table that does not exist is an error naming the fix).</summary>
    public async Task<IReadOnlyDictionary<string, string>> ColumnTypesAsync(string connector, string table, CancellationToken cancellationToken)
    {
        if (_columns.Cached(table) is { } cached)
        {
            return cached;
        }

        Count(connector, "types");
        return await _columns.TypesAsync(hub, table, cancellationToken);
    }

    /// <summary>
    /// The ids of parents, for every lookup of a batch in one round trip: per lookup, hub key of the
    /// parent row to the id the system gave it. Parents without an id yet are left out.
    /// </summary>
    public async Task<IReadOnlyDictionary<ParentLookup, Dictionary<string, string>>> ParentIdsAsync(
        string connector, IReadOnlyCollection<(ParentLookup Lookup, IReadOnlyCollection<string> Keys)> wanted, CancellationToken cancellationToken)
    {
        var found = new Dictionary<ParentLookup, Dictionary<string, string>>();
        var asked = wanted.Where(w => w.Keys.Count > 0).ToList();
        foreach (var (lookup, _) in wanted)
        {
            found[lookup] = new Dictionary<string, string>(StringComparer.Ordinal);
        }

        if (asked.Count == 0)
        {
            return found;
        }

        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        foreach (var (lookup, keys) in asked)
        {
            var command = new NpgsqlBatchCommand(
                $"SELECT {Quote(lookup.ParentKeyColumn)}::text, {Quote(lookup.ParentIdColumn)}::text FROM {Quote(lookup.ParentTable)} " +
                $"WHERE {Quote(lookup.ParentKeyColumn)}::text = ANY($1) AND {Quote(lookup.ParentIdColumn)} IS NOT NULL");
            command.Parameters.Add(new NpgsqlParameter { Value = keys.Distinct(StringComparer.Ordinal).ToArray() });
            batch.BatchCommands.Add(command);
        }

        Count(connector, "lookups");
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        foreach (var (lookup, _) in asked)
        {
            var ids = found[lookup];
            while (await reader.ReadAsync(cancellationToken))
            {
                ids[reader.GetString(0)] = reader.GetString(1);
            }

            await reader.NextResultAsync(cancellationToken);
        }

        return found;
    }

    /// <summary>
    /// The precondition's verdict (<c>cdc.outbound_skipped_fields</c>) for a batch of updates: per hub
    /// key and column, whether the field is <c>superseded</c> (the hub no longer holds the value being
    /// written) or <c>edited</c> (the system changed it since the last sync). <paramref name="written"/>
    /// and <paramref name="current"/>: per hub key, the values about to be written and those the system holds now.
    /// </summary>
    public async Task<IReadOnlyList<(string Key, string Column, string Reason)>> SkippedFieldsAsync(
        string connector, string table, IReadOnlyDictionary<string, JsonObject> written, IReadOnlyDictionary<string, JsonObject> current, CancellationToken cancellationToken)
    {
        var skipped = new List<(string, string, string)>();
        if (written.Count == 0)
        {
            return skipped;
        }

        await using var cmd = hub.CreateCommand("SELECT record_key, field, reason FROM cdc.outbound_skipped_fields($1, $2, $3)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        cmd.Parameters.Add(new NpgsqlParameter { Value = Document(written), NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = Document(current), NpgsqlDbType = NpgsqlDbType.Jsonb });
        Count(connector, "precondition");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            skipped.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return skipped;
    }

    /// <summary>
    /// Decides held fields now (<c>cdc.decide_held_fields</c>): what the system holds for them is
    /// written to the staging rows as <paramref name="connector"/>'s own inbound write, so the triggers
    /// detect the conflict and the policy decides. Returns the fields the decision kept for the hub's
    /// value (to be written now). One round trip.
    /// </summary>
    public async Task<HashSet<(string Key, string Column)>> DecideHeldFieldsAsync(
        string connector, string table, IReadOnlyDictionary<string, JsonObject> systemValues, CancellationToken cancellationToken)
    {
        var writeNow = new HashSet<(string, string)>();
        if (systemValues.Count == 0)
        {
            return writeNow;
        }

        await AsOriginAsync(connector, "decide", cancellationToken, add =>
        {
            var command = new NpgsqlBatchCommand("SELECT record_key, field FROM cdc.decide_held_fields($1, $2)");
            command.Parameters.Add(new NpgsqlParameter { Value = table });
            command.Parameters.Add(new NpgsqlParameter { Value = Document(systemValues), NpgsqlDbType = NpgsqlDbType.Jsonb });
            add(command);
        }, async (reader, ct) =>
        {
            while (await reader.ReadAsync(ct))
            {
                writeNow.Add((reader.GetString(0), reader.GetString(1)));
            }
        });
        return writeNow;
    }

    /// <summary>
    /// What a batch leaves in the hub, in one transaction and one round trip: ids written back under
    /// the connector's origin (so they are not sent to it again), the acknowledged writes
    /// (<c>cdc.record_outbound_batch</c>: sync base and audit trail), dead letters, the checkpoint.
    /// </summary>
    public async Task ApplyAsync(string connector, HubBatchResult result, CancellationToken cancellationToken)
    {
        if (result.IsEmpty)
        {
            return;
        }

        var types = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var table in result.WriteBacks.Select(w => w.Table).Distinct(StringComparer.Ordinal))
        {
            types[table] = await ColumnTypesAsync(connector, table, cancellationToken);
        }

        var commands = new List<NpgsqlBatchCommand>();
        foreach (var (table, keyColumn, rows) in WriteBackRuns(result.WriteBacks))
        {
            if (rows.Count > 1 && rows.Select(r => HubSql.ToText(r.Key)).Distinct(StringComparer.Ordinal).Count() == rows.Count)
            {
                commands.Add(WriteBackSetCommand(types[table], table, keyColumn, rows));
            }
            else
            {
                commands.AddRange(rows.Select(row => WriteBackCommand(types[table], table, keyColumn, row)));
            }
        }

        if (result.Acknowledged.Count > 0)
        {
            var writes = new JsonArray();
            foreach (var write in result.Acknowledged)
            {
                writes.Add(new JsonObject
                {
                    ["object"] = write.Object,
                    ["record_key"] = write.RecordKey,
                    ["record_id"] = write.RecordId,
                    ["operation"] = write.Operation,
                    ["changes"] = write.Changes.DeepClone(),
                    ["commit_lsn"] = write.CommitLsn.ToString(),
                    ["stamp"] = write.SystemStamp?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
                });
            }

            var record = new NpgsqlBatchCommand("SELECT cdc.record_outbound_batch($1, $2)");
            record.Parameters.Add(new NpgsqlParameter { Value = connector });
            record.Parameters.Add(new NpgsqlParameter { Value = writes.ToJsonString(), NpgsqlDbType = NpgsqlDbType.Jsonb });
            commands.Add(record);
        }

        foreach (var letter in result.DeadLetters)
        {
            commands.Add(DeadLetterCommand(connector, letter));
        }

        if (result.Checkpoint is { } checkpoint)
        {
            commands.Add(CheckpointCommand(connector, checkpoint));
        }

        if (commands.Count == 0)
        {
            return;
        }

        if (result.WriteBacks.Count > 0)
        {
            await AsOriginAsync(connector, "apply", cancellationToken, add => commands.ForEach(add), null);
            return;
        }

        // Several statements in one batch run in one implicit transaction: all land or none.
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        commands.ForEach(batch.BatchCommands.Add);
        Count(connector, "apply");
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Where a connector whose target cannot hold a checkpoint (an HTTP API) stands in the stream (<c>cdc.checkpoints</c>).</summary>
    public async Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(string connector, CancellationToken cancellationToken)
    {
        await using var cmd = hub.CreateCommand("SELECT lsn FROM cdc.checkpoints WHERE connector = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        Count(connector, "checkpoint");
        return await cmd.ExecuteScalarAsync(cancellationToken) is NpgsqlLogSequenceNumber lsn ? lsn : default;
    }

    /// <summary>Stores the checkpoint once the system acknowledged everything before it; it never goes back.</summary>
    public Task WriteCheckpointAsync(string connector, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken) =>
        ApplyAsync(connector, new HubBatchResult { Checkpoint = lsn }, cancellationToken);

    /// <summary>Records one rejected record at once (the batch goes on); see <see cref="HubBatchResult.DeadLetters"/> to send them with a batch.</summary>
    public Task DeadLetterAsync(string connector, DeadLetter letter, CancellationToken cancellationToken) =>
        ApplyAsync(connector, new HubBatchResult { DeadLetters = { letter } }, cancellationToken);

    /// <summary>
    /// Rows of a hub table by key, as COPY text with the hub's output settings pinned (any column type
    /// passes): <paramref name="keysText"/> is COPY text of the key columns. One transaction.
    /// </summary>
    public async Task<string> RowsByKeyAsync(
        string connector, string schema, string table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns, string keysText, CancellationToken cancellationToken)
    {
        var hubTable = $"{Quote(schema)}.{Quote(table)}";
        var keys = keyColumns.Select(Quote).ToList();
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await using var read = await connection.BeginTransactionAsync(cancellationToken);
        Count(connector, "fetch");
        await using (var setup = new NpgsqlCommand(
            $"SET LOCAL DateStyle = ISO; SET LOCAL IntervalStyle = postgres; SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = hex; " +
            $"CREATE TEMP TABLE cdc_fetch_keys ON COMMIT DROP AS SELECT {string.Join(", ", keys)} FROM {hubTable} LIMIT 0", connection, read))
        {
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var writer = await connection.BeginTextImportAsync("COPY cdc_fetch_keys FROM STDIN", cancellationToken))
        {
            await writer.WriteAsync(keysText);
        }

        string rows;
        var join = string.Join(" AND ", keys.Select(k => $"h.{k} = k.{k}"));
        await using (var reader = await connection.BeginTextExportAsync(
            $"COPY (SELECT {string.Join(", ", columns.Select(c => "h." + Quote(c)))} FROM {hubTable} h JOIN cdc_fetch_keys k ON {join}) TO STDOUT", cancellationToken))
        {
            rows = await reader.ReadToEndAsync(cancellationToken);
        }

        await read.CommitAsync(cancellationToken);
        return rows;
    }

    /// <summary>
    /// Runs statements as <paramref name="connector"/>'s own write in one round trip: the origin is set
    /// up, the statements run, <c>COMMIT</c> (whose record carries the origin) and the reset follow in
    /// the same batch. PostgreSQL lets one session at a time use an origin; this process takes turns
    /// (<see cref="ReplicationOrigins.OpenAsync"/>'s gate) and waits out another process's session.
    /// </summary>
    private async Task AsOriginAsync(
        string connector, string call, CancellationToken cancellationToken, Action<Action<NpgsqlBatchCommand>> statements, Func<NpgsqlDataReader, CancellationToken, Task>? readLast)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var gate = await ReplicationOrigins.EnterAsync(hub, connector, cancellationToken);
                await using var connection = await hub.OpenConnectionAsync(cancellationToken);
                await using var batch = new NpgsqlBatch(connection);
                var origin = ReplicationOrigins.For(connection.Database, connector);
                foreach (var (sql, value) in ReplicationOrigins.SetupStatements(origin, connector))
                {
                    var setup = new NpgsqlBatchCommand(sql);
                    setup.Parameters.Add(new NpgsqlParameter { Value = value });
                    batch.BatchCommands.Add(setup);
                }

                var before = batch.BatchCommands.Count;
                statements(batch.BatchCommands.Add);
                var last = batch.BatchCommands.Count - 1;
                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand(ReplicationOrigins.ResetStatement));
                Count(connector, call);
                try
                {
                    await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
                    for (var i = 0; i < last; i++)
                    {
                        await reader.NextResultAsync(cancellationToken);
                    }

                    if (readLast is not null && last >= before)
                    {
                        await readLast(reader, cancellationToken);
                    }

                    while (await reader.NextResultAsync(cancellationToken))
                    {
                    }
                }
                catch (Exception e) when (e is PostgresException or OperationCanceledException && connection.State == System.Data.ConnectionState.Open)
                {
                    // The batch stopped before its reset: the session must not go back to the pool tagged.
                    try
                    {
                        await ReplicationOrigins.ResetAsync(connection, CancellationToken.None);
                    }
                    catch (NpgsqlException)
                    {
                        // A broken connection is discarded by the pool, tag and all.
                    }

                    throw;
                }

                return;
            }
            catch (PostgresException e) when (ReplicationOrigins.IsHeldElsewhere(e) && attempt < ReplicationOrigins.BusyAttempts)
            {
                // Another process's session holds the origin for a moment.
                await Task.Delay(ReplicationOrigins.BusyDelay(attempt), _time, cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw ReplicationOrigins.NotGranted(connector, e);
            }
        }
    }

    /// <summary>
    /// Consecutive write-backs of one table that set the same columns, in the order given: each run
    /// can be one statement, and a later write-back of a row is never applied before an earlier one
    /// (grouping across the whole batch would let {x} then {x, y} then {x} end with the middle value).
    /// </summary>
    internal static IEnumerable<(string Table, string KeyColumn, List<WriteBack> Rows)> WriteBackRuns(IEnumerable<(string Table, string KeyColumn, WriteBack Row)> writeBacks)
    {
        (string Table, string KeyColumn, string Columns)? current = null;
        var rows = new List<WriteBack>();
        foreach (var (table, keyColumn, row) in writeBacks)
        {
            if (row.Values.Count == 0)
            {
                continue;
            }

            var signature = (table, keyColumn, string.Join('\n', row.Values.Keys));
            if (current is { } open && open != signature)
            {
                yield return (open.Table, open.KeyColumn, rows);
                rows = [];
            }

            current = signature;
            rows.Add(row);
        }

        if (current is { } last)
        {
            yield return (last.Table, last.KeyColumn, rows);
        }
    }

    private static NpgsqlBatchCommand WriteBackCommand(IReadOnlyDictionary<string, string> types, string table, string keyColumn, WriteBack row)
    {
        var command = new NpgsqlBatchCommand();
        var sets = new List<string>();
        var compares = new List<string>();
        command.Parameters.Add(new NpgsqlParameter { Value = HubSql.ToText(row.Key) });
        foreach (var (column, value) in row.Values)
        {
            var type = StagingColumns.TypeOf(types, table, column);
            command.Parameters.Add(new NpgsqlParameter { Value = (object?)HubSql.ToText(value) ?? DBNull.Value });
            var p = $"CAST(${command.Parameters.Count} AS {type})";
            sets.Add($"{Quote(column)} = {p}");
            compares.Add($"{Quote(column)} IS DISTINCT FROM {p}");
        }

        command.CommandText =
            $"UPDATE {Quote(table)} SET {string.Join(", ", sets)} WHERE {Quote(keyColumn)} = CAST($1 AS {StagingColumns.TypeOf(types, table, keyColumn)}) AND ({string.Join(" OR ", compares)})";
        return command;
    }

    /// <summary>
    /// Rows that write back the same columns, in one statement: planned once rather than once a row
    /// (≈ 30 ms of hub CPU for a Salesforce collection of 200 Ids). The triggers still fire per row.
    /// Keys must be distinct (a key given twice would be updated once, by either value).
    /// </summary>
    private static NpgsqlBatchCommand WriteBackSetCommand(IReadOnlyDictionary<string, string> types, string table, string keyColumn, IReadOnlyList<WriteBack> rows)
    {
        var command = new NpgsqlBatchCommand();
        var columns = rows[0].Values.Keys.ToList();
        var sets = new List<string>();
        var compares = new List<string>();
        var names = new List<string> { "cdc_key" };
        command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => HubSql.ToText(r.Key)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        for (var i = 0; i < columns.Count; i++)
        {
            var column = columns[i];
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => HubSql.ToText(r.Values[column])).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            var value = $"CAST(cdc_values.cdc_v{i} AS {StagingColumns.TypeOf(types, table, column)})";
            names.Add($"cdc_v{i}");
            sets.Add($"{Quote(column)} = {value}");
            compares.Add($"cdc_target.{Quote(column)} IS DISTINCT FROM {value}");
        }

        var arrays = string.Join(", ", Enumerable.Range(1, command.Parameters.Count).Select(n => $"${n}::text[]"));
        command.CommandText =
            $"UPDATE {Quote(table)} AS cdc_target SET {string.Join(", ", sets)} " +
            $"FROM unnest({arrays}) AS cdc_values({string.Join(", ", names)}) " +
            $"WHERE cdc_target.{Quote(keyColumn)} = CAST(cdc_values.cdc_key AS {StagingColumns.TypeOf(types, table, keyColumn)}) AND ({string.Join(" OR ", compares)})";
        return command;
    }

    private static NpgsqlBatchCommand DeadLetterCommand(string connector, DeadLetter letter)
    {
        var command = new NpgsqlBatchCommand(
            """
            INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error, commit_lsn)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6)
            ON CONFLICT (connector, object, record_key) WHERE status = 'open'
            DO UPDATE SET attempts = cdc.dead_letters.attempts + 1, last_seen = now(),
                          payload = EXCLUDED.payload, error = EXCLUDED.error, commit_lsn = EXCLUDED.commit_lsn
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = connector });
        command.Parameters.Add(new NpgsqlParameter { Value = letter.Object });
        command.Parameters.Add(new NpgsqlParameter { Value = letter.RecordKey });
        command.Parameters.Add(new NpgsqlParameter { Value = letter.Payload });
        command.Parameters.Add(new NpgsqlParameter { Value = letter.Error });
        command.Parameters.Add(new NpgsqlParameter { Value = letter.CommitLsn.HasValue ? letter.CommitLsn.Value : DBNull.Value, NpgsqlDbType = NpgsqlDbType.PgLsn });
        return command;
    }

    private static NpgsqlBatchCommand CheckpointCommand(string connector, NpgsqlLogSequenceNumber lsn)
    {
        var command = new NpgsqlBatchCommand(
            """
            INSERT INTO cdc.checkpoints (connector, lsn, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (connector) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
            WHERE cdc.checkpoints.lsn < EXCLUDED.lsn
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = connector });
        command.Parameters.Add(new NpgsqlParameter { Value = lsn, NpgsqlDbType = NpgsqlDbType.PgLsn });
        return command;
    }

    private static string Document(IReadOnlyDictionary<string, JsonObject> perKey)
    {
        var document = new JsonObject();
        foreach (var (key, values) in perKey)
        {
            document[key] = values.DeepClone();
        }

        return document.ToJsonString();
    }

    private void Count(string connector, string call)
    {
        Interlocked.Increment(ref _roundTrips);
        RoundTripsCounter.WithLabels(connector, call).Inc();
    }

    private static string Quote(string identifier) => HubSql.Quote(identifier);
}

/// <summary>What a batch leaves in the hub (<see cref="HubGateway.ApplyAsync"/>); filled as the system answers.</summary>
public sealed class HubBatchResult
{
    /// <summary>Values a system assigned (its id, resolved parents), per staging table and key column.</summary>
    public List<(string Table, string KeyColumn, WriteBack Row)> WriteBacks { get; } = [];

    /// <summary>Writes the system acknowledged.</summary>
    public List<OutboundWrite> Acknowledged { get; } = [];

    /// <summary>Records the system rejected for good.</summary>
    public List<DeadLetter> DeadLetters { get; } = [];

    /// <summary>The checkpoint to store with the rest, when the batch ends a commit.</summary>
    public NpgsqlLogSequenceNumber? Checkpoint { get; set; }

    public bool IsEmpty => WriteBacks.Count == 0 && Acknowledged.Count == 0 && DeadLetters.Count == 0 && Checkpoint is null;
}

/// <summary>A record a system rejected for good: the payload sent and the system's error.</summary>
public sealed record DeadLetter(string Object, string RecordKey, string Payload, string Error, NpgsqlLogSequenceNumber? CommitLsn);

/// <summary>Values a system assigned to one hub row (its id, a link), written back under the connector's origin.</summary>
public sealed record WriteBack(object Key, IReadOnlyDictionary<string, object?> Values);

/// <summary>A write a system acknowledged: the staging row, the system's id, and the fields written (before/after).</summary>
public sealed record OutboundWrite(string Object, string RecordKey, string? RecordId, string Operation, JsonObject Changes, NpgsqlLogSequenceNumber CommitLsn)
{
    /// <summary>
    /// The system's modified stamp of the record after this write, read back from the system; null
    /// when unknown. An inbound row with an older stamp was read before the write landed.
    /// </summary>
    public DateTimeOffset? SystemStamp { get; init; }
}
