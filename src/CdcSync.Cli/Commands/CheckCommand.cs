using System.CommandLine;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Resilience;
using CdcSync.Schema;

namespace CdcSync.Cli.Commands;

/// <summary>
/// `cdcsync check --config FILE`: every config, connectivity and grant problem at once (exit 2),
/// and the hub's SQL against the files on disk (pending migrations and transforms: exit 1, needs
/// attention, when that is all). Creates nothing.
/// </summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var scripts = CliOptions.Scripts();
        var json = CliOptions.Json();
        var command = new Command("check", "Check a config whole: keys and values, the hub and every connector reachable, tables and grants in place, migrations and transforms deployed. Creates nothing; exit 2 if anything is wrong, 1 if only 'cdcsync migrate' is needed.") { config, scripts, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var (options, configProblems) = ConnectorConfig.BindAll(ConfigLoader.Build(parse.GetValue(config)));
            var problems = configProblems.Select(p => new ConfigProblem(p)).ToList();
            // What the config points to can only be checked once it says where that is.
            var usable = !configProblems.Any(p => p.Contains("Hub:ConnectionString", StringComparison.Ordinal) || p.StartsWith("Routes", StringComparison.Ordinal));
            DeploymentState? deployment = null;
            if (usable)
            {
                problems.AddRange(await ConfigChecker.CheckConnectivityAsync(options, ct));
                try
                {
                    deployment = await DeploymentCheck.TryGetAsync(options.Hub.ConnectionString, ScriptSet.Load(ScriptSet.Locate(parse.GetValue(scripts))), ct);
                }
                catch (Exception e) when (e is DirectoryNotFoundException or OperatorException)
                {
                    // A missing scripts folder, or a check whose header does not parse.
                    problems.Add(new ConfigProblem(e.Message));
                }
            }

            var pending = deployment is null ? [] : DeploymentCheck.Describe(deployment);
            var code = problems.Count > 0 ? ExitCodes.Error : pending.Count > 0 ? ExitCodes.Attention : ExitCodes.Ok;
            if (parse.GetValue(json))
            {
                CliJson.Write(new
                {
                    ok = code == ExitCodes.Ok,
                    problems = problems.Select(p => new { p.Message, transient = p.Kind == FailureKind.Transient }),
                    pendingScripts = deployment?.Pending ?? [],
                    connectivityChecked = usable,
                    connectors = options.Connectors.Count,
                });
                return code;
            }

            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync(problem.Kind == FailureKind.Transient ? $"error (transient; run waits for it): {problem.Message}" : $"error: {problem.Message}");
            }

            foreach (var line in pending)
            {
                Console.WriteLine($"pending: {line}");
            }

            if (problems.Count > 0)
            {
                await Console.Error.WriteLineAsync($"{problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")} found{(usable ? string.Empty : "; connectivity not checked until the hub connection string and routes are fixed")}.");
                return code;
            }

            if (pending.Count > 0)
            {
                Console.WriteLine($"needs attention: config valid and everything reachable, but the hub's SQL is behind the files on disk ({deployment!.Pending.Count} script(s) not deployed); run 'cdcsync migrate' against it (--dry-run lists the same scripts).");
                return code;
            }

            Console.WriteLine($"ok: config valid; hub and {options.Connectors.Count} connector(s) reachable with the tables and grants the routes need; migrations and transforms deployed.");
            return code;
        }));
        return command;
    }
}
