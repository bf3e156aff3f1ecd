using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Cli;

/// <summary>Bad input to the real executable: one line on stderr naming the thing and the fix, no stack trace, exit 2.</summary>
public sealed class BadInputTests
{
    [Theory]
    [InlineData("status", "--max-lag", "10x")]
    [InlineData("replay --config c.json --connector t --from-lsn 0/1", "--wait", "5 m")]
    public async Task DurationOption_NotADuration_OneLineExit2(string verb, string option, string value)
    {
        var (code, stderr) = await RunAsync([.. verb.Split(' '), option, value]);

        Assert.Equal(2, code);
        // One error line, then where the usage is (every usage error ends so).
        Assert.Equal(["error", "usage"], stderr.Trim().Split('\n').Select(l => l.Split(':')[0]));
        Assert.StartsWith($"error: {option} is '{value}'; use a duration like 30s, 5m, 1h or 00:05:00", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("System.TimeSpan", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_ConfigWithAJsonSyntaxError_LineAndColumnExit2()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, "{\n  \"Hub\": {\n    \"Slot\": \"x\"\n    \"Publication\": \"y\"\n  }\n}\n");

        var (code, stderr) = await RunAsync("check", "--config", path);

        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith($"error: config {path}: invalid JSON at line 4, column 5: ", stderr, StringComparison.Ordinal);
        Assert.EndsWith("; fix the file.", stderr.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_BadDurationInConfigThroughTheEnvironment_NamesTheKeyExit2()
    {
        var (code, stderr) = await RunAsync(
            new Dictionary<string, string?> { ["CDCSYNC__Hub__HeartbeatInterval"] = "10x", ["CDCSYNC_DB"] = "Host=127.0.0.1;Database=x;Username=u;Password=p", ["CDCSYNC_TARGET_DB"] = "Host=127.0.0.1" },
            "run", "--config", Path.Combine(Repo.Root, "examples", "pgbench-to-postgres.json"));

        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("error: Config key Hub:HeartbeatInterval is '10x'; use a duration like 30s, 5m, 1h or 00:05:00", stderr, StringComparison.Ordinal);
    }

    private static Task<(int Code, string Stderr)> RunAsync(params string[] args) => RunAsync(new Dictionary<string, string?>(), args);

    private static async Task<(int Code, string Stderr)> RunAsync(IReadOnlyDictionary<string, string?> env, params string[] args)
    {
        var result = await CliProcess.RunAsync(env, TimeSpan.FromMinutes(1), args);
        return (result.ExitCode, result.Stderr);
    }
}
