using System.Diagnostics;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Sandboxes.Salesforce;

/// <summary>
/// Drives the Salesforce sandbox with jsforce, a Salesforce client library written by others, so the
/// sandbox cannot drift into agreeing with our own connector's bugs. The test installs the client
/// itself (<c>npm ci</c> in tests/clients/jsforce, versions pinned by its package-lock.json) and
/// fails, never skips, when Node.js or npm is missing.
/// </summary>
public sealed class SalesforceClientLibraryTests
{
    private const int EverydayCalls = 32;

    [Fact]
    public async Task Jsforce_EverydayCalls_AllSucceed()
    {
        var client = Path.Combine(Repo.Root, "tests", "clients", "jsforce");
        await SalesforceClientLibraryTests.InstallAsync(client);
        await using var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);

        var output = await RunAsync("node", ["everyday.mjs"], client, new()
        {
            ["SF_URL"] = sandbox.BaseUrl.ToString().TrimEnd('/'),
            ["SF_CLIENT_ID"] = sandbox.Options.ClientId,
            ["SF_CLIENT_SECRET"] = sandbox.Options.ClientSecret,
            ["SF_REFRESH_TOKEN"] = sandbox.Options.RefreshToken,
        });

        var calls = JsonNode.Parse(output.Trim().Split('\n')[^1])!["calls"]!.AsArray();
        var failed = calls.Where(c => !c!["ok"]!.GetValue<bool>()).Select(c => $"{c!["call"]}: {c["error"]}").ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {calls.Count} jsforce calls failed:\n" + string.Join("\n", failed));
        Assert.Equal(EverydayCalls, calls.Count);

        // What jsforce saw is what the sandbox holds.
        Assert.Contains(sandbox.Records("Opportunity"), o => o["StageName"]!.GetValue<string>() == "Prospecting" && o["Probability"]!.GetValue<double>() == 10);
        Assert.Equal(303, sandbox.Records("Account", includeDeleted: true).Count(a => a["IsDeleted"]!.GetValue<bool>()));
        // client credentials once, then one refresh when the stale session was refused
        Assert.Equal(2, sandbox.Options.TokenRequestCount);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task>> Installs = new(StringComparer.Ordinal);

    /// <summary>
    /// `npm ci` in a client's folder, once per test run: the test classes that share a folder run in
    /// parallel, and two `npm ci` in one folder remove each other's node_modules.
    /// </summary>
    internal static Task InstallAsync(string client) =>
        Installs.GetOrAdd(client, folder => new Lazy<Task>(() => RunAsync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], folder, []))).Value;

    internal static async Task<string> RunAsync(string file, string[] args, string workingDirectory, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"'{file}' could not be started ({e.Message}): install Node.js 20+ with npm to run the client-library tests.", e);
        }

        using (process)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {process.ExitCode}:\n{await stderr}\n{await stdout}");
            return await stdout;
        }
    }
}
