using System.Globalization;
using CdcSync.Bench;

// CdcSync benchmark harness. Usage:
//   dotnet run -c Release --project bench/CdcSync.Bench -- onboard [--records N] [--overlap 0.6] [--extra-sql FILE] [--json FILE]   (bench/onboard.sh)
//   dotnet run -c Release --project bench/CdcSync.Bench -- reconcile [--pairs N] [--drift D] [--json FILE]   (bench/reconcile.sh)
//   dotnet run -c Release --project bench/CdcSync.Bench -- reader|connector|http|all [--rows N] [--reps R] [--warmup W] [--scale S] [--clients C] [--workload tpcb|insert] [--ns-records N] [--sf-records N] [--latency-ms L] [--json FILE]
// Needs CDCSYNC_DB (a superuser connection to a hub with wal_level=logical); bench/run.sh starts a
// throwaway cluster when it is unset. The hub's pgbench tables are dropped and re-created, and the
// target databases cdcsync_bench_native / cdcsync_bench_cdcsync are re-created, on every repetition.
// "_reader" and "_pipeline" are the child processes the harness starts (one per measured run, so
// each run's peak working set is its own).
if (args.Length > 0 && args[0] == "_reader")
{
    return await Children.ReaderAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "onboard")
{
    return await OnboardBench.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "reconcile")
{
    return await ReconcileBench.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "_pipeline")
{
    return await Children.PipelineAsync(args[1..]);
}

var settings = new Settings();
var mode = args.Length > 0 ? args[0] : "all";
if (mode is not ("reader" or "connector" or "http" or "all"))
{
    Console.Error.WriteLine("usage: CdcSync.Bench reader|connector|http|all [--rows N] [--reps R] [--warmup W] [--scale S] [--clients C] [--workload tpcb|insert] [--ns-records N] [--sf-records N] [--latency-ms L] [--json FILE]");
    return 2;
}

for (var i = 1; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--rows": settings.Rows = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--reps": settings.Reps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--scale": settings.Scale = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--clients": settings.Clients = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--json": settings.JsonPath = Next(); break;
        case "--warmup": settings.Warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--workload": settings.Workload = Next() is "tpcb" or "insert" ? args[i] : throw new ArgumentException("--workload is tpcb or insert"); break;
        case "--ns-records": settings.NetSuiteRecords = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--sf-records": settings.SalesforceRecords = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--latency-ms": settings.LatencyMs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]}");
            return 2;
    }
}

settings.Reader = mode is "reader" or "all";
settings.Connector = mode is "connector" or "all";
settings.Http = mode is "http";
settings.HubConnectionString = Environment.GetEnvironmentVariable("CDCSYNC_DB")
    ?? throw new InvalidOperationException("Set CDCSYNC_DB to the hub (a superuser connection, wal_level=logical), or use bench/run.sh which starts a throwaway cluster.");

return await new Harness(settings).RunAsync();
