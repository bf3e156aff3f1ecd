using System.CommandLine;
using CdcSync.Hub;
using CdcSync.Schema;

namespace CdcSync.Cli.Commands;

internal static class MigrateCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var scripts = CliOptions.Scripts();
        var dryRun = new Option<bool>("--dry-run") { Description = "List the scripts that would run, run nothing." };
        var command = new Command("migrate", "Deploy the hub: migrations/ once each, then transforms/ whose content changed.")
        {
            db, scripts, dryRun,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            var set = ScriptSet.Load(ScriptSet.Locate(parse.GetValue(scripts)));
            await PrepareHubAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            var migrator = new HubMigrator(connectionString, set, line => Console.WriteLine($"  {line}"));
            var pending = await migrator.PendingAsync(ct);
            var target = HubConnection.Describe(connectionString);
            if (parse.GetValue(dryRun))
            {
                Console.WriteLine(pending.Count == 0 ? $"{target} is up to date; nothing would run." : $"would run on {target}:");
                foreach (var name in pending)
                {
                    Console.WriteLine($"  {name}");
                }

                return 0;
            }

            if (pending.Count == 0)
            {
                Console.WriteLine($"{target} is up to date ({set.Migrations.Count} migrations, {set.Transforms.Count} transforms); nothing to do.");
                return 0;
            }

            Console.WriteLine($"migrating {target}: {pending.Count} script(s)");
            var result = await migrator.MigrateAsync(ct);
            if (!result.Succeeded)
            {
                await Console.Error.WriteLineAsync($"error: {result.Error}");
                return 1;
            }

            Console.WriteLine($"done: {result.Applied.Count} script(s) applied.");
            return 0;
        }));
        return command;
    }

    /// <summary>Checks reachability, credentials and wal_level before touching anything.</summary>
    public static async Task PrepareHubAsync(string connectionString, string source, CancellationToken cancellationToken)
    {
        await using var conn = await HubConnection.OpenAsync(connectionString, source, cancellationToken);
        await HubConnection.RequireLogicalWalAsync(conn, cancellationToken);
    }
}
