using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Bench;

internal sealed class Settings
{
    /// <summary>Row changes in the backlog (pgbench's tpcb-like transaction makes 4: 3 updates, 1 insert).</summary>
    public int Rows { get; set; } = 200_000;

    public int Reps { get; set; } = 3;

    public int Scale { get; set; } = 1;

    public int Clients { get; set; } = 2;

    /// <summary>tpcb: pgbench's tpcb-like script (3 updates + 1 insert); insert: 100-row INSERTs into pgbench_history.</summary>
    public string Workload { get; set; } = "tpcb";

    /// <summary>Unmeasured repetitions run first (smaller), so caches, JIT'd harness code and the file system are warm.</summary>
    public int Warmup { get; set; } = 1;

    /// <summary>Records written to the NetSuite sandbox per HTTP repetition.</summary>
    public int NetSuiteRecords { get; set; } = 500;

    /// <summary>Records written to the Salesforce sandbox per HTTP repetition.</summary>
    public int SalesforceRecords { get; set; } = 20_000;

    /// <summary>Latency the sandboxes add to every request (POST /_sandbox/faults {"latencyMs"}).</summary>
    public int LatencyMs { get; set; } = 150;

    public bool Http { get; set; }

    public string Repo { get; set; } = "";

    public string? JsonPath { get; set; }

    public bool Reader { get; set; }

    public bool Connector { get; set; }

    public string HubConnectionString { get; set; } = "";
}

/// <summary>Small helpers around a PostgreSQL server: SQL, libpq connection strings and client tools.</summary>
internal static class Pg
{
    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database }.ConnectionString;

    /// <summary>Setup connections are not pooled: DROP DATABASE ... WITH (FORCE) would leave dead ones in the pool.</summary>
    public static string Unpooled(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;

    /// <summary>The same server in libpq keyword form (pg_recvlogical -d, CREATE SUBSCRIPTION CONNECTION).</summary>
    public static string LibpqConninfo(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        static string Q(string? v) => "'" + (v ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
        return $"host={Q(b.Host)} port={b.Port} dbname={Q(b.Database)} user={Q(b.Username)} password={Q(b.Password)}";
    }

    /// <summary>PGHOST etc. for pgbench and friends.</summary>
    public static Dictionary<string, string> LibpqEnv(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return new Dictionary<string, string>
        {
            ["PGHOST"] = b.Host ?? "127.0.0.1",
            ["PGPORT"] = b.Port.ToString(CultureInfo.InvariantCulture),
            ["PGDATABASE"] = b.Database ?? "",
            ["PGUSER"] = b.Username ?? "",
            ["PGPASSWORD"] = b.Password ?? "",
        };
    }

    public static async Task ExecAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(Unpooled(connectionString));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 0 };
        await cmd.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(Unpooled(connectionString));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 0 };
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public static Task<NpgsqlLogSequenceNumber> CurrentLsnAsync(string connectionString) =>
        ScalarAsync<NpgsqlLogSequenceNumber>(connectionString, "SELECT pg_current_wal_lsn()");

    /// <summary>Runs a client tool to completion; throws with its output when it fails.</summary>
    public static async Task<(TimeSpan Elapsed, string Stdout)> RunToolAsync(string file, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        watch.Stop();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} exited {process.ExitCode}: {await stderr}{await stdout}");
        }

        return (watch.Elapsed, await stdout);
    }

    /// <summary>The peak resident set (VmHWM) of this process, in bytes.</summary>
    public static long PeakRss()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        return Environment.WorkingSet;
    }
}

/// <summary>Runs this executable again with other arguments and waits for its "DONE" line.</summary>
internal static class Self
{
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var host = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(Self).Assembly.Location);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return psi;
    }

    /// <summary>Starts the child and returns the time from start to its "DONE ..." line, and that line's fields.</summary>
    public static async Task<(TimeSpan Elapsed, string[] Fields)> RunUntilDoneAsync(ProcessStartInfo psi, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the child");
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var line = await process.StandardOutput.ReadLineAsync(cts.Token);
                if (line is null)
                {
                    await process.WaitForExitAsync(cts.Token);
                    throw new InvalidOperationException($"child exited {process.ExitCode} without reporting DONE");
                }

                if (line.StartsWith("DONE ", StringComparison.Ordinal))
                {
                    var elapsed = watch.Elapsed;
                    var fields = line[5..].Split(' ');
                    await process.WaitForExitAsync(cts.Token);
                    return (elapsed, fields);
                }

                Console.WriteLine($"    child: {line}");
            }
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"child did not finish within {timeout}");
        }
    }
}
