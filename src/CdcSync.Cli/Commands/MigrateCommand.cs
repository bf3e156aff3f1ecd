using System.CommandLine;

namespace CdcSync.Cli.Commands;

internal static class MigrateCommand
{
    public static Command Create() => new("migrate", "in progress");
}
