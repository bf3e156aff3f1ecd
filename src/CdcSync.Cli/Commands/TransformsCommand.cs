using System.CommandLine;

namespace CdcSync.Cli.Commands;

internal static class TransformsCommand
{
    public static Command Create() => new("transforms", "in progress");
}
