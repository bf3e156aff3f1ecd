using System.Buffers.Binary;
using System.Text;
using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Replication;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Operations;

/// <summary>One transaction a replay would re-send: its commit LSN and time, and changes per table.</summary>
internal sealed record ReplayTransaction(NpgsqlLogSequenceNumber CommitLsn, DateTimeOffset CommitTime, IReadOnlyDictionary<string, int> ChangesByTable)
{
    public int Changes => ChangesByTable.Values.Sum();
}

/// <summary>The slot's replay window: WAL from <see cref="Oldest"/> to <see cref="Current"/> can be replayed.</summary>
internal sealed record ReplayWindowInfo(string Slot, NpgsqlLogSequenceNumber Oldest, NpgsqlLogSequenceNumber Current, bool Active);

/// <summary>What a replay request became.</summary>
internal sealed record ReplayOutcome(long RequestId, bool Applied, NpgsqlLogSequenceNumber Previous);

/// <summary>
/// Re-delivers to one connector every change the slot retains after an LSN. The slot is kept
/// confirmed a window behind the checkpoints (Hub:ReplayRetention*), so the WAL is still there; a
/// replay lowers the connector's checkpoint to the LSN and restarts the pipeline from the slot.
/// Every other connector skips what is at or below its own checkpoint, so it receives nothing.
/// The checkpoint is only lowered while holding the leader lease: by the running worker, which
/// polls cdc.replay_requests, or by the CLI itself when no worker runs.
/// </summary>
internal sealed class ReplayService(CdcSyncOptions options, ILogger logger)
{
    public async Task<ReplayWindowInfo> WindowAsync(CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        var row = await conn.QuerySingleOrDefaultAsync<(string? Confirmed, string Current, bool Active)>(new CommandDefinition(
            """
            SELECT (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = @slot),
                   pg_current_wal_lsn()::text,
                   coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = @slot), false)
            """, new { slot = options.Hub.Slot }, cancellationToken: cancellationToken));
        if (row.Confirmed is null)
        {
            throw new OperatorException($"Slot {options.Hub.Slot} does not exist on the hub, so there is nothing to replay; start 'cdcsync run' to create it, or use 'cdcsync resync' to re-send current rows.");
        }

        return new ReplayWindowInfo(options.Hub.Slot, NpgsqlLogSequenceNumber.Parse(row.Confirmed), NpgsqlLogSequenceNumber.Parse(row.Current), row.Active);
    }

    /// <summary>Checks the connector and that <paramref name="from"/> lies in the window; the error names the oldest replayable LSN.</summary>
    public async Task<ReplayWindowInfo> CheckAsync(string connector, NpgsqlLogSequenceNumber from, CancellationToken cancellationToken)
    {
        var tables = RoutedTables(connector);
        var window = await WindowAsync(cancellationToken);
        if (from > window.Current)
        {
            // Nothing was committed after it yet; accepting it would record a replay that
            // re-delivers nothing (and reads as if a checkpoint had moved).
            throw new OperatorException(
                $"--from-lsn {from} is ahead of the hub's current WAL position {window.Current}: nothing was committed after it. " +
                $"Give an LSN between {window.Oldest} (the oldest replayable) and {window.Current}; 'cdcsync status' shows both.");
        }

        if (from < window.Oldest)
        {
            var table = tables.Count > 0 ? $"{tables[0].Schema}.{tables[0].Name}" : "<schema.table>";
            throw new OperatorException(
                $"--from-lsn {from} is older than the replay window of slot {window.Slot}: the oldest replayable LSN is {window.Oldest}. " +
                $"Replay from {window.Oldest} or later, or re-send current rows with 'cdcsync resync --config FILE --connector {connector} --table {table}'.");
        }

        return window;
    }

