using System.CommandLine;
using CdcSync.Cli.Commands;

var root = new RootCommand("CdcSync: two-way sync between business systems through a PostgreSQL hub.");
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

var sandbox = new Command("sandbox", "Run a local sandbox of a system's API (for the demo and tests).");
// Sandbox subcommands (one line each):
sandbox.Subcommands.Add(SandboxSalesforceCommand.Create());
sandbox.Subcommands.Add(SandboxNetSuiteCommand.Create());
root.Subcommands.Add(sandbox);

var parse = root.Parse(args);
if (parse.Errors.Count > 0 && args.Length > 0)
{
    // Bad input like any other: one line naming the option and the fix, exit 2 (the library's
    // default prints the whole help, then the error, and exits 1).
    var verb = new List<string>();
    for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
    {
        verb.Insert(0, result.Parent is null ? "cdcsync" : result.Command.Name);
    }

    await Console.Error.WriteLineAsync($"error: {string.Join(" ", parse.Errors.Select(e => e.Message))} ('{string.Join(' ', verb)} --help' lists the options.)");
    return 2;
}

return await parse.InvokeAsync();
