using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using CdcSync.Cli.Commands;
using CdcSync.Configuration;

namespace CdcSync.Cli;

/// <summary>
/// The <c>cdcsync</c> command tree and its exit codes (<see cref="ExitCodes"/>). Usage errors
/// exit 2, not System.CommandLine's 1, because 1 is what <c>status</c> returns for "needs
/// attention": a monitor must be able to tell a typo in its command from lag.
/// </summary>
internal static class CliApp
{
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("CdcSync: two-way sync between business systems through a PostgreSQL hub. Exit codes: 0 ok, 1 needs attention or failures found, 2 usage error or error.");
        root.Subcommands.Add(MigrateCommand.Create());
        root.Subcommands.Add(TransformsCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(CheckCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(StatusCommand.Create());
        root.Subcommands.Add(SlotsCommand.Create());
        root.Subcommands.Add(ResyncCommand.Create());
        root.Subcommands.Add(DeadLettersCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(ConflictsCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        root.Subcommands.Add(OnboardCommand.Create());
        root.Subcommands.Add(MatchesCommand.Create());
        root.Subcommands.Add(ChecksCommand.Create());
        root.Subcommands.Add(AlertsCommand.Create());
        root.Subcommands.Add(ReconcileCommand.Create());
        root.Subcommands.Add(ConsoleCommand.Create());

        var sandbox = new Command("sandbox", "Run a local sandbox of a system's API (for the demo and tests).");
        sandbox.Subcommands.Add(SandboxSalesforceCommand.Create());
        sandbox.Subcommands.Add(SandboxNetSuiteCommand.Create());
        root.Subcommands.Add(sandbox);
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var parse = CreateRoot().Parse(args);
        // --help and --version clear parse errors; anything else with errors is a usage error.
        if (parse.Action is ParseErrorAction)
        {
            await WriteUsageErrorsAsync(parse, Console.Error);
            return ExitCodes.Error;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Everything an operator can cause is caught by CliOptions.GuardAsync as one line;
            // what reaches here is a bug, and its stack trace is what a bug report needs.
            await Console.Error.WriteLineAsync($"error: unexpected {e.GetType().Name}: {e.Message} (a bug in cdcsync; please report it with the trace below)");
            await Console.Error.WriteLineAsync(e.ToString());
            return ExitCodes.Error;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return ExitCodes.Cancelled;
        }
    }

    /// <summary>One line per error, a suggestion for a mistyped option or verb, and where the usage is.</summary>
    internal static async Task WriteUsageErrorsAsync(ParseResult parse, TextWriter error)
    {
        var command = parse.CommandResult.Command;
        var unmatched = parse.UnmatchedTokens.ToHashSet(StringComparer.Ordinal);
        // A mistyped verb ("cdcsync stauts") also leaves its parent without a verb; that second
        // error ("Required command was not provided") says the same thing less helpfully.
        var mistypedVerb = unmatched.Count > 0 && command.Subcommands.Count > 0;
        foreach (var e in parse.Errors)
        {
            var token = unmatched.FirstOrDefault(t => e.Message.Contains($"'{t}'", StringComparison.Ordinal));
            if (token is null && mistypedVerb && e.SymbolResult == parse.CommandResult)
            {
                continue;
            }

            var hint = token is null ? string.Empty : Suggest(command, token);
            await error.WriteLineAsync($"error: {(hint.Length > 0 ? e.Message.TrimEnd('.') : e.Message)}{hint}");
        }

        await error.WriteLineAsync($"usage: see '{CommandPath(parse.CommandResult)} --help'.");
    }

    private static string Suggest(Command command, string token)
    {
        // A value with ';' or a space split by the shell: the usual cause is an unquoted connection string.
        if (token.Contains('=', StringComparison.Ordinal) && !token.StartsWith('-'))
        {
            return " (a value with spaces or ';' must be quoted, e.g. --db 'Host=...;SSL Mode=Require')";
        }

        var names = token.StartsWith('-')
            ? command.Options.SelectMany(o => o.Aliases.Prepend(o.Name))
            : command.Subcommands.Select(c => c.Name);
        return DidYouMean.Closest(token, names) is { } best ? $"; did you mean {best}?" : string.Empty;
    }

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
        {
            if (r is CommandResult c)
            {
                names.Add(c.Parent is null ? "cdcsync" : c.Command.Name);
            }
        }

        names.Reverse();
        return string.Join(' ', names);
    }
}

/// <summary>What <c>cdcsync</c> exits with, for every verb.</summary>
internal static class ExitCodes
{
    /// <summary>Done, healthy, nothing found.</summary>
    public const int Ok = 0;

    /// <summary><c>status</c>: needs attention; <c>check</c>, <c>transforms test</c>: failures or pending work found; a request still queued.</summary>
    public const int Attention = 1;

    /// <summary>A usage error (unknown option, missing or bad value) or an error (unreachable, bad config, nothing by that name).</summary>
    public const int Error = 2;

    /// <summary>Ctrl-C.</summary>
    public const int Cancelled = 130;
}
