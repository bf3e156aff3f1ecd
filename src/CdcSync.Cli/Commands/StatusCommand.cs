using System.CommandLine;
using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>What an on-call engineer asks first: is the slot moving, how far behind is each connector, what is stuck.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var command = new Command("status", "Slot position and retained WAL, lag per connector (bytes and seconds), dead letters, open conflicts.") { db };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var conn = await HubConnection.OpenAsync(CliOptions.HubConnectionString(parse, db), CliOptions.SourceOf(parse, db), ct);
            Console.WriteLine($"hub {HubConnection.Describe(conn.ConnectionString)}");

            await using (var slots = new NpgsqlCommand(
                """
                SELECT c.slot, coalesce(s.active, false), coalesce(s.confirmed_flush_lsn::text, '-'), coalesce(s.wal_status, 'missing'),
                       coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)), '-')
                FROM cdc.slots c LEFT JOIN pg_replication_slots s ON s.slot_name = c.slot ORDER BY c.slot
                """, conn))
            await using (var reader = await slots.ExecuteReaderAsync(ct))
            {
                Console.WriteLine("\nslot\tactive\tconfirmed\twal_status\tretained WAL");
                while (await reader.ReadAsync(ct))
                {
                    Console.WriteLine($"{reader.GetString(0)}\t{reader.GetBoolean(1)}\t{reader.GetString(2)}\t{reader.GetString(3)}\t{reader.GetString(4)}");
                }
            }

            await using (var lag = new NpgsqlCommand(
                """
                SELECT c.connector, c.lsn::text, pg_size_pretty(greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), c.lsn), 0)),
                       round(extract(epoch FROM now() - c.updated_at))::bigint,
                       (SELECT count(*) FROM cdc.dead_letters d WHERE d.connector = c.connector AND d.status = 'open'),
                       (SELECT count(*) FROM cdc.conflicts f WHERE f.connector = c.connector AND f.status = 'open')
                FROM cdc.checkpoints c ORDER BY c.connector
                """, conn))
            await using (var reader = await lag.ExecuteReaderAsync(ct))
            {
                Console.WriteLine("\nconnector\tcheckpoint\tlag (WAL bytes)\tlast commit (s ago)\tdead letters\topen conflicts");
                while (await reader.ReadAsync(ct))
                {
                    Console.WriteLine($"{reader.GetString(0)}\t{reader.GetString(1)}\t{reader.GetString(2)}\t{reader.GetInt64(3)}\t{reader.GetInt64(4)}\t{reader.GetInt64(5)}");
                }
            }

            await using var totals = new NpgsqlCommand(
                "SELECT (SELECT count(*) FROM cdc.dead_letters WHERE status = 'open'), (SELECT count(*) FROM cdc.conflicts WHERE status = 'open')", conn);
            await using var t = await totals.ExecuteReaderAsync(ct);
            await t.ReadAsync(ct);
            Console.WriteLine($"\nopen dead letters: {t.GetInt64(0)}; open conflicts: {t.GetInt64(1)}");
            return 0;
        }));
        return command;
    }
}
