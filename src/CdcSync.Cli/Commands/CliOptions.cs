using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Resilience;
using Npgsql;

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

    /// <summary>The pipeline config every verb that needs connectors takes.</summary>
    public static Option<string> Config()
    {
        var option = new Option<string>("--config")
        {
            Description = "Pipeline config (JSON). Values may use ${ENV_VAR} or ${ENV_VAR:-default}; CDCSYNC__Section__Key environment variables override keys.",
            Required = true,
        };
        return MustBeFile(option);
    }

    /// <summary>
    /// A folder given where a file belongs would otherwise be reported as "does not exist", which
    /// sends the operator looking for the wrong mistake.
    /// </summary>
    public static Option<T> MustBeFile<T>(Option<T> option)
    {
        option.Validators.Add(result =>
        {
            if (ValueOf<T>(result) is string path && Directory.Exists(path))
            {
                result.AddError($"{option.Name} {path} is a directory; pass the path of a JSON config file (see examples/).");
            }
        });
        return option;
    }

    /// <summary>Rejects values below <paramref name="minimum"/> at parse time, naming the option (exit 2).</summary>
    public static Option<T> AtLeast<T>(Option<T> option, T minimum, string? unit = null)
        where T : IComparable<T>
    {
        option.Validators.Add(result =>
        {
            var value = ValueOf<T>(result);
            if (value is not null && value.CompareTo(minimum) < 0)
            {
                result.AddError($"{option.Name} {value} is too small; use {minimum}{unit} or more.");
            }
        });
        return option;
    }

    /// <summary>A TCP port to listen on: 1-65535, or 0 for a free one the system picks.</summary>
    public static Option<int> Port(int defaultPort)
    {
        var option = new Option<int>("--port")
        {
            Description = $"TCP port on 127.0.0.1, 1-65535 (0 picks a free one). Default: {defaultPort}.",
            DefaultValueFactory = _ => defaultPort,
        };
        option.Validators.Add(result =>
        {
            var port = ValueOf<int>(result);
            if (port is < 0 or > 65535)
            {
                result.AddError($"--port {port} is not a TCP port; use 1 to 65535, or 0 for a free one.");
            }
        });
        return option;
    }

    /// <summary>
    /// The option's value for a validator, or default when the text did not convert: validators
    /// run even then, and the conversion error is already reported on its own line.
    /// </summary>
    private static T? ValueOf<T>(System.CommandLine.Parsing.OptionResult result)
    {
        try
        {
            return result.GetValueOrDefault<T>();
        }
        catch (InvalidOperationException)
        {
            return default;
        }
    }

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON document on stdout (camelCase properties) for scripts; errors still go to stderr." };

    public static string HubConnectionString(ParseResult parse, Option<string?> db)
    {
        var value = parse.GetValue(db);
        var source = value is null ? "CDCSYNC_DB" : "--db";
        value ??= Environment.GetEnvironmentVariable("CDCSYNC_DB");
        return HubConnection.Parse(value, source).ConnectionString;
    }

    public static string SourceOf(ParseResult parse, Option<string?> db) => parse.GetValue(db) is null ? "CDCSYNC_DB" : "--db";

    /// <summary>
    /// Runs a verb: everything an operator can cause (a bad or unreachable hub, a missing file, a
    /// server error) becomes one line on stderr and exit code 2. Anything else is a bug and reaches
    /// <see cref="CliApp.RunAsync"/>, which prints its trace.
    /// </summary>
    public static async Task<int> GuardAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (OperatorException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return ExitCodes.Error;
        }
        catch (Exception e) when (ConfigLoader.Explain(e) is { } problem)
        {
            // A host's ValidateOnStart (or IOptions.Value) found a bad config: the same line as any other config problem.
            await Console.Error.WriteLineAsync($"error: {problem.Message}");
            return ExitCodes.Error;
        }
        catch (PostgresException e) when (FailureClassifier.Classify(e) == FailureKind.Permanent)
        {
            // Grants and missing objects are the operator's to fix: one line, no stack trace.
            await Console.Error.WriteLineAsync($"error: {FailureClassifier.Describe(e)}");
            return ExitCodes.Error;
        }
        catch (NpgsqlException e)
        {
            // The server went away, restarted or refused for a while (57P01, 53300, a reset
            // connection) after the verb had connected: the operator's to wait for, not a bug.
            await Console.Error.WriteLineAsync($"error: PostgreSQL failed during the command: {FailureClassifier.Describe(e)}; check the server and run the command again.");
            if (Environment.GetEnvironmentVariable("CDCSYNC_TRACE") == "1")
            {
                // For a support case: where in CdcSync it happened (opt-in; never by default).
                await Console.Error.WriteLineAsync(e.ToString());
            }

            return ExitCodes.Error;
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}{(e is UnauthorizedAccessException ? "; check the file's permissions for this user." : string.Empty)}");
            return ExitCodes.Error;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return ExitCodes.Cancelled;
        }
    }
}

/// <summary>The one way verbs print <c>--json</c>: System.Text.Json, camelCase, one document on stdout.</summary>
internal static class CliJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        // Stdout for scripts, never embedded in HTML: keep quotes and non-ASCII readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static void Write<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Options));
}
