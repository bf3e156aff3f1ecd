using CdcSync.Hub;
using CdcSync.Replication;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Operations;

/// <summary>
/// A replication slot of the hub's database as <c>cdcsync slots</c> shows it. A slot CdcSync
/// remembers (cdc.slots) that the server no longer has is listed with <see cref="WalStatus"/> "missing".
/// </summary>
internal sealed record SlotInfo
{
    public string Slot { get; init; } = "";

    public string? Plugin { get; init; }

    public bool Active { get; init; }

    public string? ConfirmedLsn { get; init; }

    public string WalStatus { get; init; } = "";

    public long? RetainedBytes { get; init; }

    public string? Retained { get; init; }

    public bool CreatedByCdcSync { get; init; }
}

/// <summary>Lists the hub's slots and resets one, refusing names that do not exist or are not CdcSync's.</summary>
internal sealed class SlotService(string hubConnectionString, string source)
{
    public async Task<IReadOnlyList<SlotInfo>> ListAsync(CancellationToken cancellationToken)
    {
        await using var conn = await OpenMigratedAsync(cancellationToken);
        return await ListAsync(conn, cancellationToken);
    }

    /// <summary>
    /// Drops the slot and forgets it, so the next run creates a new one. Only a slot CdcSync
    /// created: another program's slot in the same database would silently stop receiving changes.
    /// </summary>
    public async Task<SlotInfo> ResetAsync(string slot, CancellationToken cancellationToken)
    {
        IReadOnlyList<SlotInfo> slots;
        string where;
        await using (var conn = await OpenMigratedAsync(cancellationToken))
        {
            slots = await ListAsync(conn, cancellationToken);
            where = HubConnection.Describe(conn.ConnectionString);
        }

        var found = slots.FirstOrDefault(s => s.Slot == slot);
        if (found is null)
        {
            var known = slots.Count == 0 ? "it has none" : "known: " + string.Join(", ", slots.Select(s => s.Slot));
            throw new OperatorException($"There is no slot '{slot}' in the hub {where} ({known}); check the name with 'cdcsync slots list' (the config's Hub:Slot, default cdcsync).");
        }

        if (!found.CreatedByCdcSync)
        {
            throw new OperatorException(
                $"Slot '{slot}' was not created by CdcSync (cdc.slots does not list it), so reset leaves it alone: another program may read from it. If nothing uses it, drop it yourself: SELECT pg_drop_replication_slot('{slot.Replace("'", "''", StringComparison.Ordinal)}');");
        }

        if (found.Active)
        {
            throw new OperatorException($"Slot '{slot}' is in use by a running worker; stop the worker (systemctl stop cdcsync, or docker compose stop worker) and run 'cdcsync slots reset --slot {slot}' again.");
        }

        await new SlotManager(hubConnectionString, NullLogger.Instance).ResetAsync(slot, cancellationToken);
        return found;
    }

    private async Task<NpgsqlConnection> OpenMigratedAsync(CancellationToken cancellationToken)
    {
        var conn = await HubConnection.OpenAsync(hubConnectionString, source, cancellationToken);
        if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass('cdc.slots') IS NOT NULL", cancellationToken: cancellationToken)))
        {
            var where = HubConnection.Describe(conn.ConnectionString);
            await conn.DisposeAsync();
            throw new OperatorException($"The hub {where} is not migrated (cdc.slots is missing); run 'cdcsync migrate' against it first.");
        }

        return conn;
    }

    private static async Task<IReadOnlyList<SlotInfo>> ListAsync(NpgsqlConnection conn, CancellationToken cancellationToken) =>
        (await conn.QueryAsync<SlotInfo>(new CommandDefinition(
            """
            SELECT coalesce(s.slot_name::text, c.slot) AS "Slot", s.plugin::text AS "Plugin", coalesce(s.active, false) AS "Active",
                   s.confirmed_flush_lsn::text AS "ConfirmedLsn",
                   CASE WHEN s.slot_name IS NULL THEN 'missing' ELSE coalesce(s.wal_status, '') END AS "WalStatus",
                   pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS "RetainedBytes",
                   pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS "Retained",
                   c.slot IS NOT NULL AS "CreatedByCdcSync"
            FROM (SELECT * FROM pg_replication_slots WHERE database = current_database()) s
            FULL JOIN cdc.slots c ON c.slot = s.slot_name
            ORDER BY 1
            """, cancellationToken: cancellationToken))).ToList();
}
