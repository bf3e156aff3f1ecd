using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Connectors.Postgres;
using CdcSync.Hub;
using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Operations;

internal sealed record SlotStatus(string Slot, bool Active, string? ConfirmedLsn, string WalStatus, long RetainedBytes, long ReplayWindowBytes);

internal sealed record ConnectorStatus(
    string Connector,
    string? Checkpoint,
    long LagBytes,
    double LagSeconds,
    double EventsPerSecond,
    string? LastError,
    string Circuit,
    long DeadLetters,
    long OpenConflicts,
    double? StatusAgeSeconds);

/// <summary>What the leading worker of a slot last said it was doing (<see cref="Worker.Stage"/>).</summary>
internal sealed record WorkerStatus(string Slot, string Worker, string State, string Pipeline, string? Stage, string? LastError, int Restarts, double AgeSeconds);

internal sealed record HubStatus(
    string Hub,
    string WalPosition,
    bool WorkerConnected,
    IReadOnlyList<WorkerStatus> Workers,
    IReadOnlyList<SlotStatus> Slots,
    IReadOnlyList<ConnectorStatus> Connectors,
    long DeadLetters,
    long OpenConflicts,
    IReadOnlyList<string> Attention)
{
    public bool Healthy => Attention.Count == 0;
}

/// <summary>Thresholds above which `status` says a connector needs attention.</summary>
internal sealed record StatusThresholds(TimeSpan MaxLag, long MaxLagBytes);

