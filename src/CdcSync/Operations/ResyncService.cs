using System.Text;
using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Pipeline;
using CdcSync.Replication;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Operations;

/// <summary>A resync job as stored in cdc.resync_jobs.</summary>
internal sealed record ResyncJob
{
    public long Id { get; init; }

    public string Connector { get; init; } = "";

    public string TableName { get; init; } = "";

    public string? WhereSql { get; init; }

    public int BatchSize { get; init; }

    public string Status { get; init; } = "";

    /// <summary>Key of the last row made durable at the connector, as text; the next chunk starts after it.</summary>
    public string[]? LastKey { get; init; }

    public long RowsDone { get; init; }

    public long? RowsTotal { get; init; }

    public string? Error { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? StartedAt { get; init; }

    public DateTime UpdatedAt { get; init; }
}

/// <summary>
/// Re-sends the current rows of one hub table to one connector while streaming goes on, without
/// a table-wide UPDATE: the worker reads the table in primary-key order, one chunk per short
/// transaction that holds FOR SHARE locks on the chunk's rows (no triggers fire, nothing is
/// written to the rows), notes the WAL position inside that transaction, and has the connector
/// writer apply the chunk, as full rows, exactly at that position of the stream (the watermark).
/// A change to a chunk row either committed before the read (and the chunk carries its result)
/// or waited for the lock and commits after the position (and is applied after the chunk), so a
/// backfilled row never overwrites a newer streamed change. Progress is stored per chunk after
/// the connector made it durable; a killed worker resumes at the last stored key.
/// </summary>
internal sealed class ResyncService(CdcSyncOptions options, ILogger logger)
{
    public const int DefaultBatchSize = 1000;

    /// <summary>Queues a resync (or returns the unfinished one for the same connector, table and filter, to resume it).</summary>
    public async Task<ResyncJob> RequestAsync(string connector, string table, string? where, int batchSize, CancellationToken cancellationToken)
    {
        if (!options.Connectors.ContainsKey(connector))
        {
            throw new OperatorException($"Connector '{connector}' is not defined under Connectors (defined: {string.Join(", ", options.Connectors.Keys)}); pass one of those to --connector.");
        }

        TableName name;
        try
        {
            name = TableName.Parse(table);
        }
        catch (FormatException e)
        {
            throw new OperatorException($"--table {table}: {e.Message}");
        }

        var routed = options.Routes.Any(r => TableName.Parse(r.Key) == name && r.Value.Contains(connector, StringComparer.Ordinal));
        if (!routed)
        {
            var tables = options.Routes.Where(r => r.Value.Contains(connector, StringComparer.Ordinal)).Select(r => r.Key).ToList();
            throw new OperatorException($"--table {table} is not routed to connector {connector} (its tables: {(tables.Count == 0 ? "none" : string.Join(", ", tables))}); resync sends only what the pipeline would.");
        }

        if (batchSize is < 1 or > 100_000)
        {
            throw new OperatorException($"--batch-size {batchSize} is out of range; use 1 to 100000.");
        }

        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        // Fails early, with the fix, when the table is missing or has no key to page by.
        await TableShape.LoadAsync(conn, name, cancellationToken);
        long total;
        try
        {
            total = await conn.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT count(*) FROM {name.Quoted} WHERE {Filter(where)}", cancellationToken: cancellationToken, commandTimeout: 0));
        }
        catch (PostgresException e)
        {
            throw new OperatorException($"--where is not valid SQL for {name.Schema}.{name.Name} ({e.MessageText}); write a boolean condition over its columns, e.g. --where \"updated_at > '2024-01-01'\".", e);
        }

        var canonical = $"{name.Schema}.{name.Name}";
        var existing = await conn.QuerySingleOrDefaultAsync<ResyncJob>(new CommandDefinition(
            $"{SelectJob} WHERE connector = @connector AND table_name = @canonical AND where_sql IS NOT DISTINCT FROM @where AND status IN ('pending', 'running') ORDER BY id LIMIT 1",
            new { connector, canonical, where }, cancellationToken: cancellationToken));
        if (existing is not null)
        {
            return existing;
        }

        var id = await conn.ExecuteScalarAsync<long>(new CommandDefinition(
            "INSERT INTO cdc.resync_jobs (connector, table_name, where_sql, batch_size, rows_total) VALUES (@connector, @canonical, @where, @batchSize, @total) RETURNING id",
            new { connector, canonical, where, batchSize, total }, cancellationToken: cancellationToken));
        return await GetAsync(id, cancellationToken);
    }

