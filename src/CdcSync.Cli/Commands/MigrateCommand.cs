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
        var dryRun = new Option<bool>("--dry-run") { Description = "List the scripts that would run (and why), run nothing." };
        var json = CliOptions.Json();
        var command = new Command("migrate", "Deploy the hub: migrations/ once each, then transforms/ whose content changed. A failing script exits 2.")
        {
            db, scripts, dryRun, json,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            var set = ScriptSet.Load(ScriptSet.Locate(parse.GetValue(scripts)));
            await PrepareHubAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            var asJson = parse.GetValue(json);
            // Progress lines would break the one JSON document on stdout.
            var migrator = new HubMigrator(connectionString, set, asJson ? null : line => Console.WriteLine($"  {line}"));
            var state = await migrator.DeploymentStateAsync(ct);
            var target = HubConnection.Describe(connectionString);
            if (parse.GetValue(dryRun))
            {
                if (asJson)
                {
                    CliJson.Write(new { hub = target, dryRun = true, upToDate = state.Pending.Count == 0, pending = state.Pending });
                    return ExitCodes.Ok;
                }

                Console.WriteLine(state.Pending.Count == 0 ? $"{target} is up to date; nothing would run." : $"would run on {target}:");
                foreach (var script in state.Pending)
                {
                    Console.WriteLine($"  {script.Describe()}");
                }

                return ExitCodes.Ok;
            }

            if (state.Pending.Count == 0)
            {
                if (asJson)
                {
                    CliJson.Write(new { hub = target, dryRun = false, upToDate = true, succeeded = true, applied = Array.Empty<string>(), migrations = set.Migrations.Count, transforms = set.Transforms.Count });
                    return ExitCodes.Ok;
                }

                Console.WriteLine($"{target} is up to date ({set.Migrations.Count} migrations, {set.Transforms.Count} transforms); nothing to do.");
                return ExitCodes.Ok;
            }

            if (!asJson)
            {
                Console.WriteLine($"migrating {target}: {state.Pending.Count} script(s)");
            }

            var result = await migrator.MigrateAsync(ct);
            if (asJson)
            {
                // Applied scripts are reported even when a later one failed: they stay applied.
                CliJson.Write(new { hub = target, dryRun = false, upToDate = result.Succeeded, result.Succeeded, applied = result.Applied.Select(n => n.Split('@')[0]), migrations = set.Migrations.Count, transforms = set.Transforms.Count });
            }

            if (!result.Succeeded)
            {
                // A broken script is the operator's to fix, like any other error: exit 2.
                await Console.Error.WriteLineAsync($"error: {result.Error}");
                return ExitCodes.Error;
            }

            if (!asJson)
            {
                Console.WriteLine($"done: {result.Applied.Count} script(s) applied.");
            }

            return ExitCodes.Ok;
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