/// <summary>
/// What an on-call engineer asks first, from the hub alone (the worker need not run): where the
/// server's WAL is, where the slot is and how much WAL it holds, and per connector how far behind
/// it is. A running worker records each connector's exact lag every few seconds
/// (cdc.connector_status); when that record is stale (no worker), lag is measured from the last
/// position the worker reported, so it counts all WAL written since — an upper bound that rises
/// while changes wait, which is what an alert wants. With a config, only its slot and the
/// connectors it routes to count (another config's pipeline on the same hub has its own worker,
/// and a connector taken out of the config keeps its old rows); with the hub alone, every slot
/// and connector the hub knows.
/// </summary>
internal sealed class StatusService(string hubConnectionString, CdcSyncOptions? options, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    private static readonly TimeSpan Stale = Worker.StatusRefresh * 5;

    public async Task<HubStatus> GetAsync(StatusThresholds thresholds, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(hubConnectionString, options is null ? "CDCSYNC_DB" : "Hub:ConnectionString", cancellationToken);
        var wal = await conn.ExecuteScalarAsync<string>(new CommandDefinition("SELECT pg_current_wal_lsn()::text", cancellationToken: cancellationToken));
        var walLsn = NpgsqlLogSequenceNumber.Parse(wal!);
        var slotNames = options is not null ? [options.Hub.Slot]
            : (await conn.QueryAsync<string>(new CommandDefinition("SELECT slot FROM cdc.slots ORDER BY slot", cancellationToken: cancellationToken))).ToArray();
        var slots = (await conn.QueryAsync<SlotStatus>(new CommandDefinition(
            """
            SELECT n.slot AS "Slot", coalesce(s.active, false) AS "Active", s.confirmed_flush_lsn::text AS "ConfirmedLsn",
                   coalesce(s.wal_status, 'missing') AS "WalStatus",
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint AS "RetainedBytes",
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint AS "ReplayWindowBytes"
            FROM unnest(@slotNames::text[]) AS n(slot) LEFT JOIN pg_replication_slots s ON s.slot_name = n.slot
            ORDER BY n.slot
            """, new { slotNames }, cancellationToken: cancellationToken))).ToList();

        var rows = (await conn.QueryAsync<StatusRow>(new CommandDefinition(
            """
            SELECT n.connector AS "Connector", c.lsn::text AS "Checkpoint", c.updated_at AS "CheckpointAt",
                   s.caught_up_to::text AS "CaughtUpTo", s.lag_bytes AS "LagBytes", s.lag_seconds AS "LagSeconds",
                   s.events_per_second AS "EventsPerSecond", s.last_error AS "LastError", coalesce(s.circuit, 'unknown') AS "Circuit",
                   extract(epoch FROM now() - s.updated_at)::float8 AS "StatusAge",
                   (SELECT count(*) FROM cdc.dead_letters d WHERE d.connector = n.connector AND d.status = 'open') AS "DeadLetters",
                   (SELECT count(*) FROM cdc.conflicts f WHERE f.connector = n.connector AND f.status = 'open') AS "OpenConflicts"
            FROM (SELECT connector FROM cdc.checkpoints WHERE NOT @scoped UNION SELECT connector FROM cdc.connector_status WHERE NOT @scoped
                  UNION SELECT unnest(@configured::text[])) n
            LEFT JOIN cdc.checkpoints c ON c.connector = n.connector
            LEFT JOIN cdc.connector_status s ON s.connector = n.connector
            ORDER BY n.connector
            """, new { configured = ConfiguredConnectors(), scoped = options is not null }, cancellationToken: cancellationToken))).ToList();

        var workerConnected = slots.Count > 0 && slots.All(s => s.Active)
            && rows.Count > 0 && rows.All(r => r.StatusAge is { } age && age < Stale.TotalSeconds);
        var connectors = new List<ConnectorStatus>();
        var attention = new List<string>();
        foreach (var row in rows)
        {
            var checkpoint = await TargetCheckpointAsync(row.Connector, cancellationToken) ?? Parse(row.Checkpoint);
            long lagBytes;
            double lagSeconds;
            if (workerConnected)
            {
                lagBytes = row.LagBytes ?? 0;
                lagSeconds = row.LagSeconds ?? 0;
            }
            else
            {
                var caughtUp = Parse(row.CaughtUpTo);
                var position = caughtUp is { } c && (checkpoint is null || c > checkpoint.Value) ? c : checkpoint ?? default;
                lagBytes = position == default ? 0 : Math.Max(0, (long)((ulong)walLsn - Math.Min((ulong)walLsn, (ulong)position)));
                var since = row.StatusAge ?? (row.CheckpointAt is { } at ? (_time.GetUtcNow().UtcDateTime - at.ToUniversalTime()).TotalSeconds : 0);
                lagSeconds = lagBytes == 0 ? 0 : Math.Max(row.LagSeconds ?? 0, since);
            }

            var status = new ConnectorStatus(row.Connector, checkpoint?.ToString(), lagBytes, Math.Round(lagSeconds, 3), workerConnected ? Math.Round(row.EventsPerSecond ?? 0, 1) : 0,
                row.LastError, workerConnected ? row.Circuit : "unknown", row.DeadLetters, row.OpenConflicts, row.StatusAge is { } a ? Math.Round(a, 1) : null);
            connectors.Add(status);
            if (lagSeconds > thresholds.MaxLag.TotalSeconds)
            {
                attention.Add($"{row.Connector}: lag {lagSeconds:F0} s is over {thresholds.MaxLag.TotalSeconds:F0} s");
            }

            if (lagBytes > thresholds.MaxLagBytes)
            {
                attention.Add($"{row.Connector}: lag {lagBytes} bytes is over {thresholds.MaxLagBytes}");
            }

            if (status.Circuit == "open")
            {
                attention.Add($"{row.Connector}: circuit open");
            }

            if (row.DeadLetters > 0)
            {
                attention.Add($"{row.Connector}: {row.DeadLetters} open dead letter(s)");
            }

            if (row.OpenConflicts > 0)
            {
                attention.Add($"{row.Connector}: {row.OpenConflicts} open conflict(s)");
            }
        }

        var workers = (await conn.QueryAsync<WorkerStatus>(new CommandDefinition(
            """
            SELECT slot AS "Slot", worker AS "Worker", state AS "State", pipeline AS "Pipeline", stage AS "Stage", last_error AS "LastError", restarts AS "Restarts",
                   extract(epoch FROM now() - updated_at)::float8 AS "AgeSeconds"
            FROM cdc.worker_status WHERE slot = ANY(@slotNames) AND updated_at > now() - make_interval(secs => @stale)
            ORDER BY slot
            """, new { slotNames, stale = Stale.TotalSeconds }, cancellationToken: cancellationToken))).ToList();
        var starting = workers.Where(w => w.Pipeline != "Running").ToList();
        foreach (var w in starting)
        {
            // Up but not streaming: say what it waits for, not only that the slot is inactive.
            attention.Insert(0, $"worker {w.Worker} is not streaming slot {w.Slot} ({w.Pipeline}): {w.Stage ?? w.LastError ?? "starting"}");
        }

        if (!workerConnected && starting.Count == 0)
        {
            attention.Insert(0, "worker not connected (slot inactive or no status for " + Stale.TotalSeconds + " s)");
        }

        foreach (var slot in slots.Where(s => s.WalStatus is "lost" or "missing"))
        {
            attention.Add($"slot {slot.Slot} is {slot.WalStatus}");
        }

        var totals = await conn.QuerySingleAsync<(long DeadLetters, long Conflicts)>(new CommandDefinition(
            "SELECT (SELECT count(*) FROM cdc.dead_letters WHERE status = 'open'), (SELECT count(*) FROM cdc.conflicts WHERE status = 'open')",
            cancellationToken: cancellationToken));
        return new HubStatus(HubConnection.Describe(hubConnectionString), wal!, workerConnected, workers, slots, connectors, totals.DeadLetters, totals.Conflicts, attention);
    }

    private string[] ConfiguredConnectors() => options is null ? [] : options.Routes.Values.SelectMany(v => v).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>The PostgreSQL connector's checkpoint lives in its target; the hub's copy may be a tick behind.</summary>
    private async Task<NpgsqlLogSequenceNumber?> TargetCheckpointAsync(string connector, CancellationToken cancellationToken)
    {
        if (options is null || !options.Connectors.TryGetValue(connector, out var section) || Connectors.ConnectorRegistry.Default.Find(section["Type"]) is not { CheckpointInTarget: true })
        {
            return null;
        }

        var target = ConnectorFactory.BindValidated(section, $"Connectors:{connector}", new PostgresConnectorOptionsValidator());
        try
        {
            await using var conn = await HubConnection.OpenAsync(target.ConnectionString, $"Connectors:{connector}:ConnectionString", cancellationToken);
            var table = $"{HubSql.Quote(target.CheckpointSchema)}.checkpoints";
            if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass(@table) IS NOT NULL", new { table }, cancellationToken: cancellationToken)))
            {
                return null;
            }

            var text = await conn.ExecuteScalarAsync<string?>(new CommandDefinition($"SELECT lsn::text FROM {table} WHERE connector = @connector", new { connector }, cancellationToken: cancellationToken));
            return Parse(text);
        }
        catch (OperatorException)
        {
            // The target is down: the hub's copy is the best there is.
            return null;
        }
    }

    private static NpgsqlLogSequenceNumber? Parse(string? text) => text is null ? null : NpgsqlLogSequenceNumber.Parse(text);

    private sealed record StatusRow(
        string Connector,
        string? Checkpoint,
        DateTime? CheckpointAt,
        string? CaughtUpTo,
        long? LagBytes,
        double? LagSeconds,
        double? EventsPerSecond,
        string? LastError,
        string Circuit,
        double? StatusAge,
        long DeadLetters,
        long OpenConflicts);
}
