using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Npgsql;
using YamlDotNet.RepresentationModel;

namespace CdcSync.Tests.Deploy;

/// <summary>
/// The shipped deployment files, run as far as a machine without a Docker engine or a running
/// systemd allows: each service's command line and environment are read from the file itself and
/// run with this checkout's build, against the test PostgreSQL, until /readyz answers 200. Only
/// what must point at the test's own servers is rewritten: hosts and ports, the installed paths,
/// and the slot (so tests do not share one).
/// </summary>
public sealed partial class DeploymentTests
{
    // Ready means streaming, and creating the slot waits for every open transaction on the shared test server.
    private static readonly TimeSpan ReadyTimeout = CdcSync.Tests.Pipeline.TestPipeline.StreamingTimeout;

    /// <summary>What /app holds in the image (Dockerfile: the publish output, and examples/).</summary>
    private static string Bin => AppContext.BaseDirectory.TrimEnd('/');

    [Fact]
    public async Task Compose_WorkerWithItsEnvironment_MigratesRunsAndAnswersReadyz()
    {
        var compose = LoadYaml(Path.Combine(Repo.Root, "docker-compose.yml"));
        var services = Map(compose, "services");
        var entrypoint = ImageEntrypoint();
        var hub = await TestPostgres.CreateDatabaseAsync(nameof(Compose_WorkerWithItsEnvironment_MigratesRunsAndAnswersReadyz));
        var processes = new List<DeployedProcess>();
        try
        {
            // The sandboxes, each on a free port instead of its fixed one: compose port -> test port.
            var ports = new Dictionary<string, string>(StringComparer.Ordinal);
            var paths = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var name in new[] { "salesforce", "netsuite" })
            {
                var command = Strings(Map(services, name)["command"]);
                var at = command.IndexOf("--port");
                Assert.True(at >= 0, $"compose service {name} has no --port in its command");
                ports[command[at + 1]] = DeployedProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
                command[at + 1] = ports[command[at + 1]];
                // The Salesforce sandbox's Pub/Sub port and certificate file, shared with the worker through a volume.
                if (command.IndexOf("--pubsub-port") is var pubSub and >= 0)
                {
                    ports[command[pubSub + 1]] = DeployedProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
                    command[pubSub + 1] = ports[command[pubSub + 1]];
                }

                if (command.IndexOf("--pubsub-certificate") is var certificate and >= 0)
                {
                    paths[command[certificate + 1]] = Path.Combine(Path.GetTempPath(), $"cdcsync-compose-pubsub-{Guid.NewGuid():N}.pem");
                    command[certificate + 1] = paths[command[certificate + 1]];
                }
                processes.Add(DeployedProcess.Start(name, [.. entrypoint, .. command], ImageEnvironment(), Bin));
            }

            // The worker's metrics port is published on the salesforce service ("127.0.0.1:9187:9187").
            var published = Strings(Map(services, "salesforce")["ports"]).Single().Split(':');
            var metricsPort = DeployedProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
            ports[published[^1]] = metricsPort;

            foreach (var name in new[] { "salesforce", "netsuite" })
            {
                await WaitForHealthyAsync(name, Map(services, name), ports, processes, paths);
            }

            var worker = Map(services, "worker");
            var environment = ImageEnvironment();
            foreach (var (key, value) in ComposeEnvironment(worker))
            {
                environment[key] = value;
            }

            Assert.Equal("json", environment["CDCSYNC__Logging__Format"]);
            environment["CDCSYNC_DB"] = PointAt(environment["CDCSYNC_DB"], hub);
            foreach (var key in environment.Keys.ToList())
            {
                environment[key] = RewritePaths(RewritePorts(environment[key], ports), paths);
            }

            environment["CDCSYNC__Hub__Slot"] = "deploy_compose";
            var run = DeployedProcess.Start("worker", [.. Strings(worker["entrypoint"]).Select(InstalledPaths)], environment, Bin);
            processes.Add(run);

            await WaitForReadyAsync(int.Parse(metricsPort, System.Globalization.CultureInfo.InvariantCulture), processes);
            await WaitForHealthyAsync("worker", worker, ports, processes);
            AssertJsonLogs(run, processes);

            // docker stop: SIGTERM to the entrypoint, which exec'd the worker.
            Assert.Equal(0, await run.TerminateAsync(TimeSpan.FromSeconds(40)));
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
            await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(hub).Database!);
        }
    }

    /// <param name="inTheUnitsSandbox">
    /// Also run both commands inside scripts/systemd-sandbox.py, an emulation of the unit's
    /// hardening (seccomp filter, address families, namespaces, /proc subset, private /dev and
    /// /tmp, read-only system, user nobody without capabilities): the options must leave the
    /// worker able to connect, spool and serve its metrics. Needs root and python3-seccomp (CI
    /// installs it); without them the test fails saying so.
    /// </param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Systemd_ExecStartPreAndExecStartWithTheEnvFile_MigrateRunAndAnswerReadyz(bool inTheUnitsSandbox)
    {
        var unitPath = Path.Combine(Repo.Root, "deploy", "cdcsync.service");
        var unit = UnitService(unitPath);
        var suffix = inTheUnitsSandbox ? "_sandboxed" : "";
        var hub = await TestPostgres.CreateDatabaseAsync(nameof(Systemd_ExecStartPreAndExecStartWithTheEnvFile_MigrateRunAndAnswerReadyz), suffix);
        var target = await TestPostgres.CreateDatabaseAsync(nameof(Systemd_ExecStartPreAndExecStartWithTheEnvFile_MigrateRunAndAnswerReadyz), suffix + "_target");
        var state = Directory.CreateTempSubdirectory("cdcsync-state-").FullName;
        var processes = new List<DeployedProcess>();
        try
        {
            // The tables examples/pgbench-to-postgres.json routes, on both sides (as pgbench -i makes them).
            await TestPipeline.ExecuteAsync(hub, PgbenchTables);
            await TestPipeline.ExecuteAsync(target, PgbenchTables);
            // A small logical_decoding_work_mem makes the server stream the big transaction below,
            // which the worker spools to a temp file under TMPDIR (the unit's /var/lib/cdcsync).
            await TestPipeline.ExecuteAsync(hub, $"ALTER DATABASE \"{new NpgsqlConnectionStringBuilder(hub).Database}\" SET logical_decoding_work_mem = '64kB'");

            // systemd reads EnvironmentFile= after Environment=, so the file wins on a clash.
            Assert.Equal("/etc/cdcsync/cdcsync.env", unit["EnvironmentFile"].Single());
            var environment = unit["Environment"].Select(e => e.Split('=', 2)).ToDictionary(e => e[0], e => e[1]);
            foreach (var (key, value) in EnvFile(Path.Combine(Repo.Root, "deploy", "cdcsync.env.example")))
            {
                environment[key] = value;
            }

            Assert.Equal("json", environment["CDCSYNC__Logging__Format"]);
            environment["CDCSYNC_DB"] = PointAt(environment["CDCSYNC_DB"], hub);
            var metricsPort = DeployedProcess.FreePort();
            environment["CDCSYNC__Hub__MetricsUrl"] = Regex.Replace(environment["CDCSYNC__Hub__MetricsUrl"], @":\d+", $":{metricsPort}");
            // StateDirectory=cdcsync makes /var/lib/cdcsync, the user's home (docs/operations.md:
            // useradd --home); the sandbox emulation makes it too, elsewhere a temp folder stands in.
            Assert.Equal("/var/lib/cdcsync", environment["TMPDIR"]);
            if (inTheUnitsSandbox)
            {
                environment["HOME"] = "/var/lib/cdcsync";
            }
            else
            {
                environment["TMPDIR"] = state;
            }

            // The shipped pipeline (examples/salesforce-netsuite.json) needs the two systems; the
            // test substitutes examples/pgbench-to-postgres.json for /etc/cdcsync/pipeline.json,
            // which needs a target database instead.
            environment["CDCSYNC_TARGET_DB"] = target;
            environment["CDCSYNC__Hub__Slot"] = "deploy_systemd" + suffix;
            List<string> Exec(string key) => inTheUnitsSandbox
                ? [Path.Combine(Repo.Root, "scripts", "systemd-sandbox.py"), unitPath, "--", .. ExecLine(unit[key].Single())]
                : ExecLine(unit[key].Single());

            var workingDirectory = InstalledPaths(unit["WorkingDirectory"].Single());
            using (var migrate = DeployedProcess.Start("ExecStartPre", Exec("ExecStartPre"), environment, workingDirectory))
            {
                Assert.True(await migrate.WaitForExitAsync(TimeSpan.FromSeconds(50)) == 0, migrate.Log());
            }

            var run = DeployedProcess.Start("ExecStart", Exec("ExecStart"), environment, workingDirectory);
            processes.Add(run);
            await WaitForReadyAsync(metricsPort, processes);

            // The pipeline the unit started moves a change to the target.
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 42)");
            await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(target, "SELECT coalesce(max(bbalance), 0)::text FROM pgbench_branches") == "42", TimeSpan.FromSeconds(30));
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime, filler) SELECT g, 1, g, g, now(), 'spooled' FROM generate_series(1, 5000) g");
            await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(target, "SELECT count(*)::text FROM pgbench_history") == "5000", TimeSpan.FromSeconds(30));
            var streamed = $"SELECT coalesce(sum(stream_txns), 0)::text FROM pg_stat_replication_slots WHERE slot_name = '{environment["CDCSYNC__Hub__Slot"]}'";
            await TestPipeline.WaitUntilAsync(async () => await TestPipeline.TextAsync(hub, streamed) != "0", TimeSpan.FromSeconds(15));
            AssertJsonLogs(run, processes);

            // systemctl stop: KillSignal=SIGTERM; exit 0 is a clean stop (RestartPreventExitStatus=2 is for config errors).
            Assert.Equal("SIGTERM", unit["KillSignal"].Single());
            Assert.Equal(0, await run.TerminateAsync(TimeSpan.FromSeconds(40)));
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
            Directory.Delete(state, recursive: true);
            await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(hub).Database!);
            await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(target).Database!);
        }
    }

    private const string PgbenchTables = """
        CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
        CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
        CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
        CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22), id bigserial PRIMARY KEY);
        """;

    /// <summary>The image's ENTRYPOINT (exec form) from the Dockerfile, with /app as this build.</summary>
    private static List<string> ImageEntrypoint()
    {
        var line = File.ReadLines(Path.Combine(Repo.Root, "Dockerfile")).Single(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal));
        return JsonSerializer.Deserialize<List<string>>(line["ENTRYPOINT ".Length..])!.Select(InstalledPaths).ToList();
    }

    /// <summary>The image's ENV (Dockerfile), which every container starts with and compose's environment overrides.</summary>
    private static Dictionary<string, string> ImageEnvironment()
    {
        var text = File.ReadAllText(Path.Combine(Repo.Root, "Dockerfile")).Replace("\\\n", " ", StringComparison.Ordinal);
        var line = text.Split('\n').Single(l => l.StartsWith("ENV ", StringComparison.Ordinal));
        return line["ENV ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
    }

    /// <summary>/app (the image) and /opt/cdcsync (the unit) are this build's output; the examples come from the checkout.</summary>
    private static string InstalledPaths(string text) => text
        .Replace("/app/examples/", Path.Combine(Repo.Root, "examples") + "/", StringComparison.Ordinal)
        .Replace("/app/cdcsync.dll", Path.Combine(Bin, "cdcsync.dll"), StringComparison.Ordinal)
        .Replace("/opt/cdcsync", Bin, StringComparison.Ordinal)
        // The unit's config path, /etc/cdcsync/pipeline.json, is a file an operator installs: the
        // test runs the pgbench example in its place (see the systemd test).
        .Replace("/etc/cdcsync/pipeline.json", Path.Combine(Repo.Root, "examples", "pgbench-to-postgres.json"), StringComparison.Ordinal);

    /// <summary>
    /// The shipped connection string with the test server's host, port, database, login and TLS
    /// mode (the env file asks for SSL Mode=Require, which a throwaway test server does not offer).
    /// </summary>
    private static string PointAt(string shipped, string test)
    {
        var from = new NpgsqlConnectionStringBuilder(test);
        return new NpgsqlConnectionStringBuilder(shipped)
        {
            Host = from.Host,
            Port = from.Port,
            Database = from.Database,
            Username = from.Username,
            Password = from.Password,
            SslMode = from.SslMode,
        }.ConnectionString;
    }

    private static string RewritePorts(string value, Dictionary<string, string> ports) =>
        // host:port in URLs, host/port in bash's /dev/tcp/host/port.
        Regex.Replace(value, @"(?<=(127\.0\.0\.1|0\.0\.0\.0|localhost)[:/])\d+\b", m => ports.GetValueOrDefault(m.Value, m.Value));

    /// <summary>Paths inside the containers' shared volumes, as the test's temporary files.</summary>
    private static string RewritePaths(string value, Dictionary<string, string>? paths) =>
        (paths ?? []).Aggregate(value, (v, p) => v.Replace(p.Key, p.Value, StringComparison.Ordinal));

    /// <summary>Runs a compose healthcheck's test (CMD form) with its ports rewritten, until it passes.</summary>
    private static async Task WaitForHealthyAsync(string name, YamlMappingNode service, Dictionary<string, string> ports, List<DeployedProcess> processes, Dictionary<string, string>? paths = null)
    {
        var test = Strings(Map(service, "healthcheck")["test"]);
        Assert.Equal("CMD", test[0]);
        var command = test.Skip(1).Select(t => RewritePaths(RewritePorts(t, ports), paths)).ToList();
        var until = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            using var check = DeployedProcess.Start($"{name} healthcheck", command, new Dictionary<string, string>(), Bin);
            if (await check.WaitForExitAsync(TimeSpan.FromSeconds(10)) == 0)
            {
                return;
            }

            if (DateTime.UtcNow > until || processes.Any(p => p.HasExited))
            {
                Assert.Fail($"the healthcheck of {name} did not pass: {string.Join(' ', command)}\n{string.Join('\n', processes.Select(p => p.Log()))}");
            }

            await Task.Delay(250);
        }
    }

    private static async Task WaitForReadyAsync(int port, List<DeployedProcess> processes)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var until = DateTime.UtcNow + ReadyTimeout;
        var last = "no answer";
        while (DateTime.UtcNow < until && !processes.Any(p => p.HasExited))
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/readyz"));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }

                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"/readyz on port {port} did not answer 200 (last: {last}).\n{string.Join('\n', processes.Select(p => p.Log()))}");
    }

    /// <summary>CDCSYNC__Logging__Format=json was applied: every line `run` writes is a compact JSON event.</summary>
    private static void AssertJsonLogs(DeployedProcess run, List<DeployedProcess> processes)
    {
        var events = run.Stdout().Where(l => l.StartsWith("{\"@t\":", StringComparison.Ordinal)).ToList();
        Assert.True(events.Count > 0, $"no JSON log events\n{run.Log()}");
        Assert.All(events, e => Assert.True(JsonDocument.Parse(e).RootElement.TryGetProperty("@mt", out _), e));
        Assert.DoesNotContain(run.Stdout(), l => TextLogLine().IsMatch(l));
        Assert.False(processes.Any(p => p.HasExited), string.Join('\n', processes.Select(p => p.Log())));
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d (INF|WRN|ERR) ")]
    private static partial Regex TextLogLine();

    /// <summary>ExecStart= as systemd splits it; the shipped lines use no quoting or prefixes, and a later edit that does must teach this.</summary>
    private static List<string> ExecLine(string line)
    {
        Assert.DoesNotMatch("[\"'\\\\$%]|^[-@:+!]", line);
        return [.. line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(InstalledPaths)];
    }

    /// <summary>The [Service] section: each key with its values in order (Environment= may repeat).</summary>
    private static Dictionary<string, List<string>> UnitService(string path)
    {
        var service = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var section = "";
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                section = line;
                continue;
            }

            var at = line.IndexOf('=', StringComparison.Ordinal);
            if (section == "[Service]" && at > 0)
            {
                var key = line[..at];
                if (!service.TryGetValue(key, out var values))
                {
                    service[key] = values = [];
                }

                values.Add(line[(at + 1)..]);
            }
        }

        return service;
    }

    /// <summary>KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments with #, no quotes in the shipped file).</summary>
    private static Dictionary<string, string> EnvFile(string path) =>
        File.ReadLines(path)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);

    private static YamlMappingNode LoadYaml(string path)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(path);
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) => (YamlMappingNode)node[key];

    private static List<string> Strings(YamlNode node) => [.. ((YamlSequenceNode)node).Children.Select(c => ((YamlScalarNode)c).Value!)];

    /// <summary>A compose service's environment, in either of compose's forms (mapping, or a list of KEY=VALUE).</summary>
    private static Dictionary<string, string> ComposeEnvironment(YamlMappingNode service) => service["environment"] switch
    {
        YamlMappingNode map => map.Children.ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value ?? "", StringComparer.Ordinal),
        YamlSequenceNode list => list.Children.Select(c => ((YamlScalarNode)c).Value!.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal),
        var other => throw new InvalidOperationException($"unexpected environment node {other.NodeType}"),
    };
}
