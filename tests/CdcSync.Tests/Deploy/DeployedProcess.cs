using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace CdcSync.Tests.Deploy;

/// <summary>
/// A process started the way a deployment starts it: a command line and exactly the environment
/// the deployment file gives (plus PATH and HOME, which the service manager provides), with its
/// output collected for the assertions and for a failure's message.
/// </summary>
internal sealed class DeployedProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DeployedProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static DeployedProcess Start(string name, IReadOnlyList<string> command, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        var info = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        // Nothing leaks in from the test's own environment (CDCSYNC_DB, CDCSYNC__*): only what the
        // deployment file sets, and what any service manager or container runtime provides.
        var inherited = info.Environment.Where(e => e.Key is "PATH" or "HOME" or "DOTNET_ROOT" or "DOTNET_CLI_HOME").ToList();
        info.Environment.Clear();
        foreach (var (key, value) in inherited.Concat(environment.Select(e => KeyValuePair.Create(e.Key, (string?)e.Value))))
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var deployed = new DeployedProcess(name, process);
        process.OutputDataReceived += (_, e) => deployed.Append("out", e.Data);
        process.ErrorDataReceived += (_, e) => deployed.Append("err", e.Data);
        Assert.True(process.Start(), $"could not start {name}: {string.Join(' ', command)}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return deployed;
    }

    /// <summary>The lines the process wrote to stdout so far.</summary>
    public IReadOnlyList<string> Stdout()
    {
        lock (_output)
        {
            return _output.ToString().Split('\n').Where(l => l.StartsWith("out| ", StringComparison.Ordinal)).Select(l => l[5..]).ToList();
        }
    }

    public string Log()
    {
        lock (_output)
        {
            var text = _output.ToString();
            return $"--- {Name} ---\n" + (text.Length > 8000 ? "...\n" + text[^8000..] : text);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{Name} did not exit within {timeout}.\n{Log()}");
        }

        // Let the asynchronous readers flush the last lines.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, as systemd's KillSignal= and docker stop send it, then the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false }))
        {
            Assert.NotNull(kill);
            await kill.WaitForExitAsync();
        }

        return await WaitForExitAsync(timeout);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    /// <summary>A TCP port on loopback that nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Append(string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Append(stream).Append("| ").Append(line).Append('\n');
        }
    }
}
