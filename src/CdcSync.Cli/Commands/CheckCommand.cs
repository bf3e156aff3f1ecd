using System.CommandLine;
using CdcSync.Configuration;
using CdcSync.Resilience;

namespace CdcSync.Cli.Commands;

/// <summary>`cdcsync check --config FILE`: every config, connectivity and grant problem at once, nothing created.</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var command = new Command("check", "Check a config whole: keys and values, the hub and every connector reachable, tables and grants in place. Creates nothing; exit 2 if anything is wrong.") { config };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var (options, configProblems) = ConfigLoader.BindAll(ConfigLoader.Build(parse.GetValue(config)));
            var problems = configProblems.Select(p => new ConfigProblem(p)).ToList();
            // What the config points to can only be checked once it says where that is.
            var usable = !configProblems.Any(p => p.Contains("Hub:ConnectionString", StringComparison.Ordinal) || p.StartsWith("Routes", StringComparison.Ordinal));
            if (usable)
            {
                problems.AddRange(await ConfigChecker.CheckConnectivityAsync(options, ct));
            }

            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync(problem.Kind == FailureKind.Transient ? $"error (transient; run waits for it): {problem.Message}" : $"error: {problem.Message}");
            }

            if (problems.Count > 0)
            {
                await Console.Error.WriteLineAsync($"{problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")} found{(usable ? string.Empty : "; connectivity not checked until the hub connection string and routes are fixed")}.");
                return 2;
            }

            await Console.Out.WriteLineAsync($"ok: config valid; hub and {options.Connectors.Count} connector(s) reachable with the tables and grants the routes need.");
            return 0;
        }));
        return command;
    }
}