    public async Task<ResyncJob> GetAsync(long id, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        return await conn.QuerySingleAsync<ResyncJob>(new CommandDefinition($"{SelectJob} WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>Open jobs and those finished within the last hour, newest first: the console's resync progress.</summary>
    public async Task<IReadOnlyList<ResyncJob>> RecentAsync(int limit, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        var jobs = await conn.QueryAsync<ResyncJob>(new CommandDefinition(
            $"{SelectJob} WHERE status IN ('pending', 'running') OR updated_at > now() - interval '1 hour' ORDER BY id DESC LIMIT @limit",
            new { limit }, cancellationToken: cancellationToken));
        return jobs.AsList();
    }

    private const string SelectJob =
        """
        SELECT id AS "Id", connector AS "Connector", table_name AS "TableName", where_sql AS "WhereSql", batch_size AS "BatchSize", status AS "Status",
               last_key AS "LastKey", rows_done AS "RowsDone", rows_total AS "RowsTotal", error AS "Error", created_at AS "CreatedAt",
               started_at AS "StartedAt", updated_at AS "UpdatedAt"
        FROM cdc.resync_jobs
        """;

    private static string Filter(string? where) => string.IsNullOrWhiteSpace(where) ? "true" : $"({where})";

    /// <summary>The worker's loop: runs open jobs, oldest first, against the current pipeline run, until cancelled.</summary>
    internal async Task RunAsync(PipelineRunner runner, TimeProvider time, CancellationToken cancellationToken)
    {
        await using var hub = NpgsqlDataSource.Create(options.Hub.ConnectionString);
        while (!cancellationToken.IsCancellationRequested)
        {
            ResyncJob? job;
            try
            {
                await using var conn = await hub.OpenConnectionAsync(cancellationToken);
                job = await conn.QuerySingleOrDefaultAsync<ResyncJob>(new CommandDefinition(
                    $"{SelectJob} WHERE status IN ('pending', 'running') ORDER BY id LIMIT 1", cancellationToken: cancellationToken));
            }
            catch (NpgsqlException e)
            {
                logger.LogWarning("Could not look for resync jobs: {Message}", e.Message);
                job = null;
            }

            if (job is null || runner.Health != PipelineHealth.Running || runner.Reader is null)
            {
                await Task.Delay(Worker.StatusRefresh, time, cancellationToken);
                continue;
            }

            try
            {
                await RunJobAsync(hub, runner, job, time, cancellationToken);
            }
            catch (Exception e) when (e is OperatorException or PostgresException { SqlState: not (PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.AdminShutdown) })
            {
                logger.LogError("Resync {Id} of {Table} to {Connector} failed: {Message}", job.Id, job.TableName, job.Connector, e.Message);
                await using var conn = await hub.OpenConnectionAsync(cancellationToken);
                await conn.ExecuteAsync(new CommandDefinition(
                    "UPDATE cdc.resync_jobs SET status = 'failed', error = @error, updated_at = now(), finished_at = now() WHERE id = @id",
                    new { id = job.Id, error = e.Message }, cancellationToken: cancellationToken));
            }
            catch (NpgsqlException e) when (!cancellationToken.IsCancellationRequested)
            {
                // The hub hiccupped; the job resumes from its last stored key.
                logger.LogWarning("Resync {Id} interrupted ({Message}); resuming from its last key", job.Id, e.Message);
                await Task.Delay(Worker.StatusRefresh, time, cancellationToken);
            }
        }
    }

    private async Task RunJobAsync(NpgsqlDataSource hub, PipelineRunner runner, ResyncJob job, TimeProvider time, CancellationToken cancellationToken)
    {
        var writer = runner.Writers.FirstOrDefault(w => w.Name == job.Connector)
            ?? throw new OperatorException($"connector {job.Connector} is not part of the running pipeline; route {job.TableName} to it in the config");
        var reader = runner.Reader!;
        var name = TableName.Parse(job.TableName);
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var shape = await TableShape.LoadAsync(conn, name, cancellationToken);
        var binary = reader.UsesBinary;
        var relation = shape.Relation;
        if (job.Status == "pending")
        {
            await conn.ExecuteAsync(new CommandDefinition(
                "UPDATE cdc.resync_jobs SET status = 'running', started_at = now(), updated_at = now() WHERE id = @id", new { id = job.Id }, cancellationToken: cancellationToken));
            logger.LogInformation("Resync {Id}: {Table} to {Connector}, {Rows} row(s) in batches of {Batch}", job.Id, job.TableName, job.Connector, job.RowsTotal, job.BatchSize);
        }

        var lastKey = job.LastKey;
        var done = job.RowsDone;
        var select = shape.ChunkSql(binary, Filter(job.WhereSql), lastKey is not null, job.BatchSize);
        while (true)
        {
            var (chunk, keys) = await ReadChunkAsync(conn, select, shape, binary, lastKey, job.Id, writer, time, cancellationToken);
            var rows = chunk?.Changes ?? [];
            if (chunk is not null)
            {
                // The router hands the chunk over when the stream passes its position (this resync's
                // own message commits after it), so the wait ends even on a hub with no other writes.
                while (!chunk.Applied.Task.IsCompleted)
                {
                    if (!ReferenceEquals(runner.Reader, reader) || !runner.Writers.Contains(writer))
                    {
                        // The pipeline restarted: this chunk may never be applied; read it again for the new run.
                        return;
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(20), time, cancellationToken);
                }

                lastKey = keys;
                done += rows.Count;
            }

            var finished = rows.Count < job.BatchSize;
            await conn.ExecuteAsync(new CommandDefinition(
                finished
                    ? "UPDATE cdc.resync_jobs SET last_key = @lastKey, rows_done = @done, status = 'done', updated_at = now(), finished_at = now() WHERE id = @id"
                    : "UPDATE cdc.resync_jobs SET last_key = @lastKey, rows_done = @done, updated_at = now() WHERE id = @id",
                new { id = job.Id, lastKey, done }, cancellationToken: cancellationToken));
            if (finished)
            {
                logger.LogInformation("Resync {Id}: {Rows} row(s) of {Table} sent to {Connector}", job.Id, done, job.TableName, job.Connector);
                return;
            }

            select = shape.ChunkSql(binary, Filter(job.WhereSql), afterKey: true, job.BatchSize);
        }
    }

    /// <summary>
    /// Reads one chunk under FOR SHARE locks and schedules it at the writer before the locks are
    /// released: a change to one of its rows commits after this transaction, so the router meets
    /// it only after the chunk is scheduled, and hands the chunk over first.
    /// </summary>
    private static async Task<(BackfillChunk? Chunk, string[]? LastKey)> ReadChunkAsync(
        NpgsqlConnection conn, string select, TableShape shape, bool binary, string[]? lastKey, long jobId, ConnectorWriter writer, TimeProvider time, CancellationToken cancellationToken)
    {
        var rows = new List<RowValues>();
        string[]? keys = null;
        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);
        await using (var cmd = new NpgsqlCommand(select, conn, tx))
        {
            if (lastKey is not null)
            {
                foreach (var value in lastKey)
                {
                    cmd.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Text });
                }
            }

            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            var builder = new RowValues.Builder();
            var columns = shape.Relation.Columns.Count;
            while (await reader.ReadAsync(cancellationToken))
            {
                for (var i = 0; i < columns; i++)
                {
                    if (reader.IsDBNull(i))
                    {
                        builder.Add(ValueKind.Null, default);
                    }
                    else if (binary)
                    {
                        builder.Add(ValueKind.Binary, reader.GetFieldValue<byte[]>(i));
                    }
                    else
                    {
                        builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes(reader.GetString(i)));
                    }
                }

                rows.Add(builder.Build());
                keys = Enumerable.Range(columns, shape.KeyColumns.Count).Select(reader.GetString).ToArray();
            }
        }

