using System.Diagnostics;
using System.Text;

namespace CdcSync.Tests.Pipeline;

/// <summary>
/// One <c>cdcsync run --config ...</c> child process (the CLI build output next to the tests), with
/// its stdout and stderr collected into a log shared by every run of a test.
/// </summary>
internal sealed class CrashWorker : IDisposable
{
    private readonly Process _process;
    private readonly CrashLog _log;

    private CrashWorker(Process process, CrashLog log, int run)
    {
        _process = process;
        _log = log;
        Run = run;
    }

    public int Run { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static CrashWorker Start(string configPath, string workingDirectory, CrashLog log, int run)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "cdcsync.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the test project must reference src/CdcSync.Cli so its build output lands next to the tests.");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet))
        {
            dotnet = "dotnet";
        }

        var info = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("run");
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(configPath);

        // The config file is the whole truth: no CDCSYNC__* override leaks in from the test's environment.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("CDCSYNC__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(key);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                log.Append(run, "out", e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                log.Append(run, "err", e.Data);
            }
        };
        Assert.True(process.Start(), "could not start the cdcsync worker");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        log.Append(run, "test", $"started worker pid {process.Id}");
        return new CrashWorker(process, log, run);
    }

    /// <summary>SIGKILL (what Process.Kill sends on Linux), then wait for the process to be gone.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        _log.Append(Run, "test", "killed with SIGKILL");
    }

    /// <summary>SIGTERM, then wait up to <paramref name="timeout"/> for a clean exit; returns the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        _log.Append(Run, "test", "sending SIGTERM");
        using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false }))
        {
            Assert.NotNull(kill);
            await kill.WaitForExitAsync();
            Assert.True(kill.ExitCode == 0, $"kill -TERM {_process.Id} failed with exit code {kill.ExitCode}");
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the worker did not exit within {timeout} of SIGTERM.\n{_log.Tail()}");
        }

        // Let the asynchronous readers flush the last lines.
        _process.WaitForExit();
        _log.Append(Run, "test", $"exited with code {_process.ExitCode}");
        return _process.ExitCode;
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
}

/// <summary>Everything the worker runs printed, in order, tagged with the run number.</summary>
internal sealed class CrashLog
{
    private readonly StringBuilder _text = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public void Append(int run, string stream, string line)
    {
        lock (_text)
        {
            _text.Append(System.Globalization.CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,7:F2}s w{run} {stream}] {line}\n");
        }
    }

    public string All()
    {
        lock (_text)
        {
            return _text.ToString();
        }
    }

    public string Tail(int chars = 12_000)
    {
        var all = All();
        return all.Length <= chars ? "worker log:\n" + all : "worker log (tail):\n..." + all[^chars..];
    }

    public bool Contains(int run, string text)
    {
        var tag = $" w{run} ";
        return All().Split('\n').Any(l => l.Contains(tag, StringComparison.Ordinal) && l.Contains(text, StringComparison.Ordinal));
    }
}
