using System.Buffers.Binary;
using CdcSync.Hub;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Connectors.Postgres;

/// <summary>
/// Writes changes into another PostgreSQL database with its own table and column names. Each
/// chunk is reduced to the last state per key, then COPYed (binary values passed through
/// untouched) into temp tables and applied with one DELETE ... USING, one INSERT ... ON CONFLICT
/// and, for rows with unchanged TOAST columns, one UPDATE per column set. The checkpoint row is
/// written in the same target transaction as the rows, so a crash never splits them.
/// </summary>
internal sealed class PostgresOutboundConnector : IOutboundConnector
{
    private static readonly byte[] CopyHeader = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private readonly PostgresConnectorOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<TableName, PostgresTableMapping> _mappings = [];
    private readonly Dictionary<RelationInfo, TargetTable> _tables = new(ReferenceEqualityComparer.Instance);
    private readonly string _checkpointTable;
    private readonly HubGateway? _hub;
    private NpgsqlConnection? _connection;
    private NpgsqlTransaction? _transaction;
    private int _serial;

    /// <param name="hub">Where rows are read back when an update arrives without its TOASTed values for a row the target does not hold.</param>
    public PostgresOutboundConnector(string name, PostgresConnectorOptions options, ILogger logger, HubGateway? hub = null)
    {
        Name = name;
        _hub = hub;
        _options = options;
        _logger = logger;
        foreach (var (hubTable, mapping) in options.Tables)
        {
            _mappings[TableName.Parse(hubTable)] = mapping;
        }

        _checkpointTable = $"{HubSql.Quote(options.CheckpointSchema)}.checkpoints";
    }

    public string Name { get; }

    /// <summary>Rows written to the target since start (after reduction per key).</summary>
    public long RowsApplied { get; private set; }

    /// <summary>Rows read back from the hub because a partial update found no row to update at the target.</summary>
    public long RowsFetchedFromHub { get; private set; }

