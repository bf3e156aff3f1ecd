namespace CdcSync.Tests.Infrastructure;

/// <summary>
/// Tests that swap <see cref="Console.Out"/> to read a CLI verb's output: the console is one per
/// process, so they run alone, after the parallel tests, or they would read each other's lines.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCapture
{
    public const string Name = "Console capture";
}
