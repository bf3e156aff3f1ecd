using System.CommandLine;
using CdcSync.Hub;
using CdcSync.Replication;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>Operator verbs for the slot (backfills: <see cref="ResyncCommand"/>).</summary>
internal static class SlotsCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var list = new Command("list", "Show replication slots with their position, retained WAL and whether CdcSync created them.") { db };
        list.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var conn = await HubConnection.OpenAsync(CliOptions.HubConnectionString(parse, db), CliOptions.SourceOf(parse, db), ct);
            await using var cmd = new NpgsqlCommand(
                """
                SELECT s.slot_name, s.plugin, s.active, coalesce(s.confirmed_flush_lsn::text, ''), coalesce(s.wal_status, ''),
                       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)), c.slot IS NOT NULL
                FROM pg_replication_slots s LEFT JOIN cdc.slots c ON c.slot = s.slot_name
                WHERE s.database = current_database() ORDER BY s.slot_name
                """, conn);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            Console.WriteLine("slot\tplugin\tactive\tconfirmed\twal_status\tretained\tcdcsync");
            while (await reader.ReadAsync(ct))
            {
                Console.WriteLine($"{reader.GetString(0)}\t{reader.GetString(1)}\t{reader.GetBoolean(2)}\t{reader.GetString(3)}\t{reader.GetString(4)}\t{reader.GetString(5)}\t{reader.GetBoolean(6)}");
            }

            return 0;
        }));

        var slotOption = new Option<string>("--slot") { Description = "Slot name (Hub:Slot).", Required = true };
        var reset = new Command("reset", "Drop a slot and forget it, so the next 'run' creates a new one (then resync the routed tables).") { db, slotOption };
        reset.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var slot = parse.GetValue(slotOption)!;
            await new SlotManager(CliOptions.HubConnectionString(parse, db), NullLogger.Instance).ResetAsync(slot, ct);
            Console.WriteLine($"slot {slot} dropped and forgotten; the next 'cdcsync run' creates it again. Backfill with 'cdcsync resync --config <file> --connector <name> --table <table>' for each routed table.");
            return 0;
        }));

        return new Command("slots", "Inspect and reset replication slots.") { list, reset };
    }
}