    public async Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken)
    {
        var connection = await ConnectionAsync(cancellationToken);
        // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists: a
        // role that was given only the pre-made table must not need it.
        await using (var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection))
        {
            exists.Parameters.Add(new NpgsqlParameter { Value = _checkpointTable });
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                await using var create = new NpgsqlCommand(
                    $"""
                    CREATE SCHEMA IF NOT EXISTS {HubSql.Quote(_options.CheckpointSchema)};
                    CREATE TABLE IF NOT EXISTS {_checkpointTable} (
                        connector text PRIMARY KEY,
                        lsn pg_lsn NOT NULL,
                        updated_at timestamptz NOT NULL DEFAULT now());
                    """, connection);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
        }

        await using var cmd = new NpgsqlCommand($"SELECT lsn FROM {_checkpointTable} WHERE connector = $1", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = Name });
        return await cmd.ExecuteScalarAsync(cancellationToken) is NpgsqlLogSequenceNumber lsn ? lsn : default;
    }

    /// <summary>
    /// Reduces the chunk in this process while the server still applies the previous one, then
    /// starts applying this one. Statements stay in order on the one connection and transaction;
    /// a failure surfaces at the next write, commit or abort.
    /// </summary>
    public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
    {
        var connection = await ConnectionAsync(cancellationToken);
        if (_transaction is null)
        {
            await _inflight;
            _transaction = await connection.BeginTransactionAsync(cancellationToken);
        }

        // Per table, the last state of each key in this chunk; tables keep their order of first appearance.
        // The set this chunk fills was last written two chunks ago, and that write has been awaited.
        var rowsOf = _chunkRows[_chunkTurn];
        _chunkTurn ^= 1;
        rowsOf.Clear();
        var pending = rowsOf.Order;
        foreach (var change in changes)
        {
            if (!_tables.TryGetValue(change.Relation, out var table))
            {
                await _inflight;
                table = await TableAsync(connection, change.Relation, cancellationToken);
            }

            if (change.Kind == ChangeKind.Truncate)
            {
                // Everything before the TRUNCATE lands first, then the table is emptied, in order.
                await _inflight;
                await FlushAllAsync(connection, pending, cancellationToken);
                rowsOf.Clear();
                await using var truncate = new NpgsqlCommand($"TRUNCATE {table.QualifiedTarget}", connection, _transaction);
                await truncate.ExecuteNonQueryAsync(cancellationToken);
                continue;
            }

            rowsOf.For(table).Add(table, change);
        }

        await _inflight;
        _inflight = FlushAllAsync(connection, pending, cancellationToken);
    }

    private Task _inflight = Task.CompletedTask;

    // Two sets of per-table rows, kept from chunk to chunk (their dictionaries keep their size, so a
    // chunk allocates no large arrays): one is written to the target while the next chunk fills the other.
    private readonly ChunkRows[] _chunkRows = [new(), new()];
    private int _chunkTurn;

    /// <summary>The pending rows of one chunk, per table, tables in their order of first appearance.</summary>
    private sealed class ChunkRows
    {
        private readonly Dictionary<TargetTable, PendingTable> _byTable = [];

        public List<(TargetTable Table, PendingTable Rows)> Order { get; } = [];

        public PendingTable For(TargetTable table)
        {
            if (!_byTable.TryGetValue(table, out var rows))
            {
                rows = new PendingTable();
                _byTable[table] = rows;
            }

            if (!rows.InChunk)
            {
                rows.InChunk = true;
                Order.Add((table, rows));
            }

            return rows;
        }

        public void Clear()
        {
            foreach (var (_, rows) in Order)
            {
                rows.Clear();
            }

            Order.Clear();
        }
    }

    private async Task FlushAllAsync(NpgsqlConnection connection, List<(TargetTable Table, PendingTable Rows)> pending, CancellationToken cancellationToken)
    {
        foreach (var (table, rows) in pending)
        {
            await FlushAsync(connection, table, rows, cancellationToken);
        }
    }

    public async Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken)
    {
        var traced = Pipeline.LatencyTrace.Enabled ? Pipeline.LatencyTrace.Now() : 0;
        await _inflight;
        if (traced != 0)
        {
            Pipeline.LatencyTrace.Step('f', traced);
            traced = Pipeline.LatencyTrace.Now();
        }

        var connection = await ConnectionAsync(cancellationToken);
        _transaction ??= await connection.BeginTransactionAsync(cancellationToken);
        // The checkpoint row and COMMIT in one round trip: a batch stops at its first error, so the
        // COMMIT runs only if the row was written (the transaction, then aborted, is rolled back by the caller).
        await using (var batch = new NpgsqlBatch(connection, _transaction))
        {
            var upsert = new NpgsqlBatchCommand(
                $"""
                INSERT INTO {_checkpointTable} (connector, lsn, updated_at) VALUES ($1, $2, now())
                ON CONFLICT (connector) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
                """);
            upsert.Parameters.Add(new NpgsqlParameter { Value = Name });
            upsert.Parameters.Add(new NpgsqlParameter { Value = checkpoint, NpgsqlDbType = NpgsqlDbType.PgLsn });
            batch.BatchCommands.Add(upsert);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }

        if (traced != 0)
        {
            Pipeline.LatencyTrace.Step('m', traced);
        }

        _savepointOpen = false;

        // Committed by the batch: disposing finds the transaction complete and sends nothing.
        await _transaction.DisposeAsync();
        _transaction = null;
    }

    // A "cdc_direct" savepoint of the open transaction is not yet released.
    private bool _savepointOpen;

    public async Task AbortAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _inflight;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or OperationCanceledException or OperatorException)
        {
            // Being thrown away with the transaction.
        }

        _inflight = Task.CompletedTask;
        if (_transaction is not null)
        {
            try
            {
                await _transaction.RollbackAsync(cancellationToken);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // The connection is gone; so is the transaction.
            }

            await _transaction.DisposeAsync();
            _transaction = null;
            _savepointOpen = false;

            // A temp table created in the rolled-back transaction is gone with it; the next batch
            // creates it again (IF NOT EXISTS keeps those from earlier, committed transactions).
            foreach (var table in _tables.Values)
            {
                table.TempCreated = false;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await AbortAsync(CancellationToken.None);
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
    }

    private async Task<NpgsqlConnection> ConnectionAsync(CancellationToken cancellationToken)
    {
        if (_connection is { State: System.Data.ConnectionState.Open })
        {
            return _connection;
        }

        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _tables.Clear();
        }

        _connection = await HubConnection.OpenAsync(_options.ConnectionString, $"Connectors:{Name}:ConnectionString", cancellationToken);
        return _connection;
    }

    private async Task<TargetTable> TableAsync(NpgsqlConnection connection, RelationInfo relation, CancellationToken cancellationToken)
    {
        if (_tables.TryGetValue(relation, out var table))
        {
            return table;
        }

        _mappings.TryGetValue(new TableName(relation.Schema, relation.Name), out var mapping);
        var binary = relation.Columns.Count > 0;
        table = await TargetTable.ResolveAsync(Name, connection, relation, mapping, binary, ++_serial, cancellationToken);
        _tables[relation] = table;
        _logger.LogInformation("Connector {Connector}: {Table} -> {Target} ({Columns} columns)", Name, relation.QualifiedName, table.QualifiedTarget, table.TargetColumns.Count);
        return table;
    }

    private async Task FlushAsync(NpgsqlConnection connection, TargetTable table, PendingTable rows, CancellationToken cancellationToken)
    {
        if (!table.TempCreated)
        {
            var columns = string.Join(", ", table.TargetColumns.Select((c, i) => $"{HubSql.Quote(c)} {table.TargetTypes[i]}"));
            await using var create = new NpgsqlCommand($"CREATE TEMP TABLE IF NOT EXISTS {table.TempTable} ({columns})", connection, _transaction);
            await create.ExecuteNonQueryAsync(cancellationToken);
            table.TempCreated = true;
        }

        var keyColumns = table.KeyIndexes.Select(i => HubSql.Quote(table.TargetColumns[i])).ToList();
        var keyMatch = string.Join(" AND ", keyColumns.Select(k => $"t.{k} = s.{k}"));

        var (deletes, inserts, upserts, partials) = rows.Split();
        if (deletes.Count > 0)
        {
            await CopyAsync(connection, table, table.TempTable, table.KeyIndexes, deletes, cancellationToken);
            await ExecuteAsync(connection, $"DELETE FROM {table.QualifiedTarget} t USING {table.TempTable} s WHERE {keyMatch}; TRUNCATE {table.TempTable}", cancellationToken);
        }

        var all = Enumerable.Range(0, table.TargetColumns.Count).ToList();
        if (inserts.Count > 0 && upserts.Count == 0 && await TryInsertDirectlyAsync(connection, table, all, inserts, cancellationToken))
        {
            inserts.Clear();
        }

        upserts.AddRange(inserts);
        if (upserts.Count > 0)
        {
            await CopyAsync(connection, table, table.TempTable, all, upserts, cancellationToken);
            var cols = string.Join(", ", table.TargetColumns.Select(HubSql.Quote));
            var nonKey = all.Where(i => !table.KeyIndexes.Contains(i)).Select(i => HubSql.Quote(table.TargetColumns[i])).ToList();
            var onConflict = nonKey.Count == 0
                ? "DO NOTHING"
                : $"DO UPDATE SET {string.Join(", ", nonKey.Select(c => $"{c} = EXCLUDED.{c}"))}";
            await ExecuteAsync(connection, $"INSERT INTO {table.QualifiedTarget} ({cols}) SELECT {cols} FROM {table.TempTable} ON CONFLICT ({string.Join(", ", keyColumns)}) {onConflict}; TRUNCATE {table.TempTable}", cancellationToken);
        }

        // Updates that left TOASTed columns out: set only what the server sent, one statement per column set.
        foreach (var group in partials.GroupBy(r => string.Concat(r.Mask.Select(m => m ? '1' : '0'))))
        {
            var mask = group.First().Mask;
            var sent = Enumerable.Range(0, table.TargetColumns.Count).Where(i => !mask[i]).ToList();
            await CopyAsync(connection, table, table.TempTable, sent, group.ToList(), cancellationToken);
            var sets = sent.Where(i => !table.KeyIndexes.Contains(i)).Select(i => HubSql.Quote(table.TargetColumns[i])).Select(c => $"{c} = s.{c}").ToList();
            if (sets.Count > 0)
            {
                await ExecuteAsync(connection, $"UPDATE {table.QualifiedTarget} t SET {string.Join(", ", sets)} FROM {table.TempTable} s WHERE {keyMatch}", cancellationToken);
            }

            await FetchMissingFromHubAsync(connection, table, keyMatch, cancellationToken);
            await ExecuteAsync(connection, $"TRUNCATE {table.TempTable}", cancellationToken);
        }

        RowsApplied += deletes.Count + upserts.Count + partials.Count;
    }

    /// <summary>
    /// A partial update (TOASTed columns "unchanged") for a key the target does not hold — the new
    /// key of a key change, a row the target lost, a resync touching rows it never had — cannot be
    /// applied from what the stream carries. Never drop it: read the whole current row from the hub
    /// and upsert it. Later changes of the row follow in the stream, so the target converges. Text
    /// formats on both sides, with the hub's output settings pinned, so any column type passes.
    /// </summary>
    private async Task FetchMissingFromHubAsync(NpgsqlConnection connection, TargetTable table, string keyMatch, CancellationToken cancellationToken)
    {
        var keyColumns = table.KeyIndexes.Select(i => HubSql.Quote(table.TargetColumns[i])).ToList();
        var missingKeys = $"SELECT {string.Join(", ", keyColumns.Select(k => "s." + k))} FROM {table.TempTable} s WHERE NOT EXISTS (SELECT 1 FROM {table.QualifiedTarget} t WHERE {keyMatch})";
        await using (var count = new NpgsqlCommand($"SELECT count(*) FROM ({missingKeys}) m", connection, _transaction))
        {
            if ((long)(await count.ExecuteScalarAsync(cancellationToken))! == 0)
            {
                return;
            }
        }

        if (_hub is null)
        {
            throw new OperatorException(
                $"Connector {Name}: an update of {table.Relation.QualifiedName} left TOASTed columns out for a row {table.QualifiedTarget} does not hold, and no hub connection was given to read the row from; set REPLICA IDENTITY FULL on the hub table or run the connector from 'cdcsync run'.");
        }

        string keysText;
        await using (var reader = await connection.BeginTextExportAsync($"COPY ({missingKeys}) TO STDOUT", cancellationToken))
        {
            keysText = await reader.ReadToEndAsync(cancellationToken);
        }

        var relation = table.Relation;
        var rowsText = await _hub.RowsByKeyAsync(
            Name,
            relation.Schema,
            relation.Name,
            table.KeyIndexes.Select(k => relation.Columns[table.SourceOrdinals[k]].Name).ToList(),
            table.SourceOrdinals.Select(o => relation.Columns[o].Name).ToList(),
            keysText,
            cancellationToken);

        await ExecuteAsync(connection, $"TRUNCATE {table.TempTable}", cancellationToken);
        await using (var writer = await connection.BeginTextImportAsync($"COPY {table.TempTable} ({string.Join(", ", table.TargetColumns.Select(HubSql.Quote))}) FROM STDIN", cancellationToken))
        {
            await writer.WriteAsync(rowsText);
        }

        var cols = string.Join(", ", table.TargetColumns.Select(HubSql.Quote));
        var nonKey = Enumerable.Range(0, table.TargetColumns.Count).Where(i => !table.KeyIndexes.Contains(i)).Select(i => HubSql.Quote(table.TargetColumns[i])).ToList();
        var onConflict = nonKey.Count == 0 ? "DO NOTHING" : $"DO UPDATE SET {string.Join(", ", nonKey.Select(c => $"{c} = EXCLUDED.{c}"))}";
        await using var upsert = new NpgsqlCommand($"INSERT INTO {table.QualifiedTarget} ({cols}) SELECT {cols} FROM {table.TempTable} ON CONFLICT ({string.Join(", ", keyColumns)}) {onConflict}", connection, _transaction);
        var fetched = await upsert.ExecuteNonQueryAsync(cancellationToken);
        RowsFetchedFromHub += fetched;
        _logger.LogInformation("Connector {Connector}: {Count} rows of {Table} read back from the hub (an update without its TOASTed values found no row at the target)", Name, fetched, relation.QualifiedName);
    }

    /// <summary>
    /// Rows that are new in this chunk usually do not exist at the target yet: COPY them straight
    /// into the table, skipping the temp table. If one does exist (a resync, a pre-filled target),
    /// the savepoint undoes the attempt and the caller upserts instead.
    /// </summary>
    private async Task<bool> TryInsertDirectlyAsync(NpgsqlConnection connection, TargetTable table, IReadOnlyList<int> columns, IReadOnlyList<PendingRow> rows, CancellationToken cancellationToken)
    {
        if (table.DirectInsertFailed)
        {
            return false;
        }

        if (_savepointOpen)
        {
            // One savepoint open at a time: a transaction written in many chunks must not nest
            // subtransactions (past 64 every snapshot on the target overflows).
            await _transaction!.ReleaseAsync("cdc_direct", cancellationToken);
        }

        // Sent with the COPY, no round trip of its own.
        await _transaction!.SaveAsync("cdc_direct", cancellationToken);
        _savepointOpen = true;
        try
        {
            // Left open on success: the COMMIT releases it, which saves a round trip per batch.
            await CopyAsync(connection, table, table.QualifiedTarget, columns, rows, cancellationToken);
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            await _transaction.RollbackAsync("cdc_direct", cancellationToken);
            // Once a table has shown it holds rows we call new, stop guessing for it.
            table.DirectInsertFailed = true;
            return false;
        }
    }

    private async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, _transaction);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Streams rows into the temp table with COPY; binary values go through as received.</summary>
    private static async Task CopyAsync(NpgsqlConnection connection, TargetTable table, string destination, IReadOnlyList<int> columns, IReadOnlyList<PendingRow> rows, CancellationToken cancellationToken)
    {
        var names = string.Join(", ", columns.Select(i => HubSql.Quote(table.TargetColumns[i])));
        var textMode = rows.Any(r => r.HasText);
        if (textMode)
        {
            await using var writer = await connection.BeginTextImportAsync($"COPY {destination} ({names}) FROM STDIN", cancellationToken);
            foreach (var row in rows)
            {
                for (var c = 0; c < columns.Count; c++)
                {
                    if (c > 0)
                    {
                        await writer.WriteAsync('\t');
                    }

                    var ordinal = table.SourceOrdinals[columns[c]];
                    await writer.WriteAsync(row.Values.IsNull(ordinal) ? "\\N" : EscapeText(System.Text.Encoding.UTF8.GetString(row.Values.RawAt(ordinal))));
                }

                await writer.WriteAsync('\n');
            }

            return;
        }

        await using var stream = await connection.BeginRawBinaryCopyAsync($"COPY {destination} ({names}) FROM STDIN (FORMAT BINARY)", cancellationToken);
        var buffer = new byte[1 << 16];
        var length = 0;
        async Task EnsureAsync(int size)
        {
            if (length + size > buffer.Length)
            {
                await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
                length = 0;
                if (size > buffer.Length)
                {
                    buffer = new byte[size];
                }
            }
        }

        CopyHeader.CopyTo(buffer, 0);
        length = CopyHeader.Length;
        foreach (var row in rows)
        {
            await EnsureAsync(2);
            BinaryPrimitives.WriteInt16BigEndian(buffer.AsSpan(length), (short)columns.Count);
            length += 2;
            foreach (var column in columns)
            {
                var ordinal = table.SourceOrdinals[column];
                if (row.Values.IsNull(ordinal))
                {
                    await EnsureAsync(4);
                    BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(length), -1);
                    length += 4;
                    continue;
                }

                var raw = row.Values.RawMemoryAt(ordinal);
                await EnsureAsync(4 + raw.Length);
                BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(length), raw.Length);
                length += 4;
                raw.Span.CopyTo(buffer.AsSpan(length));
                length += raw.Length;
            }
        }

        await EnsureAsync(2);
        BinaryPrimitives.WriteInt16BigEndian(buffer.AsSpan(length), -1);
        length += 2;
        await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
    }

    private static string EscapeText(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);

    private sealed record PendingRow(RowValues Values, bool[] Mask, bool HasText);

    /// <summary>The last state of each key seen in a chunk: deleted, fully written, or updated without its TOAST columns.</summary>
    private sealed class PendingTable
    {
        private readonly Dictionary<KeyBytes, (char Kind, PendingRow Row)> _byKey = [];
        private readonly (List<PendingRow> Deletes, List<PendingRow> Inserts, List<PendingRow> Upserts, List<PendingRow> Partials) _split = ([], [], [], []);

        /// <summary>Whether this table has rows in the chunk being filled.</summary>
        public bool InChunk { get; set; }

        /// <summary>Deleted keys, rows first seen as an INSERT in this chunk, other full rows, and partial updates (lists reused by the next chunk).</summary>
        public (List<PendingRow> Deletes, List<PendingRow> Inserts, List<PendingRow> Upserts, List<PendingRow> Partials) Split()
        {
            ClearSplit();
            foreach (var (kind, row) in _byKey.Values)
            {
                (kind switch { 'd' => _split.Deletes, 'i' => _split.Inserts, 'u' => _split.Upserts, _ => _split.Partials }).Add(row);
            }

            return _split;
        }

        /// <summary>Empties this table for the next chunk, keeping its capacity.</summary>
        public void Clear()
        {
            _byKey.Clear();
            ClearSplit();
            InChunk = false;
        }

        private void ClearSplit()
        {
            _split.Deletes.Clear();
            _split.Inserts.Clear();
            _split.Upserts.Clear();
            _split.Partials.Clear();
        }

        public void Add(TargetTable table, ChangeEvent change)
        {
            switch (change.Kind)
            {
                case ChangeKind.Delete:
                {
                    var old = change.Old ?? throw new OperatorException(
                        $"A DELETE on {change.Relation.QualifiedName} arrived without its key: the table has REPLICA IDENTITY NOTHING. Set REPLICA IDENTITY DEFAULT (with a primary key) or FULL.");
                    _byKey[KeyOf(table, old)] = ('d', Row(old, null));
                    break;
                }

                case ChangeKind.Insert:
                {
                    var key = KeyOf(table, change.New!);
                    // 'i': nothing happened to this key earlier in the chunk, so it is likely new at the target too.
                    _byKey[key] = (_byKey.ContainsKey(key) ? 'u' : 'i', Row(change.New!, null));
                    break;
                }
                case ChangeKind.Update:
                {
                    var values = change.New!;
                    var newKey = KeyOf(table, values);
                    if (change.Old is { } old)
                    {
                        var oldKey = KeyOf(table, old);
                        if (!oldKey.Equals(newKey))
                        {
                            // The key changed: the old row goes away, the new one appears.
                            _byKey[oldKey] = ('d', Row(old, null));
                        }
                    }

                    var partial = false;
                    for (var i = 0; i < table.SourceOrdinals.Count && !partial; i++)
                    {
                        partial = values.IsUnchanged(table.SourceOrdinals[i]);
                    }

                    if (!partial)
                    {
                        _byKey[newKey] = ('u', Row(values, null));
                        break;
                    }

                    var mask = new bool[table.SourceOrdinals.Count];
                    for (var i = 0; i < mask.Length; i++)
                    {
                        mask[i] = values.IsUnchanged(table.SourceOrdinals[i]);
                    }

                    if (_byKey.TryGetValue(newKey, out var earlier) && earlier.Kind is 'u' or 'i')
                    {
                        _byKey[newKey] = ('u', Row(Merge(values, earlier.Row.Values), null));
                    }
                    else if (_byKey.TryGetValue(newKey, out var earlierPartial) && earlierPartial.Kind == 'p')
                    {
                        var merged = Merge(values, earlierPartial.Row.Values);
                        var mergedMask = new bool[mask.Length];
                        for (var i = 0; i < mask.Length; i++)
                        {
                            mergedMask[i] = mask[i] && earlierPartial.Row.Mask[i];
                        }

                        _byKey[newKey] = ('p', Row(merged, mergedMask));
                    }
                    else
                    {
                        _byKey[newKey] = ('p', Row(values, mask));
                    }

                    break;
                }
            }
        }

        private static PendingRow Row(RowValues values, bool[]? mask) => new(values, mask ?? [], values.HasText);

        /// <summary>Fills the unchanged columns of <paramref name="newer"/> from <paramref name="older"/>.</summary>
        private static RowValues Merge(RowValues newer, RowValues older)
        {
            var builder = new RowValues.Builder();
            for (var i = 0; i < newer.Count; i++)
            {
                var source = newer.IsUnchanged(i) ? older : newer;
                builder.Add(source.KindAt(i), source.RawAt(i));
            }

            return builder.Build();
        }

        private static KeyBytes KeyOf(TargetTable table, RowValues row)
        {
            var size = 0;
            foreach (var k in table.KeyIndexes)
            {
                size += 5 + row.RawAt(table.SourceOrdinals[k]).Length;
            }

            var bytes = new byte[size];
            var pos = 0;
            foreach (var k in table.KeyIndexes)
            {
                var ordinal = table.SourceOrdinals[k];
                var raw = row.RawAt(ordinal);
                bytes[pos++] = (byte)row.KindAt(ordinal);
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(pos), raw.Length);
                pos += 4;
                raw.CopyTo(bytes.AsSpan(pos));
                pos += raw.Length;
            }

            return new KeyBytes(bytes);
        }
    }

    private readonly struct KeyBytes(byte[] bytes) : IEquatable<KeyBytes>
    {
        private readonly byte[] _bytes = bytes;

        public bool Equals(KeyBytes other) => _bytes.AsSpan().SequenceEqual(other._bytes);

        public override bool Equals(object? obj) => obj is KeyBytes other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.AddBytes(_bytes);
            return hash.ToHashCode();
        }
    }
}
