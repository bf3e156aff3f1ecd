using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using CdcSync.Hub;
using CdcSync.Schema;

namespace CdcSync.Cli.Commands;

internal static class TransformsCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var scripts = CliOptions.Scripts();
        var filter = new Option<string?>("--filter") { Description = "Run only tests whose name or file contains this text." };
        var inPlace = new Option<bool>("--in-place")
        {
            Description = "Run in the hub itself, each test in a rolled-back transaction, instead of a scratch database (for logins without CREATEDB).",
        };
        var json = CliOptions.Json();
        var test = new Command("test", "Run transforms/tests/*.sql and checks/tests/*.sql against the working copy of the SQL, in a scratch database built from migrations/ on the hub's server and dropped afterwards. Exit 1 when a test fails.")
        {
            db, scripts, filter, inPlace, json,
        };
        test.SetAction((parse, invocationToken) => CliOptions.GuardAsync(async () =>
        {
            // Ctrl-C and SIGTERM cancel the run instead of ending the process, so the scratch
            // database is still dropped; a second signal ends the process at once.
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(invocationToken);
            void OnSignal(PosixSignalContext context)
            {
                context.Cancel = !cancel.IsCancellationRequested;
                cancel.Cancel();
            }

            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            var ct = cancel.Token;
            var connectionString = CliOptions.HubConnectionString(parse, db);
            var set = ScriptSet.Load(ScriptSet.Locate(parse.GetValue(scripts)));
            // Fails early, in one line, when the server cannot be reached or the login is wrong.
            await (await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct)).DisposeAsync();

            var isolation = parse.GetValue(inPlace) ? TransformTestIsolation.InPlace : TransformTestIsolation.ScratchDatabase;
            var asJson = parse.GetValue(json);
            var total = 0;
            var done = 0;
            var progress = new TransformTestProgress
            {
                Planned = plan =>
                {
                    total = plan.Tests;
                    if (!asJson)
                    {
                        Console.WriteLine($"running {plan.Tests} test(s) from {plan.Files} file(s) {plan.Where}");
                    }
                },
                Completed = r =>
                {
                    done++;
                    if (asJson)
                    {
                        return;
                    }

                    var counter = $"[{done.ToString(CultureInfo.InvariantCulture).PadLeft(total.ToString(CultureInfo.InvariantCulture).Length)}/{total}]";
                    var ms = $"({r.Elapsed.TotalMilliseconds:F0} ms)";
                    Console.WriteLine(r.Passed
                        ? $"PASS {counter} {r.File} :: {r.Name} {ms}"
                        : $"FAIL {counter} {r.File}:{r.Line} :: {r.Name} {ms}\n     {r.Message}");
                },
                CleanupFailed = message => Console.Error.WriteLine($"warning: {message}"),
            };

            var run = await new TransformTestRunner(connectionString, set, isolation).RunAsync(parse.GetValue(filter), progress, ct);
            if (run.Results.Count == 0)
            {
                // Nothing matched is a mistake in the command (a --filter typo), not a test result.
                await Console.Error.WriteLineAsync("error: no tests ran; check --filter or add tests under transforms/tests/ or checks/tests/.");
                return ExitCodes.Error;
            }

            if (asJson)
            {
                CliJson.Write(new
                {
                    passed = run.Results.Count - run.Failed,
                    failed = run.Failed,
                    elapsedSeconds = Math.Round(run.Elapsed.TotalSeconds, 3),
                    isolation,
                    scratchDatabaseDropped = run.ScratchDatabase is null ? (bool?)null : run.CleanupError is null,
                    results = run.Results.Select(r => new { r.File, r.Line, r.Name, r.Passed, r.Message, elapsedMs = Math.Round(r.Elapsed.TotalMilliseconds, 1) }),
                });
                return run.Failed == 0 ? ExitCodes.Ok : ExitCodes.Attention;
            }

            var where = run.ScratchDatabase is null ? string.Empty : run.CleanupError is null ? ", scratch database dropped" : string.Empty;
            Console.WriteLine($"{run.Results.Count - run.Failed} passed, {run.Failed} failed in {run.Elapsed.TotalSeconds:F1} s{where}");
            return run.Failed == 0 ? ExitCodes.Ok : ExitCodes.Attention;
        }));

        return new Command("transforms", "Work with the SQL transforms.") { test };
    }
}
