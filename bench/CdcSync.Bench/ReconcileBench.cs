using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes;
using CdcSync.Sandboxes.NetSuite;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Bench;

/// <summary>
/// Reconcile benchmark: N Accounts and N customers describing the same companies, linked by the
/// real <c>cdcsync onboard</c> (not timed), then D silent edits on each side
/// (<c>/_sandbox/silent-edit</c>), then the real <c>cdcsync reconcile --json</c> with the shipped
/// examples/salesforce-netsuite.json, timed. Prints the wall time, the API calls each system served
/// during the reconcile, the verb's own count and its peak resident set (GNU time). Run by bench/reconcile.sh.
/// </summary>
internal static class ReconcileBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var pairs = 100_000;
        var driftEach = 10;
        string? cli = null;
        string? jsonPath = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--pairs": pairs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--drift": driftEach = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--cli": cli = Next(); break;
                case "--json": jsonPath = Next(); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]} (use --pairs N, --drift D, --cli PATH/cdcsync.dll, --json FILE)");
                    return 2;
            }
        }

        var server = Environment.GetEnvironmentVariable("CDCSYNC_DB")
            ?? throw new InvalidOperationException("Set CDCSYNC_DB (a superuser connection, wal_level=logical), or use bench/reconcile.sh which starts a throwaway cluster.");
        cli ??= Path.Combine(OnboardBench.Repo(), "src", "CdcSync.Cli", "bin", "Release", "net10.0", "cdcsync.dll");
        var hub = Pg.WithDatabase(server, "cdcsync_bench_reconcile");
        await Pg.ExecAsync(server, "DROP DATABASE IF EXISTS cdcsync_bench_reconcile WITH (FORCE)");
        await Pg.ExecAsync(server, "CREATE DATABASE cdcsync_bench_reconcile");
        await OnboardBench.Cli(cli, ["migrate", "--db", hub], new Dictionary<string, string>());

        await using var salesforce = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions { RequestLimit = 1_000_000_000 }, CancellationToken.None);
        await using var netsuite = await NetSuiteSandbox.StartAsync(new NetSuiteSandboxOptions(), CancellationToken.None);
        var accounts = new List<string>(pairs);
        var customers = new List<long>(pairs);
        for (var i = 0; i < pairs; i++)
        {
            var phone = 1_000_000 + i;
            accounts.Add(salesforce.Insert("Account", new JsonObject
            {
                ["Name"] = $"Company {i:D7}",
                ["Phone"] = $"(415) {phone / 10_000 % 1000:D3}-{phone % 10_000:D4}",
            }));
            customers.Add(netsuite.SeedCustomer(new JsonObject
            {
                ["companyName"] = $"Company {i:D7}",
                ["phone"] = $"415{phone / 10_000 % 1000:D3}{phone % 10_000:D4}",
                ["subsidiary"] = new JsonObject { ["id"] = "1" },
            }));
        }

        var env = new Dictionary<string, string>(ExampleEnvironment.For(hub, salesforce, netsuite))
        {
            ["CDCSYNC__Hub__Slot"] = "bench_reconcile",
            ["CDCSYNC__Hub__Publication"] = "bench_reconcile",
        };
        var config = Path.Combine(OnboardBench.Repo(), "examples", "salesforce-netsuite.json");
        var onboard = Stopwatch.StartNew();
        var (_, onboardStdout) = await OnboardBench.Cli(cli, ["onboard", "--config", config, "--json"], env, accept: [0, 1]);
        onboard.Stop();
        var onboarded = JsonNode.Parse(onboardStdout)!;
        Console.Error.WriteLine($"linked {pairs} pairs with cdcsync onboard in {onboard.Elapsed.TotalSeconds:F1} s (load {onboarded["loadSeconds"]} s, match {onboarded["matchSeconds"]} s, settle {onboarded["settleSeconds"]} s)");

        using var http = new HttpClient();
        for (var i = 0; i < Math.Min(driftEach, pairs); i++)
        {
            var k = i * (pairs / Math.Max(driftEach, 1));
            await Post(http, salesforce.BaseUrl, new JsonObject { ["type"] = "Account", ["id"] = accounts[k], ["fields"] = new JsonObject { ["Phone"] = $"(416) 555-{i:D4}" } });
            await Post(http, netsuite.BaseUrl, new JsonObject { ["type"] = "customer", ["id"] = customers[pairs - 1 - k].ToString(CultureInfo.InvariantCulture), ["fields"] = new JsonObject { ["phone"] = $"417555{i:D4}" } });
        }

        salesforce.Stats.Reset();
        netsuite.Stats.Reset();
        var peakFile = Path.GetTempFileName();
        var watch = Stopwatch.StartNew();
        var (code, stdout) = await OnboardBench.Cli("/usr/bin/time", ["-f", "%M", "-o", peakFile, "dotnet", cli, "reconcile", "--config", config, "--json"], env, accept: [0, 1]);
        watch.Stop();
        var peakMb = long.Parse((await File.ReadAllLinesAsync(peakFile)).Last(l => l.Trim().Length > 0).Trim(), CultureInfo.InvariantCulture) / 1024.0;
        File.Delete(peakFile);

        var report = JsonNode.Parse(stdout)!;
        var sfCalls = OnboardBench.Calls(salesforce.Stats.ToJson());
        var nsCalls = OnboardBench.Calls(netsuite.Stats.ToJson());
        var result = new JsonObject
        {
            ["pairs"] = pairs,
            ["silentEditsEachSide"] = driftEach,
            ["exitCode"] = code,
            ["seconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1),
            ["readSeconds"] = report["readSeconds"]!.DeepClone(),
            ["compareSeconds"] = report["compareSeconds"]!.DeepClone(),
            ["peakRssMb"] = Math.Round(peakMb, 0),
            ["apiCallsCounted"] = report["apiCalls"]!.DeepClone(),
            ["salesforceApiCalls"] = sfCalls,
            ["netsuiteApiCalls"] = nsCalls,
            ["salesforceRequests"] = salesforce.Stats.ToJson()["requestsPerEndpoint"]!.DeepClone(),
            ["netsuiteRequests"] = netsuite.Stats.ToJson()["requestsPerEndpoint"]!.DeepClone(),
            ["counts"] = report["counts"]!.DeepClone(),
            ["onboardSetup"] = new JsonObject
            {
                ["seconds"] = Math.Round(onboard.Elapsed.TotalSeconds, 1),
                ["loadSeconds"] = onboarded["loadSeconds"]?.DeepClone(),
                ["matchSeconds"] = onboarded["matchSeconds"]?.DeepClone(),
                ["settleSeconds"] = onboarded["settleSeconds"]?.DeepClone(),
            },
            ["read"] = report["read"]!.DeepClone(),
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"reconcile: {pairs} linked pairs, {driftEach} silent edits each side: {watch.Elapsed.TotalSeconds:F1} s (read {report["readSeconds"]} s, compare {report["compareSeconds"]} s), peak RSS {peakMb:F0} MB, API calls Salesforce {sfCalls}, NetSuite {nsCalls} (counted by the verb: {report["apiCalls"]}); drift {report["driftCount"]}, exit {code}"));
        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, result.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }

        return 0;
    }

    private static async Task Post(HttpClient http, Uri sandbox, JsonObject body)
    {
        using var response = await http.PostAsJsonAsync(new Uri(sandbox, "_sandbox/silent-edit"), body);
        response.EnsureSuccessStatusCode();
    }
}
