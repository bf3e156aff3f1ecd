using System.CommandLine;
using CdcSync.Schema;

namespace CdcSync.Cli.Commands;

internal static class TransformsCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var scripts = CliOptions.Scripts();
        var filter = new Option<string?>("--filter") { Description = "Run only tests whose name or file contains this text." };
        var test = new Command("test", "Run transforms/tests/*.sql against the working copy of the SQL, each test in a rolled-back transaction.")
        {
            db, scripts, filter,
        };
        test.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var connectionString = CliOptions.HubConnectionString(parse, db);
            var set = ScriptSet.Load(ScriptSet.Locate(parse.GetValue(scripts)));
            await MigrateCommand.PrepareHubAsync(connectionString, CliOptions.SourceOf(parse, db), ct);
            var runner = new TransformTestRunner(connectionString, set);
            var results = await runner.RunAsync(parse.GetValue(filter), r =>
            {
                if (r.Passed)
                {
                    Console.WriteLine($"PASS {r.File} :: {r.Name}");
                }
                else
                {
                    Console.WriteLine($"FAIL {r.File}:{r.Line} :: {r.Name}\n     {r.Message}");
                }
            }, ct);
            var failed = results.Count(r => !r.Passed);
            Console.WriteLine($"{results.Count - failed} passed, {failed} failed");
            if (results.Count == 0)
            {
                await Console.Error.WriteLineAsync("error: no tests ran; check --filter or add tests under transforms/tests/.");
                return 1;
            }

            return failed == 0 ? 0 : 1;
        }));

        return new Command("transforms", "Work with the SQL transforms.") { test };
    }
}
