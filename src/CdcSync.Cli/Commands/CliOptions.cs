using System.CommandLine;
using CdcSync.Hub;

namespace CdcSync.Cli.Commands;

/// <summary>Options and error handling every verb shares.</summary>
internal static class CliOptions
{
    public static Option<string?> Db() => new("--db")
    {
        Description = "Hub connection string (Host=...;Port=...;Database=...;Username=...;Password=...). Default: $CDCSYNC_DB.",
    };

    public static Option<string?> Scripts() => new("--scripts")
    {
        Description = "Folder holding migrations/ and transforms/. Default: $CDCSYNC_SCRIPTS, else the checkout you are in, else the copy next to the executable.",
    };

    public static string HubConnectionString(ParseResult parse, Option<string?> db)
    {
        var value = parse.GetValue(db);
        var source = value is null ? "CDCSYNC_DB" : "--db";
        value ??= Environment.GetEnvironmentVariable("CDCSYNC_DB");
        return HubConnection.Parse(value, source).ConnectionString;
    }

    public static string SourceOf(ParseResult parse, Option<string?> db) => parse.GetValue(db) is null ? "CDCSYNC_DB" : "--db";

    /// <summary>Runs a verb: operator errors become one line on stderr and exit code 2.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (OperatorException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        catch (Npgsql.PostgresException e) when (Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
        {
            // Grants and missing objects are the operator's to fix: one line, no stack trace.
            await Console.Error.WriteLineAsync($"error: {Resilience.FailureClassifier.Describe(e)}");
            return 2;
        }
        catch (DirectoryNotFoundException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
