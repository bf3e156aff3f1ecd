using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Bench;

/// <summary>
/// Onboarding benchmark: N Accounts and N customers, a share of them the same companies (same
/// names, phones formatted differently, neither carrying the other's id), seeded into both sandboxes;
/// then the real <c>cdcsync onboard</c> with the shipped examples/salesforce-netsuite.json (load,
/// match, settle in the hub). Prints the wall time, the API calls each system served and the
/// verb's peak resident set (GNU time). Run by bench/onboard.sh.
/// </summary>
internal static class OnboardBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var records = 100_000;
        var overlap = 0.6;
        string? cli = null;
        string? extraSql = null;
        string? jsonPath = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--records": records = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--overlap": overlap = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--cli": cli = Next(); break;
                case "--extra-sql": extraSql = Next(); break;
                case "--json": jsonPath = Next(); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]} (use --records N, --overlap 0.6, --cli PATH/cdcsync.dll, --extra-sql FILE, --json FILE)");
                    return 2;
            }
        }

        var server = Environment.GetEnvironmentVariable("CDCSYNC_DB")
            ?? throw new InvalidOperationException("Set CDCSYNC_DB (a superuser connection, wal_level=logical), or use bench/onboard.sh which starts a throwaway cluster.");
        cli ??= Path.Combine(Repo(), "src", "CdcSync.Cli", "bin", "Release", "net10.0", "cdcsync.dll");
        var hub = Pg.WithDatabase(server, "cdcsync_bench_onboard");
        await Pg.ExecAsync(server, "DROP DATABASE IF EXISTS cdcsync_bench_onboard WITH (FORCE)");
        await Pg.ExecAsync(server, "CREATE DATABASE cdcsync_bench_onboard");
        await Cli(cli, ["migrate", "--db", hub], new Dictionary<string, string>());
        if (extraSql is not null && !await Pg.ScalarAsync<bool>(hub, "SELECT to_regprocedure('cdc.onboard_match()') IS NOT NULL"))
        {
            // Before the onboarding SQL is merged: the stand-in the engine's tests use.
            await Pg.ExecAsync(hub, await File.ReadAllTextAsync(extraSql));
        }

        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 1_000_000_000 }, CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var shared = (int)Math.Round(records * overlap);
        var seed = Stopwatch.StartNew();
        for (var i = 0; i < records; i++)
        {
            var phone = 1_000_000 + i;
            salesforce.Insert("Account", new JsonObject
            {
                ["Name"] = i < shared ? $"Company {i:D7}" : $"Salesforce Company {i:D7}",
                ["Phone"] = $"(415) {phone / 10_000 % 1000:D3}-{phone % 10_000:D4}",
                ["BillingCity"] = "Austin",
            });
            netsuite.SeedCustomer(new JsonObject
            {
                ["companyName"] = i < shared ? (i % 10 == 0 ? $"COMPANY  {i:D7}" : $"Company {i:D7}") : $"NetSuite Company {i:D7}",
                // Companies only in NetSuite have numbers of their own (another area code): nothing but
                // the shared companies may agree on a key.
                ["phone"] = $"{(i < shared ? 415 : 416)}.{phone / 10_000 % 1000:D3}.{phone % 10_000:D4}",
                ["subsidiary"] = new JsonObject { ["id"] = "1" },
            });
        }

        Console.Error.WriteLine($"seeded {records} Accounts and {records} customers ({shared} shared) in {seed.Elapsed.TotalSeconds:F1} s");
        salesforce.Stats.Reset();
        netsuite.Stats.Reset();

        var env = new Dictionary<string, string>(ExampleEnvironment.For(hub, salesforce, netsuite))
        {
            ["CDCSYNC__Hub__Slot"] = "bench_onboard",
            ["CDCSYNC__Hub__Publication"] = "bench_onboard",
        };
        var peakFile = Path.GetTempFileName();
        var watch = Stopwatch.StartNew();
        var (code, stdout) = await Cli("/usr/bin/time", ["-f", "%M", "-o", peakFile, "dotnet", cli, "onboard", "--config", Path.Combine(Repo(), "examples", "salesforce-netsuite.json"), "--json"], env, accept: [0, 1]);
        watch.Stop();
        var peakMb = long.Parse((await File.ReadAllLinesAsync(peakFile)).Last(l => l.Trim().Length > 0).Trim(), CultureInfo.InvariantCulture) / 1024.0;
        File.Delete(peakFile);

        var report = JsonNode.Parse(stdout)!;
        var sfCalls = Calls(salesforce.Stats.ToJson());
        var nsCalls = Calls(netsuite.Stats.ToJson());
        var counts = report["counts"]!.AsObject();
        var result = new JsonObject
        {
            ["records"] = records,
            ["shared"] = shared,
            ["exitCode"] = code,
            ["seconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1),
            ["peakRssMb"] = Math.Round(peakMb, 0),
            ["salesforceApiCalls"] = sfCalls,
            ["netsuiteApiCalls"] = nsCalls,
            ["salesforceWrites"] = salesforce.Stats.Writes,
            ["netsuiteWrites"] = netsuite.Stats.Writes,
            ["salesforceRequests"] = salesforce.Stats.ToJson()["requestsPerEndpoint"]!.DeepClone(),
            ["netsuiteRequests"] = netsuite.Stats.ToJson()["requestsPerEndpoint"]!.DeepClone(),
            ["loadSeconds"] = report["loadSeconds"]!.DeepClone(),
            ["matchSeconds"] = report["matchSeconds"]!.DeepClone(),
            ["settleSeconds"] = report["settleSeconds"]!.DeepClone(),
            ["counts"] = counts.DeepClone(),
            ["loaded"] = report["loaded"]!.DeepClone(),
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"onboard: {records} Accounts + {records} customers ({overlap:P0} overlap): {watch.Elapsed.TotalSeconds:F1} s (load {report["loadSeconds"]} s, match {report["matchSeconds"]} s, settle {report["settleSeconds"]} s), peak RSS {peakMb:F0} MB, API calls Salesforce {sfCalls}, NetSuite {nsCalls}; " +
            $"matched {counts["matched"]}, review {counts["review"]}, to create in Salesforce {counts["create_in_salesforce"]}, in NetSuite {counts["create_in_netsuite"]}, differences {counts["difference"]}"));
        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, result.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }

        return 0;
    }

    internal static long Calls(JsonObject stats) =>
        stats["requestsPerEndpoint"]!.AsObject().Where(p => !p.Key.Contains("/_sandbox/", StringComparison.Ordinal)).Sum(p => p.Value!.GetValue<long>());

    internal static string Repo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CdcSync.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("run from the checkout (CdcSync.sln not found above the harness)");
    }

    internal static async Task<(int Code, string Stdout)> Cli(string file, IEnumerable<string> args, IDictionary<string, string> env, int[]? accept = null)
    {
        var psi = new ProcessStartInfo(file == "/usr/bin/time" ? file : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo() };
        if (file != "/usr/bin/time")
        {
            psi.ArgumentList.Add(file);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // CDCSYNC_TRACE=1 is kept: where a hub failure happened, for a failed run.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("CDCSYNC", StringComparison.OrdinalIgnoreCase) && k != "CDCSYNC_TRACE").ToList())
        {
            psi.Environment.Remove(key);
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (!(accept ?? [0]).Contains(process.ExitCode))
        {
            throw new InvalidOperationException($"{string.Join(' ', psi.ArgumentList)} exited {process.ExitCode}: {await stderr}");
        }

        Console.Error.Write(await stderr);
        return (process.ExitCode, await stdout);
    }
}
