using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CdcSync.Checks;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary><c>cdcsync checks run|list</c>: the data-quality checks deployed in the hub (checks/*.sql).</summary>
internal static class ChecksCommand
{
    /// <summary>Sample rows printed per failing check in text output (--json has all that were kept).</summary>
    private const int PrintedRows = 3;

    public static Command Create()
    {
        var run = RunVerb();
        var list = ListVerb();
        return new Command("checks", "Data-quality checks (checks/*.sql, deployed by 'cdcsync migrate'): run them now, or list them.") { run, list };
    }

    private static Command RunVerb()
    {
        var config = CliOptions.Config();
        var name = new Option<string?>("--name") { Description = "Run only this check (its name in the header, as 'checks list' shows it)." };
        var json = CliOptions.Json();
        var command = new Command("run", "Run the deployed checks now and record the runs in the hub. Exit 1 when a check finds rows, 2 when one cannot run.") { config, name, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenHubAsync(parse.GetValue(config)!, ct);
            var runner = new CheckRunner(hub, "cli");
            var checks = await runner.ListAsync(ct);
            if (checks.Count == 0)
            {
                throw new OperatorException("No checks are deployed in the hub; add checks/*.sql and run 'cdcsync migrate'.");
            }

            if (parse.GetValue(name) is { } only)
            {
                checks = checks.Where(c => c.Name == only).ToList() is { Count: > 0 } named
                    ? named
                    : throw new OperatorException($"There is no check '{only}' in the hub{(DidYouMean.Closest(only, (await runner.ListAsync(ct)).Select(c => c.Name)) is { } best ? $"; did you mean {best}?" : string.Empty)} ('cdcsync checks list' shows them; a new file is deployed by 'cdcsync migrate').");
            }

            var asJson = parse.GetValue(json);
            var results = new List<CheckRunResult>();
            foreach (var check in checks)
            {
                var result = await runner.RunAsync(check, ct);
                results.Add(result);
                if (!asJson)
                {
                    Print(result);
                }
            }

            var found = results.Count(r => r.FoundRows);
            var errors = results.Count(r => r.Error is not null);
            if (asJson)
            {
                CliJson.Write(new
                {
                    found,
                    errors,
                    checks = results.Select(r => new
                    {
                        r.Name,
                        r.Severity,
                        r.FailingRows,
                        sample = JsonSerializer.Deserialize<JsonElement>(r.SampleJson),
                        r.Error,
                        r.RunId,
                        elapsedMs = Math.Round(r.Elapsed.TotalMilliseconds, 1),
                    }),
                });
            }
            else
            {
                Console.WriteLine($"{results.Count} check(s): {found} found rows, {errors} could not run.");
            }

            return errors > 0 ? ExitCodes.Error : found > 0 ? ExitCodes.Attention : ExitCodes.Ok;
        }));
        return command;
    }

    private static Command ListVerb()
    {
        var config = CliOptions.Config();
        var json = CliOptions.Json();
        var command = new Command("list", "List the checks deployed in the hub with their severity, schedule and last run.") { config, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenHubAsync(parse.GetValue(config)!, ct);
            var checks = await new CheckRunner(hub, "cli").ListAsync(ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(new { checks });
                return ExitCodes.Ok;
            }

            if (checks.Count == 0)
            {
                Console.WriteLine("No checks deployed; add checks/*.sql and run 'cdcsync migrate'.");
                return ExitCodes.Ok;
            }

            Console.WriteLine($"{"NAME",-32} {"SEVERITY",-8} {"SCHEDULE",-14} LAST RUN");
            foreach (var c in checks)
            {
                var last = c.LastRunAt is not { } at ? "never"
                    : c.LastError is not null ? $"{at:yyyy-MM-dd HH:mm:ss}Z error: {c.LastError}"
                    : $"{at:yyyy-MM-dd HH:mm:ss}Z {c.LastFailingRows} row(s)";
                Console.WriteLine($"{c.Name,-32} {c.Severity,-8} {c.Schedule,-14} {last}");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The config's hub, checked whole first (as every verb taking --config does), and reachable.</summary>
    private static async Task<NpgsqlDataSource> OpenHubAsync(string configPath, CancellationToken cancellationToken)
    {
        var options = ConnectorConfig.Bind(ConfigLoader.Build(configPath));
        await (await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken)).DisposeAsync();
        return NpgsqlDataSource.Create(options.Hub.ConnectionString);
    }

    private static void Print(CheckRunResult r)
    {
        var ms = string.Create(CultureInfo.InvariantCulture, $"({r.Elapsed.TotalMilliseconds:F0} ms)");
        if (r.Error is not null)
        {
            Console.WriteLine($"ERROR {r.Name} ({r.Severity}): {r.Error} {ms}");
            return;
        }

        if (!r.FoundRows)
        {
            Console.WriteLine($"ok    {r.Name} ({r.Severity}): no rows {ms}");
            return;
        }

        Console.WriteLine($"FOUND {r.Name} ({r.Severity}): {r.FailingRows} row(s) {ms}");
        using var sample = JsonDocument.Parse(r.SampleJson);
        foreach (var row in sample.RootElement.EnumerateArray().Take(PrintedRows))
        {
            Console.WriteLine($"      {row.GetRawText()}");
        }

        if (r.FailingRows > PrintedRows)
        {
            Console.WriteLine($"      ... {r.FailingRows - PrintedRows} more ('--json' has the first {CheckRunner.SampleRows}, kept in cdc.check_runs run {r.RunId})");
        }
    }
}
