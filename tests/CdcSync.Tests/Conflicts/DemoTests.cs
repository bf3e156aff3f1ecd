using System.Diagnostics;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Conflicts;

/// <summary><c>cdcsync demo</c> as a new user runs it: the real executable, twice in a row.</summary>
public sealed class DemoTests
{
    [Fact]
    public async Task Demo_RunTwiceInARow_ShowsTheLoopAndTheConflict_AndLeavesNothingBehind()
    {
        var admin = await TestPostgres.AdminConnectionStringAsync();
        for (var run = 1; run <= 2; run++)
        {
            var (code, stdout, stderr) = await RunDemoAsync(admin);
            Assert.True(code == 0, $"run {run}: exit {code}\n{stdout}\n{stderr}");
            Assert.Contains("-> NetSuite customer", stdout);
            Assert.Contains("Phone = 4155550142", stdout);
            Assert.Matches("policy last_write_wins: (kept|took) netsuite", stdout);
            Assert.Contains("both systems hold 4155550188", stdout);
            Assert.DoesNotContain("Password=", stdout + stderr, StringComparison.OrdinalIgnoreCase);
        }

        await using var conn = new NpgsqlConnection(admin);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname LIKE 'cdcsync_demo_%'", conn);
        Assert.Equal(0L, (long)(await cmd.ExecuteScalarAsync())!);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunDemoAsync(string admin)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repo.Root,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"), "demo", "--accounts", "2", "--scripts", Repo.Root })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["CDCSYNC_DB"] = admin;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