        // Inside the transaction, with the chunk's rows locked: every change to them commits after this.
        var position = await conn.ExecuteScalarAsync<NpgsqlLogSequenceNumber>(new CommandDefinition(
            "SELECT pg_current_wal_insert_lsn(), pg_logical_emit_message(true, 'cdcsync.resync', @message)",
            new { message = jobId.ToString(System.Globalization.CultureInfo.InvariantCulture) }, tx, cancellationToken: cancellationToken));
        BackfillChunk? chunk = null;
        if (rows.Count > 0)
        {
            var transaction = new TransactionInfo(0, new NpgsqlLogSequenceNumber((ulong)position - 1), time.GetUtcNow().UtcDateTime, null);
            chunk = new BackfillChunk(rows.Select((row, i) => new ChangeEvent(shape.Relation, ChangeKind.Update, row, null, transaction, i)).ToList(), transaction, position);
            writer.Resync.Schedule(chunk);
        }

        await tx.CommitAsync(cancellationToken);
        return (chunk, keys ?? lastKey);
    }
}

/// <summary>A hub table as the stream describes it (columns pgoutput sends, key flags), plus its paging key.</summary>
internal sealed class TableShape
{
    private TableShape(RelationInfo relation, IReadOnlyList<(string Name, string Type)> keyColumns, IReadOnlyList<(string Send, string Output)> functions, TableName table)
    {
        Relation = relation;
        KeyColumns = keyColumns;
        Functions = functions;
        Table = table;
    }

