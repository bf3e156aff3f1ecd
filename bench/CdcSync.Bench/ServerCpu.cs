using System.Globalization;

namespace CdcSync.Bench;

/// <summary>CPU seconds the server's processes spent during one measured run.</summary>
internal sealed record CpuSplit(double Walsender, double ApplyWorker, double TargetBackends)
{
    public string Describe(bool native) => native
        ? string.Create(CultureInfo.InvariantCulture, $"walsender {Walsender:F2} s, apply worker {ApplyWorker:F2} s")
        : string.Create(CultureInfo.InvariantCulture, $"walsender {Walsender:F2} s, target backends {TargetBackends:F2} s");
}

/// <summary>
/// Samples the CPU time of the PostgreSQL server's processes on this host from /proc while a run
/// lasts (every 50 ms; a process that exits loses at most its last 50 ms): the walsender feeding
/// the run, the subscription's apply worker, the backends of the target database. On 2 cores
/// these and the client share the machine, so their CPU is what bounds any client: no client of a
/// walsender can drain a backlog in less time than that walsender needs to decode and send it.
/// Works only when the server runs on this host (bench/run.sh's throwaway cluster does); elsewhere
/// it finds no process and reports zeros.
/// </summary>
internal sealed class ServerCpu : IAsyncDisposable
{
    // USER_HZ: the unit of /proc/PID/stat's times, 100 on every Linux ABI.
    private const double TicksPerSecond = 100;

    private readonly Dictionary<int, Sample> _seen = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _polling;

    private ServerCpu()
    {
        foreach (var (pid, title, seconds) in Scan())
        {
            _seen[pid] = new Sample(title, seconds, seconds);
        }

        _polling = PollAsync();
    }

    public static ServerCpu Start() => new();

    /// <summary>Stops sampling and splits what the processes spent since <see cref="Start"/>.</summary>
    public async Task<CpuSplit> StopAsync(string targetDatabase)
    {
        await _stop.CancelAsync();
        await _polling;
        Update();
        double walsender = 0, apply = 0, target = 0;
        foreach (var sample in _seen.Values)
        {
            var spent = sample.Last - sample.First;
            var words = sample.Title.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length > 1 && words[1] == "walsender")
            {
                walsender += spent;
            }
            else if (sample.Title.Contains("logical replication", StringComparison.Ordinal) && !sample.Title.Contains("launcher", StringComparison.Ordinal))
            {
                apply += spent;
            }
            else if (words.Length > 2 && words[2] == targetDatabase)
            {
                target += spent;
            }
        }

        return new CpuSplit(walsender, apply, target);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _polling;
        _stop.Dispose();
    }

    private async Task PollAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Update();
            try
            {
                await Task.Delay(50, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Update()
    {
        foreach (var (pid, title, seconds) in Scan())
        {
            // A process started during the run spent nothing before it.
            _seen[pid] = _seen.TryGetValue(pid, out var known) && known.Title == title
                ? known with { Last = seconds }
                : new Sample(title, 0, seconds);
        }
    }

    private static IEnumerable<(int Pid, string Title, double Seconds)> Scan()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string title, stat;
            try
            {
                title = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                if (!title.StartsWith("postgres: ", StringComparison.Ordinal))
                {
                    continue;
                }

                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue; // exited while read
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            // Fields after the command name in parentheses: state is the first, utime the 12th, stime the 13th.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            // The title ends with the backend's state (idle, COPY, ...): keep the words before it.
            yield return (pid, string.Join(' ', title.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(4)), ticks / TicksPerSecond);
        }
    }

    private sealed record Sample(string Title, double First, double Last);
}
