using System.CommandLine;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Onboarding;
using CdcSync.Reconcile;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync reconcile</c>: do the systems agree with the hub? Reads each system in full, compares
/// every record field by field, prints the findings, and repairs on request. Thin: the engine is
/// <see cref="ReconcileService"/>. Exit 0 clean, 1 drift found (also after a repair: the report is
/// what was found), 2 errors and a run stopped at <c>--max-api-calls</c> (nothing was compared).
/// </summary>
internal static class ReconcileCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var table = new Option<string?>("--table") { Description = "Report only this staging table (e.g. sf_accounts); the systems are still read in full." };
        var record = new Option<string?>("--record") { Description = "Report only this record: a hub id or a system id (Salesforce Id, NetSuite internal id), with the records linked to it." };
        var json = CliOptions.Json();
        var maxCalls = new Option<long?>("--max-api-calls") { Description = "Stop after this many API calls (all systems together); nothing is compared then, and the exit code is 2. Default: no cap." };
        maxCalls.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<long?>() is < 1 and var n)
            {
                result.AddError($"--max-api-calls {n} is too small; use 1 or more.");
            }
        });
        var repair = new Option<bool>("--repair") { Description = "Bring the systems and the hub back to agreement: a value the hub never saw is a late edit of its system, a record removed without a trace is deleted as the mapping's delete rule says (or re-created, with Reconcile:RecreateMissing), a record the hub never saw is a late creation. Each write is audited." };
        var dryRun = new Option<bool>("--dry-run") { Description = "With --repair: list the writes, make none." };
        var command = new Command("reconcile", "Compare every record in each system with the hub, field by field through the mapping's comparison keys, and report drift (open conflicts listed apart); --repair fixes it. Exit 1 when drift is found.")
        {
            config, table, record, json, maxCalls, repair, dryRun,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(dryRun) && !result.GetValue(repair))
            {
                result.AddError("--dry-run lists the writes of a repair; use it with --repair.");
            }
        });
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var asJson = parse.GetValue(json);
            var request = new ReconcileRequest
            {
                Table = parse.GetValue(table),
                Record = parse.GetValue(record),
                Repair = parse.GetValue(repair),
                DryRun = parse.GetValue(dryRun),
                RecreateMissing = options.Reconcile.RecreateMissing,
            };
            await (await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", ct)).DisposeAsync();
            await using var hub = NpgsqlDataSource.Create(options.Hub.ConnectionString);
            var budget = new ApiCallBudget(parse.GetValue(maxCalls));
            using var readers = ReconcileConnectors.Create(options, hub, budget, NullLoggerFactory.Instance);
            if (request.Repair && !request.DryRun)
            {
                // Repairs write rows the systems must receive: the slot must exist before the first.
                await OnboardingSlot.EnsureAsync(options, NullLogger.Instance, ct);
            }

            if (!asJson)
            {
                Console.Error.WriteLine($"Reconciling {string.Join(", ", readers.Connectors.Select(c => c.Name))} with the hub{(request.DryRun ? " (dry run: no repair is written)" : "")}");
            }

            var result = await new ReconcileService(hub, NullLogger<ReconcileService>.Instance)
                .RunAsync(readers.Connectors, budget, request, new OnboardCommand.ConsoleProgress(TimeProvider.System), ct);
            if (asJson)
            {
                CliJson.Write(ToJson(result));
            }
            else
            {
                Print(result);
            }

            return result.Status switch
            {
                ReconcileStatus.Capped => ExitCodes.Error,
                ReconcileStatus.Drift => ExitCodes.Attention,
                _ => ExitCodes.Ok,
            };
        }));
        return command;
    }

    private static readonly (string Kind, string Title)[] Kinds =
    [
        ("field_differs", "field differs (system vs hub)"),
        ("missing_in_system", "record missing in its system"),
        ("missing_in_hub", "record missing in the hub"),
        ("unlinked", "record linked to nothing"),
        ("dangling_link", "link to a record that is gone"),
    ];

    private static void Print(ReconcileResult result)
    {
        var calls = result.ApiCalls.ToString(CultureInfo.InvariantCulture) + (result.MaxApiCalls is { } max ? $" of at most {max.ToString(CultureInfo.InvariantCulture)}" : "");
        if (result.Status == ReconcileStatus.Capped)
        {
            Console.WriteLine($"Stopped at the API call cap: {calls} API calls made before every system was read; nothing was compared (run {result.RunId.ToString(CultureInfo.InvariantCulture)}). Raise --max-api-calls, or narrow nothing: every system is read in full.");
            return;
        }

        Console.WriteLine($"Read: {string.Join(", ", result.Read.Select(r => $"{r.Key} {r.Value.ToString(CultureInfo.InvariantCulture)} records"))} in {Seconds(result.ReadTime)} s with {calls} API calls; compared in {Seconds(result.CompareTime)} s (run {result.RunId.ToString(CultureInfo.InvariantCulture)})");
        Console.WriteLine();
        Console.WriteLine("Drift");
        foreach (var (kind, title) in Kinds)
        {
            Console.WriteLine($"  {title,-36}{result.Findings.Count(f => f.Drift && f.Kind == kind),8}");
        }

        Console.WriteLine($"  {"open conflicts (not drift)",-36}{result.OpenConflicts,8}");
        var drift = result.Findings.Where(f => f.Drift).ToList();
        if (drift.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("  kind\tobject\trecord\tfield\tsystem value (changed)\thub value (changed)\trepair");
            foreach (var f in drift)
            {
                Console.WriteLine($"  {f.Kind}\t{f.Object}\t{f.RecordId ?? f.HubId?.ToString()}\t{f.Field}\t{Value(f.SystemValue, f.SystemModifiedAt)}\t{Value(f.HubValue, f.HubModifiedAt)}\t{f.Repair}");
            }
        }

        var conflicts = result.Findings.Where(f => f.Kind == "open_conflict").ToList();
        if (conflicts.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("Open conflicts (known, waiting for 'cdcsync conflicts resolve'; not drift)");
            Console.WriteLine("  object\trecord\tfield\tincoming value\thub value");
            foreach (var f in conflicts)
            {
                Console.WriteLine($"  {f.Object}\t{f.RecordId ?? f.HubId?.ToString()}\t{f.Field}\t{f.SystemValue ?? "null"}\t{f.HubValue ?? "null"}");
            }
        }

        if (result.Repair)
        {
            Console.WriteLine();
            Console.WriteLine(result.DryRun ? $"Repair (dry run: nothing written), {result.Repairs.Count} writes:" : $"Repaired, {result.Repairs.Count} writes:");
            foreach (var r in result.Repairs)
            {
                Console.WriteLine($"  {r.Action}\t{r.Object}\t{r.RecordId}\tvia {r.Connector}{(r.Fields.Count > 0 ? "\t" + string.Join(", ", r.Fields) : "")}");
            }

            if (!result.DryRun && result.Repairs.Count > 0)
            {
                Console.WriteLine("The writes flow to the other systems through the worker; run reconcile again once it has caught up.");
            }
        }
        else if (drift.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("Repair: cdcsync reconcile --config <file> --repair (add --dry-run to list the writes first).");
        }
    }

    private static string Value(string? value, DateTime? changed) =>
        (value ?? "null") + (changed is { } at ? $" ({at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z)" : "");

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture);

    private static object ToJson(ReconcileResult r) => new
    {
        r.RunId,
        r.Status,
        r.Repair,
        r.DryRun,
        r.Read,
        r.ApiCalls,
        r.MaxApiCalls,
        r.DriftCount,
        r.OpenConflicts,
        Counts = Kinds.ToDictionary(k => k.Kind, k => r.Findings.Count(f => f.Drift && f.Kind == k.Kind)),
        Drift = r.Findings.Where(f => f.Drift),
        Conflicts = r.Findings.Where(f => !f.Drift),
        r.Repairs,
        ReadSeconds = Math.Round(r.ReadTime.TotalSeconds, 1),
        CompareSeconds = Math.Round(r.CompareTime.TotalSeconds, 1),
    };
}
