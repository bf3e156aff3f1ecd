using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace CdcSync.Tests.Resilience;

/// <summary>
/// A PostgreSQL cluster of the test's own (initdb + pg_ctl, as the postgres user when run as root),
/// for tests that stop and restart a server: the shared test server must stay up for the others.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly string _dir;
    private readonly string _bin;

    private TestCluster(string dir, string bin, int port)
    {
        _dir = dir;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The server's self-signed certificate: the right root certificate to verify it with.</summary>
    public string ServerCertificate => Path.Combine(_dir, "server.crt");

    /// <summary>Another self-signed certificate: a wrong root certificate for this server.</summary>
    public string OtherCertificate => Path.Combine(_dir, "other.crt");

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username=postgres;Timeout=5";

    /// <summary>With <paramref name="tls"/>, the server has a self-signed certificate (<see cref="ServerCertificate"/>) for 127.0.0.1.</summary>
    public static async Task<TestCluster> StartAsync(string name, bool tls = false)
    {
        var bin = FindBin();
        // Short: the server's socket path must fit in 107 bytes.
        var dir = Path.Combine(Path.GetTempPath(), "cdcsync-clusters", name.Length > 24 ? name[..16] + "_" + name.Aggregate(17u, (h, c) => unchecked((h * 31) + c)) : name);
        if (Directory.Exists(dir))
        {
            await RunAsync(AsOwner(Path.Combine(bin, "pg_ctl"), "-D", Path.Combine(dir, "data"), "stop", "-m", "immediate"), check: false);
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        if (Environment.UserName == "root")
        {
            await RunAsync(["chown", "postgres:", dir]);
        }

        var port = FreePort();
        var cluster = new TestCluster(dir, bin, port);
        await RunAsync(AsOwner(Path.Combine(bin, "initdb"), "-D", cluster.Data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"));
        await File.AppendAllTextAsync(Path.Combine(cluster.Data, "postgresql.conf"), $"""

            listen_addresses = '127.0.0.1'
            port = {port}
            unix_socket_directories = '{dir}'
            wal_level = logical
            max_replication_slots = 16
            max_wal_senders = 16
            shared_buffers = 32MB
            fsync = off

            """);
        if (tls)
        {
            foreach (var (key, cert) in new[] { ("server.key", "server.crt"), ("other.key", "other.crt") })
            {
                await RunAsync(AsOwner("openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", Path.Combine(dir, key), "-out", Path.Combine(dir, cert)));
            }

            await File.AppendAllTextAsync(Path.Combine(cluster.Data, "postgresql.conf"), $"""
                ssl = on
                ssl_cert_file = '{Path.Combine(dir, "server.crt")}'
                ssl_key_file = '{Path.Combine(dir, "server.key")}'

                """);
        }

        await cluster.StartAgainAsync();
        return cluster;
    }

    private string Data => Path.Combine(_dir, "data");

    /// <summary>Starts the stopped server; returns when it accepts connections.</summary>
    public Task StartAgainAsync() =>
        RunAsync(AsOwner(Path.Combine(_bin, "pg_ctl"), "-D", Data, "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60", "start"));

    /// <summary>pg_ctl stop with the given mode (immediate, fast, smart).</summary>
    public Task StopAsync(string mode) =>
        RunAsync(AsOwner(Path.Combine(_bin, "pg_ctl"), "-D", Data, "-w", "-t", "60", "stop", "-m", mode));

    /// <summary>pg_ctl restart; returns how long it took (reported, never asserted tightly).</summary>
    public async Task<TimeSpan> RestartAsync(string mode, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        await RunAsync(AsOwner(Path.Combine(_bin, "pg_ctl"), "-D", Data, "-l", Path.Combine(_dir, "server.log"), "-w", "-t", ((int)timeout.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture), "restart", "-m", mode));
        return watch.Elapsed;
    }

    public async Task ExecuteAsync(string sql, string database = "postgres")
    {
        await using var conn = new NpgsqlConnection(ConnectionString(database) + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 120 };
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await RunAsync(AsOwner(Path.Combine(_bin, "pg_ctl"), "-D", Data, "-w", "stop", "-m", "immediate"), check: false);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the next run to clear.
        }
    }

    private static string[] AsOwner(params string[] command) =>
        Environment.UserName == "root" ? ["runuser", "-u", "postgres", "--", .. command] : command;

    private static async Task RunAsync(string[] command, bool check = true)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)} exited {process.ExitCode}: {await stdout} {await stderr}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string FindBin()
    {
        foreach (var candidate in Directory.GetDirectories("/usr/lib/postgresql").OrderDescending())
        {
            var bin = Path.Combine(candidate, "bin");
            if (File.Exists(Path.Combine(bin, "pg_ctl")))
            {
                return bin;
            }
        }

        throw new InvalidOperationException("PostgreSQL server binaries (pg_ctl, initdb) not found under /usr/lib/postgresql; install postgresql-15.");
    }
}