    /// <summary>
    /// The transactions a replay would re-send to <paramref name="connector"/>, read from a
    /// temporary copy of the slot (dropped with the session), so the slot itself does not move.
    /// </summary>
    public async Task<IReadOnlyList<ReplayTransaction>> DryRunAsync(string connector, NpgsqlLogSequenceNumber from, CancellationToken cancellationToken)
    {
        var routed = RoutedTables(connector).ToHashSet();
        await CheckAsync(connector, from, cancellationToken);
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        var copy = $"cdcsync_dry_{Guid.NewGuid():N}"[..40];
        await conn.ExecuteAsync(new CommandDefinition(
            "SELECT pg_copy_logical_replication_slot(@slot, @copy, true)", new { slot = options.Hub.Slot, copy }, cancellationToken: cancellationToken));

        try
        {
            return await DecodeAsync(conn, copy, connector, from, routed, cancellationToken);
        }
        finally
        {
            // A temporary slot lives as long as its session, and pooled sessions live on.
            await conn.ExecuteAsync(new CommandDefinition("SELECT pg_drop_replication_slot(@copy)", new { copy }, cancellationToken: CancellationToken.None));
        }
    }

    private async Task<List<ReplayTransaction>> DecodeAsync(NpgsqlConnection conn, string copy, string connector, NpgsqlLogSequenceNumber from, HashSet<TableName> routed, CancellationToken cancellationToken)
    {
        var result = new List<ReplayTransaction>();
        var relations = new Dictionary<uint, TableName>();
        var database = conn.Database;
        NpgsqlLogSequenceNumber commitLsn = default;
        DateTimeOffset commitTime = default;
        string? origin = null;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var peek = new NpgsqlCommand(
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)", conn)
        { CommandTimeout = 0 };
        peek.Parameters.Add(new NpgsqlParameter { Value = copy });
        peek.Parameters.Add(new NpgsqlParameter { Value = QuotePublication(options.Hub.Publication) });
        await using var reader = await peek.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var data = (byte[])reader[0];
            switch ((char)data[0])
            {
                case 'B':
                    commitLsn = new NpgsqlLogSequenceNumber(BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(1)));
                    commitTime = PostgresEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(9)) * 10);
                    origin = null;
                    counts.Clear();
                    break;
                case 'O':
                    origin = CString(data, 9, out _);
                    break;
                case 'R':
                    var oid = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(1));
                    var schema = CString(data, 5, out var next);
                    relations[oid] = new TableName(schema, CString(data, next, out _));
                    break;
                case 'I' or 'U' or 'D':
                    Count(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(1)));
                    break;
                case 'T':
                    var n = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(1));
                    for (var i = 0; i < n; i++)
                    {
                        Count(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6 + (4 * i))));
                    }

                    break;
                case 'C':
                    // The router never sends a connector its own (origin-tagged) changes; a replay does not either.
                    if (commitLsn > from && counts.Count > 0 && !ReplicationOrigins.IsOwn(origin, database, connector))
                    {
                        result.Add(new ReplayTransaction(commitLsn, commitTime, new Dictionary<string, int>(counts, StringComparer.Ordinal)));
                    }

                    counts.Clear();
                    break;
            }
        }

        return result;

        void Count(uint relation)
        {
            if (relations.TryGetValue(relation, out var table) && routed.Contains(table))
            {
                var key = $"{table.Schema}.{table.Name}";
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }
    }

    /// <summary>
    /// Records the request, then applies it right away when no worker holds the lease; otherwise
    /// waits up to <paramref name="workerTimeout"/> for the running worker to apply it.
    /// </summary>
    public async Task<ReplayOutcome> RequestAsync(string connector, NpgsqlLogSequenceNumber from, TimeSpan workerTimeout, TimeProvider time, CancellationToken cancellationToken)
    {
        await CheckAsync(connector, from, cancellationToken);
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        var id = await conn.ExecuteScalarAsync<long>(new CommandDefinition(
            "INSERT INTO cdc.replay_requests (connector, from_lsn) VALUES (@connector, @from::pg_lsn) RETURNING id",
            new { connector, from = from.ToString() }, cancellationToken: cancellationToken));

        await using (var lease = await LeaderLease.TryAcquireAsync(options.Hub.ConnectionString, options.Hub.Slot, cancellationToken))
        {
            if (lease is not null)
            {
                await ApplyPendingAsync("cli", cancellationToken);
            }
        }

        var deadline = time.GetUtcNow() + workerTimeout;
        while (true)
        {
            var row = await conn.QuerySingleAsync<(DateTime? AppliedAt, string? Previous, string? Error)>(new CommandDefinition(
                "SELECT applied_at, previous_lsn::text, error FROM cdc.replay_requests WHERE id = @id", new { id }, cancellationToken: cancellationToken));
            if (row.Error is not null)
            {
                throw new OperatorException($"replay {id} was not applied: {row.Error}.");
            }

            if (row.AppliedAt is not null)
            {
                return new ReplayOutcome(id, true, row.Previous is null ? default : NpgsqlLogSequenceNumber.Parse(row.Previous));
            }

            if (time.GetUtcNow() >= deadline)
            {
                return new ReplayOutcome(id, false, default);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken);
        }
    }

    /// <summary>True when a replay waits to be applied (the worker polls this).</summary>
    public async Task<bool> AnyPendingAsync(NpgsqlConnection conn, CancellationToken cancellationToken) =>
        await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM cdc.replay_requests WHERE applied_at IS NULL)", cancellationToken: cancellationToken));

    /// <summary>Lowers checkpoints for every pending request, oldest first. The caller holds the leader lease.</summary>
    public async Task<int> ApplyPendingAsync(string appliedBy, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        var pending = (await conn.QueryAsync<(long Id, string Connector, string From)>(new CommandDefinition(
            "SELECT id, connector, from_lsn::text FROM cdc.replay_requests WHERE applied_at IS NULL ORDER BY id", cancellationToken: cancellationToken))).ToList();
        foreach (var (id, connector, fromText) in pending)
        {
            var from = NpgsqlLogSequenceNumber.Parse(fromText);
            if (!options.Connectors.ContainsKey(connector))
            {
                // The config changed since the request: it can never apply; close it with the reason.
                await conn.ExecuteAsync(new CommandDefinition(
                    "UPDATE cdc.replay_requests SET applied_at = now(), applied_by = @appliedBy, error = @error WHERE id = @id",
                    new { id, appliedBy, error = $"connector {connector} is no longer in the config" }, cancellationToken: cancellationToken));
                logger.LogWarning("Replay {Id}: connector {Connector} is no longer in the config; request closed", id, connector);
                continue;
            }

            var previous = await ConnectorCheckpoints.RewindAsync(options, connector, from, cancellationToken);
            await conn.ExecuteAsync(new CommandDefinition(
                "UPDATE cdc.replay_requests SET applied_at = now(), applied_by = @appliedBy, previous_lsn = @previous::pg_lsn WHERE id = @id",
                new { id, appliedBy, previous = previous.ToString() }, cancellationToken: cancellationToken));
            if (previous == default)
            {
                // RewindAsync only lowers; nothing came back, so the checkpoint was at or before the LSN already.
                logger.LogInformation("Replay {Id}: connector {Connector} checkpoint is already at or before {Lsn}; nothing to lower", id, connector, from);
            }
            else
            {
                logger.LogInformation("Replay {Id}: connector {Connector} checkpoint lowered from {Previous} to {Lsn}; it re-receives every retained change after it", id, connector, previous, from);
            }
        }

        return pending.Count;
    }

    private List<TableName> RoutedTables(string connector)
    {
        if (!options.Connectors.ContainsKey(connector))
        {
            throw new OperatorException($"Connector '{connector}' is not defined under Connectors (defined: {string.Join(", ", options.Connectors.Keys)}); pass one of those to --connector.");
        }

        return options.Routes.Where(r => r.Value.Contains(connector, StringComparer.Ordinal)).Select(r => TableName.Parse(r.Key)).ToList();
    }

    private static readonly DateTimeOffset PostgresEpoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static string QuotePublication(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string CString(byte[] data, int start, out int next)
    {
        var end = Array.IndexOf(data, (byte)0, start);
        next = end + 1;
        return Encoding.UTF8.GetString(data, start, end - start);
    }
}
