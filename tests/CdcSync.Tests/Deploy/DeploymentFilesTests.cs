using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Deploy;

/// <summary>
/// The deployment files read by the tools that deploy them (scripts/check-deploy.sh), and the
/// sandbox emulation the systemd deployment test relies on: that it takes away what the unit
/// says, and that the options the unit leaves out would indeed break the worker.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class DeploymentFilesTests
{
    private static string Cdcsync => Path.Combine(AppContext.BaseDirectory, "cdcsync");

    private static string Sandbox => Path.Combine(Repo.Root, "scripts", "systemd-sandbox.py");

    private static string Unit => Path.Combine(Repo.Root, "deploy", "cdcsync.service");

    [Fact]
    public async Task CheckDeploy_ComposeFileValidUnitVerifiesAndExposureAtMost4()
    {
        var (code, output) = await RunAsync([Path.Combine(Repo.Root, "scripts", "check-deploy.sh"), Cdcsync]);

        Assert.True(code == 0, output);
        Assert.Contains("docker-compose.yml valid", output, StringComparison.Ordinal);
        Assert.Contains("systemd-analyze verify deploy/cdcsync.service: no errors", output, StringComparison.Ordinal);
        var score = decimal.Parse(Exposure().Match(output).Groups["score"].Value, CultureInfo.InvariantCulture);
        Assert.True(score <= 4.0m, output);
    }

    [Fact]
    public async Task SandboxEmulation_TakesAwayWhatTheUnitSays()
    {
        // A folder anyone may write to outside: ProtectSystem=strict makes it read-only inside.
        var open = Path.Combine(Repo.Root, "artifacts", $"sandbox-probe-{Guid.NewGuid():N}");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0x1FF);
        var probe = $"""
            id -un
            umask
            test -e /proc/meminfo && echo meminfo || echo no-meminfo
            test -e /dev/sda -o -e /dev/kmsg && echo devices || echo no-devices
            touch {open}/probe 2>/dev/null && echo system-writable || echo system-read-only
            touch /var/lib/cdcsync/probe && echo state-writable
            ls /root >/dev/null 2>&1 && echo home-visible || echo home-hidden
            unshare -n true 2>/dev/null && echo namespaces || echo no-namespaces
            /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)' 2>/dev/null && echo netlink || echo no-netlink
            /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)' && echo inet
            """;

        var (code, output) = await RunAsync([Sandbox, Unit, "--", "/bin/sh", "-c", probe]);
        Directory.Delete(open, recursive: true);

        Assert.True(code == 0, output);
        Assert.Equal(
            ["nobody", "0077", "no-meminfo", "no-devices", "system-read-only", "state-writable", "home-hidden", "no-namespaces", "no-netlink", "inet"],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Theory]
    [InlineData("--set", "MemoryDenyWriteExecute=true")]
    [InlineData("--add", "SystemCallFilter=~@resources")]
    public async Task SandboxEmulation_AnOptionTheUnitLeavesOut_StopsTheRuntime(string how, string setting)
    {
        var (code, output) = await RunAsync([Sandbox, Unit, "--", Cdcsync, "--help"]);
        Assert.True(code == 0 && output.Contains("Usage:", StringComparison.Ordinal), output);

        (code, output) = await RunAsync([Sandbox, Unit, how, setting, "--", Cdcsync, "--help"]);

        Assert.True(code != 0 && !output.Contains("Usage:", StringComparison.Ordinal), $"{setting} did not stop the runtime:\n{output}");
    }

    [GeneratedRegex(@"exposure (?<score>\d+\.\d+) \(at most 4\.0\)")]
    private static partial Regex Exposure();

    private static async Task<(int Code, string Output)> RunAsync(IReadOnlyList<string> command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
