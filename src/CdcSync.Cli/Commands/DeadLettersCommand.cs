using System.CommandLine;
using System.Globalization;
using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync deadletters list|discard|retry</c>: records a connector could not deliver. Retry
/// touches the current hub row (<c>UPDATE t SET hub_id = hub_id</c>), which puts a fresh change in
/// the WAL that the pipeline routes to the table's connectors again.
/// </summary>
internal static class DeadLettersCommand
{
    public static Command Create()
    {
        var command = new Command("deadletters", "Records a connector could not deliver: list them, retry (re-send the current hub row) or discard them.")
        {
            List(), Discard(), Retry(),
        };
        return command;
    }

    private static Command List()
    {
        var db = CliOptions.Db();
        var connector = new Option<string?>("--connector") { Description = "Only this connector's dead letters." };
        var all = new Option<bool>("--all") { Description = "Include retried and discarded ones (default: open only)." };
        var command = new Command("list", "List dead letters, newest first.") { db, connector, all };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            await using var conn = await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            await using var cmd = new NpgsqlCommand(
                """
                SELECT id, connector, object, record_key, status, attempts, first_seen, last_seen, error
                FROM cdc.dead_letters
                WHERE ($1::text IS NULL OR connector = $1) AND ($2 OR status = 'open')
                ORDER BY last_seen DESC, id DESC
                """,
                conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)parse.GetValue(connector) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = parse.GetValue(all) });
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            var rows = 0;
            while (await reader.ReadAsync(ct))
            {
                if (rows++ == 0)
                {
                    Console.WriteLine("id\tconnector\tobject\trecord_key\tstatus\tattempts\tfirst_seen\tlast_seen\terror");
                }

                Console.WriteLine(string.Join('\t',
                    reader.GetInt64(0).ToString(CultureInfo.InvariantCulture),
                    reader.GetString(1),
                    reader.GetString(2),
                    reader.GetString(3),
                    reader.GetString(4),
                    reader.GetInt32(5).ToString(CultureInfo.InvariantCulture),
                    reader.GetDateTime(6).ToString("u", CultureInfo.InvariantCulture),
                    reader.GetDateTime(7).ToString("u", CultureInfo.InvariantCulture),
                    OneLine(reader.GetString(8))));
            }

            if (rows == 0)
            {
                Console.WriteLine("no dead letters.");
            }

            return 0;
        }));
        return command;
    }

    private static Command Discard()
    {
        var db = CliOptions.Db();
        var ids = IdsArgument();
        var command = new Command("discard", "Mark dead letters as discarded (nothing is sent).") { db, ids };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            await using var conn = await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            foreach (var id in parse.GetValue(ids) ?? [])
            {
                await LoadAsync(conn, tx, id, ct);
                await SetStatusAsync(conn, tx, id, "discarded", ct);
                Console.WriteLine($"dead letter {id}: discarded");
            }

            await tx.CommitAsync(ct);
            return 0;
        }));
        return command;
    }

    private static Command Retry()
    {
        var db = CliOptions.Db();
        var ids = IdsArgument();
        var command = new Command("retry", "Re-send the current hub row of each dead letter to its connectors, and mark the dead letter retried.") { db, ids };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            await using var conn = await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            foreach (var id in parse.GetValue(ids) ?? [])
            {
                var (obj, recordKey) = await LoadAsync(conn, tx, id, ct);
                if (!Guid.TryParse(recordKey, out var hubId))
                {
                    throw new OperatorException($"dead letter {id}: record key '{recordKey}' is not a hub_id; it cannot be retried from the hub (discard it, or fix and re-send the record by hand).");
                }

                if (!await HasHubIdAsync(conn, tx, obj, ct))
                {
                    throw new OperatorException($"dead letter {id}: object '{obj}' is not a hub table with a hub_id column; it cannot be retried from the hub.");
                }

                await using (var touch = new NpgsqlCommand($"UPDATE {HubWriter.Quote(obj)} SET hub_id = hub_id WHERE hub_id = $1", conn, tx))
                {
                    touch.Parameters.Add(new NpgsqlParameter { Value = hubId });
                    if (await touch.ExecuteNonQueryAsync(ct) == 0)
                    {
                        throw new OperatorException($"dead letter {id}: {obj} has no row with hub_id {hubId} any more; discard the dead letter instead.");
                    }
                }

                await SetStatusAsync(conn, tx, id, "retried", ct);
                Console.WriteLine($"dead letter {id}: {obj} {hubId} re-sent");
            }

            await tx.CommitAsync(ct);
            return 0;
        }));
        return command;
    }

    private static Argument<long[]> IdsArgument() => new("id")
    {
        Description = "Dead letter ids (see deadletters list).",
        Arity = ArgumentArity.OneOrMore,
    };

    private static async Task<(string Object, string RecordKey)> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT object, record_key, status FROM cdc.dead_letters WHERE id = $1 FOR UPDATE", conn, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            throw new OperatorException($"no dead letter with id {id} (see cdcsync deadletters list --all).");
        }

        var status = reader.GetString(2);
        if (status != "open")
        {
            throw new OperatorException($"dead letter {id} is already {status}.");
        }

        return (reader.GetString(0), reader.GetString(1));
    }

    private static async Task SetStatusAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, string status, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("UPDATE cdc.dead_letters SET status = $2, last_seen = now() WHERE id = $1", conn, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = id });
        cmd.Parameters.Add(new NpgsqlParameter { Value = status });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<bool> HasHubIdAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'hub_id' AND NOT attisdropped)", conn, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = HubWriter.Quote(table) });
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static string OneLine(string s)
    {
        var line = s.ReplaceLineEndings(" ").Replace('\t', ' ');
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
