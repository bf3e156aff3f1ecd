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

return await root.Parse(args).InvokeAsync();
