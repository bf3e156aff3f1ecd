using System.CommandLine;
using CdcSync.Hub;
using CdcSync.Replication;
using CdcSync.Routing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>Operator verbs for the slot and for backfills.</summary>
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
            Console.WriteLine($"slot {slot} dropped and forgotten; the next 'cdcsync run' creates it again. Backfill with 'cdcsync resync --table <table>' for each routed table.");
            return 0;
        }));

        return new Command("slots", "Inspect and reset replication slots.") { list, reset };
    }

    public static Command CreateResync()
    {
        var db = CliOptions.Db();
        var table = new Option<string[]>("--table") { Description = "Hub table to re-send (schema.table); repeat for several.", Required = true, AllowMultipleArgumentsPerToken = true };
        var command = new Command("resync", "Re-send the current rows of hub tables to every connector they are routed to (a backfill; connectors upsert, so it is idempotent).") { db, table };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var conn = await HubConnection.OpenAsync(CliOptions.HubConnectionString(parse, db), CliOptions.SourceOf(parse, db), ct);
            foreach (var text in parse.GetValue(table)!)
            {
                TableName name;
                try
                {
                    name = TableName.Parse(text);
                }
                catch (FormatException e)
                {
                    throw new OperatorException($"--table {text}: {e.Message}");
                }

                await using var key = new NpgsqlCommand(
                    "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1", conn);
                key.Parameters.Add(new NpgsqlParameter { Value = name.Quoted });
                if (await key.ExecuteScalarAsync(ct) is not string column)
                {
                    throw new OperatorException($"Table {name} does not exist in the hub; check --table.");
                }

                // A no-op update still writes a new row version, which the reader routes like any change.
                var quoted = HubWriter.Quote(column);
                await using var touch = new NpgsqlCommand($"UPDATE {name.Quoted} SET {quoted} = {quoted}", conn) { CommandTimeout = 0 };
                var rows = await touch.ExecuteNonQueryAsync(ct);
                Console.WriteLine($"{name}: {rows} row(s) queued for re-send");
            }

            return 0;
        }));
        return command;
    }
}
