using System.Diagnostics;
using System.Text.Json;
namespace CdcSync.Tests.Infrastructure;

/// <summary>The real <c>cdcsync</c> executable as an operator runs it, in the checkout, with only the environment given.</summary>
internal static class CliProcess
{
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?> env, params string[] args) =>
        await RunAsync(env, TimeSpan.FromMinutes(2), args);

    /// <summary>Runs a verb; one still running after <paramref name="limit"/> is killed and reported as a <see cref="TimeoutException"/> carrying its output.</summary>
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repo.Root,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        // The test's own CDCSYNC_* (CDCSYNC_TEST_DB, CDCSYNC__... overrides) must not leak into the verb.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("CDCSYNC", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }

        foreach (var (k, v) in env)
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(15));
            throw new TimeoutException($"cdcsync {string.Join(' ', args)} did not exit within {limit.TotalSeconds:F0} s\n{Tail(await stdout)}\n{Tail(await stderr)}");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(new Dictionary<string, string?>(), args);
}

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout as the one JSON document --json promises; fails the test with both streams otherwise.</summary>
    public JsonElement Json()
    {
        try
        {
            using var document = JsonDocument.Parse(Stdout);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not one JSON document ({e.Message}); exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        }
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}