    public RelationInfo Relation { get; }

    public IReadOnlyList<(string Name, string Type)> KeyColumns { get; }

    private IReadOnlyList<(string Send, string Output)> Functions { get; }

    private TableName Table { get; }

    public static async Task<TableShape> LoadAsync(NpgsqlConnection conn, TableName table, CancellationToken cancellationToken)
    {
        var oid = await conn.ExecuteScalarAsync<uint?>(new CommandDefinition("SELECT to_regclass(@name)::oid", new { name = table.Quoted }, cancellationToken: cancellationToken));
        if (oid is null)
        {
            throw new OperatorException($"Table {table.Schema}.{table.Name} does not exist in the hub; check --table and Routes.");
        }

        // Columns as pgoutput sends them: live, not generated; key flags after the replica identity.
        var columns = (await conn.QueryAsync<(string Name, long TypeOid, int TypeModifier, string Type, string Send, string Output, bool InIdentity, bool InPrimaryKey, string Identity)>(new CommandDefinition(
            """
            SELECT a.attname, a.atttypid::int8, a.atttypmod, format_type(a.atttypid, a.atttypmod), t.typsend::regproc::text, t.typoutput::regproc::text,
                   coalesce(a.attnum = ANY ((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)::int2[]), false),
                   coalesce(a.attnum = ANY ((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)::int2[]), false),
                   c.relreplident::text
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_type t ON t.oid = a.atttypid
            WHERE c.oid = @oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, new { oid = (long)oid.Value }, cancellationToken: cancellationToken))).ToList();
        var identity = columns.Count > 0 ? columns[0].Identity[0] : 'd';
        var infos = columns.Select(c => new ColumnInfo(c.Name, (uint)c.TypeOid, c.TypeModifier, identity switch
        {
            'f' => true,
            'i' => c.InIdentity,
            'd' => c.InPrimaryKey,
            _ => false,
        })).ToList();
        var key = columns.Where(c => c.InPrimaryKey).Select(c => (c.Name, c.Type)).ToList();
        if (key.Count == 0)
        {
            key = columns.Where(c => c.InIdentity).Select(c => (c.Name, c.Type)).ToList();
        }

        if (key.Count == 0)
        {
            throw new OperatorException($"Table {table.Schema}.{table.Name} has no primary key (or replica identity index); resync pages through a table by its key, so add one.");
        }

        return new TableShape(new RelationInfo(oid.Value, table.Schema, table.Name, identity, infos), key, columns.Select(c => (c.Send, c.Output)).ToList(), table);
    }

    /// <summary>
    /// One chunk in key order: each column in the stream's own format (the type's send function
    /// for binary, its output function for text), then the key as text for the next chunk.
    /// FOR SHARE holds each row until the chunk's transaction ends; no row is written, no trigger fires.
    /// </summary>
    public string ChunkSql(bool binary, string filter, bool afterKey, int batchSize)
    {
        // Qualified with the alias: an unqualified ORDER BY name would pick the text copy of the key below.
        var values = Relation.Columns.Select((c, i) => $"{(binary ? Functions[i].Send : Functions[i].Output)}(s.{HubSql.Quote(c.Name)}){(binary ? string.Empty : "::text")} AS v{i}");
        var keyText = KeyColumns.Select((k, i) => $"s.{HubSql.Quote(k.Name)}::text AS k{i}");
        var keyList = string.Join(", ", KeyColumns.Select(k => "s." + HubSql.Quote(k.Name)));
        var after = afterKey
            ? $" AND ({keyList}) > ({string.Join(", ", KeyColumns.Select((k, i) => $"${i + 1}::{k.Type}"))})"
            : string.Empty;
        return $"SELECT {string.Join(", ", values.Concat(keyText))} FROM {Table.Quoted} AS s WHERE {filter}{after} ORDER BY {keyList} LIMIT {batchSize} FOR SHARE OF s";
    }
}
