using CdcSync.Cli.Commands;
using CdcSync.Configuration;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace CdcSync.Tests.Cli;

/// <summary>How a verb reports what its host's options validation found: as any other config problem.</summary>
[Collection(ConsoleCapture.Name)]
public sealed class GuardTests
{
    [Fact]
    public async Task GuardAsync_OptionsValidationExceptionsFromAHostStart_OneLineCountingTheRestExit2()
    {
        var failure = new AggregateException(
            new OptionsValidationException("", typeof(HubOptions), ["Config key Hub:Slot: Hub:Slot must be 1-63 lower-case letters, digits or underscores (a PostgreSQL rule for slot names)."]),
            new OptionsValidationException("crm", typeof(object), ["Config key Connectors:crm:BatchSize: The field BatchSize must be between 1 and 200."]));

        var (code, stderr) = await GuardAsync(() => throw failure);

        Assert.Equal(2, code);
        Assert.Equal(
            "error: Config key Hub:Slot: Hub:Slot must be 1-63 lower-case letters, digits or underscores (a PostgreSQL rule for slot names). (and 1 more problems: 'cdcsync check --config FILE' lists them all)",
            stderr.Trim());
    }

    [Fact]
    public async Task GuardAsync_AggregateOfOtherExceptions_StillABug()
    {
        // Only options validation is the operator's; anything else keeps its trace (CliApp prints it).
        await Assert.ThrowsAsync<AggregateException>(() => GuardAsync(() => throw new AggregateException(new InvalidOperationException("bug"))));
    }

    private static async Task<(int Code, string Stderr)> GuardAsync(Func<Task<int>> action)
    {
        var error = new StringWriter();
        var stderr = Console.Error;
        Console.SetError(error);
        try
        {
            return (await CliOptions.GuardAsync(action), error.ToString());
        }
        finally
        {
            Console.SetError(stderr);
        }
    }
}
