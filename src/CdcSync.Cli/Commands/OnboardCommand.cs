using System.CommandLine;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Onboarding;
using CdcSync.Operations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync onboard</c>: load every system that has not been onboarded into the hub, match, print
/// the report, settle. Thin: the engine is <see cref="OnboardingService"/>. Exit 0 settled, 1 when
/// records wait for review (<c>cdcsync matches</c>), 2 on errors.
/// </summary>
internal static class OnboardCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var dryRun = new Option<bool>("--dry-run") { Description = "Load, match and report only: nothing is written to either system and the hub is left as it was." };
        var json = CliOptions.Json();
        var command = new Command("onboard", "Connect systems that already hold data: load them into the hub, match records across them, print the report (matched, held for review, to create, field differences), then settle. Resumable: run it again after an interruption. Exit 1 when records wait for review.")
        {
            config, dryRun, json,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var isDryRun = parse.GetValue(dryRun);
            var asJson = parse.GetValue(json);
            await (await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", ct)).DisposeAsync();
            await using var hub = NpgsqlDataSource.Create(options.Hub.ConnectionString);
            var connectors = options.Connectors.Keys
                .Select(name => ConnectorRegistry.Default.CreateInbound(name, options.Connectors[name], hub, NullLoggerFactory.Instance))
                .OfType<IInboundConnector>()
                .ToList();
            try
            {
                if (connectors.Count == 0)
                {
                    throw new OperatorException("no connector of the config reads its system (Connectors:<name>:Inbound:Enabled); onboarding has nothing to load.");
                }

                // A worker on this slot onboards by itself; two loads at once would race.
                await using var lease = isDryRun ? null : await LeaderLease.TryAcquireAsync(options.Hub.ConnectionString, options.Hub.Slot, ct)
                    ?? throw new OperatorException($"a worker runs on slot {options.Hub.Slot}: it onboards new systems by itself (see its log); stop it to run 'cdcsync onboard', or use --dry-run.");
                if (!isDryRun)
                {
                    await OnboardingSlot.EnsureAsync(options, NullLogger.Instance, ct);
                }

                if (!asJson)
                {
                    Console.WriteLine($"Onboarding {string.Join(", ", connectors.Select(c => c.Name))}{(isDryRun ? " (dry run: nothing is written to either system; the hub is left as it was)" : "")}");
                }

                var result = await new OnboardingService(hub, NullLogger<OnboardingService>.Instance)
                    .RunAsync(connectors, isDryRun, new ConsoleProgress(TimeProvider.System), ct);
                if (asJson)
                {
                    CliJson.Write(ToJson(result));
                }
                else
                {
                    Print(result);
                }

                return result.OpenReviews > 0 ? ExitCodes.Attention : ExitCodes.Ok;
            }
            finally
            {
                foreach (var connector in connectors)
                {
                    (connector as IDisposable)?.Dispose();
                }
            }
        }));
        return command;
    }

    private static readonly (string Section, string Title)[] Sections =
    [
        ("matched", "matched automatically"),
        ("review", "held for review"),
        ("create_in_salesforce", "to create in Salesforce"),
        ("create_in_netsuite", "to create in NetSuite"),
        ("difference", "field differences in matched pairs"),
    ];

    private static void Print(OnboardingResult result)
    {
        if (result.Connectors.Count == 0)
        {
            Console.WriteLine("Every system is already onboarded; nothing to load.");
        }
        else
        {
            Console.WriteLine($"Loaded: {string.Join(", ", result.Loaded.Select(l => $"{l.Key} {l.Value.ToString(CultureInfo.InvariantCulture)} records"))} in {result.LoadTime.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s; matched in {result.MatchTime.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
            Console.WriteLine();
            Console.WriteLine("Report");
            foreach (var (section, title) in Sections)
            {
                Console.WriteLine($"  {title,-36}{result.Count(section),8}");
            }

            var reviews = result.Report.Where(l => l.Section == "review").ToList();
            if (reviews.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine("Held for review (nothing is created or linked for them until decided)");
                Console.WriteLine("  label\tobject\trecord\tcandidate object\tcandidate\tscore");
                foreach (var r in reviews)
                {
                    Console.WriteLine($"  {r.Label}\t{r.Object}\t{r.HubId}\t{r.OtherObject}\t{r.OtherHubId}\t{Score(r.Score)}");
                }
            }

            var differences = result.Report.Where(l => l.Section == "difference").ToList();
            if (differences.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine("Field differences in matched pairs");
                Console.WriteLine("  label\tfield\tvalue\tother value\tsettlement");
                foreach (var d in differences)
                {
                    Console.WriteLine($"  {d.Label}\t{d.Field}\t{d.Value ?? "null"}\t{d.OtherValue ?? "null"}\t{d.Settlement}");
                }
            }

            Console.WriteLine();
            Console.WriteLine(result.DryRun
                ? "Dry run: nothing was written. Run the same command without --dry-run to settle."
                : "Settled: " + (result.Settled.Count == 0 ? "nothing to do" : string.Join(", ", result.Settled.Select(s => $"{s.Outcome} {s.Count.ToString(CultureInfo.InvariantCulture)}{(s.Object is null ? "" : " " + s.Object)}"))) + $" in {result.SettleTime.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s.");
        }

        if (result.OpenReviews > 0)
        {
            Console.WriteLine($"{result.OpenReviews} record(s) wait for review: 'cdcsync matches list', then 'cdcsync matches accept <id>' or 'cdcsync matches reject <id>'.");
        }
    }

    private static string Score(decimal? score) => score?.ToString("0.##", CultureInfo.InvariantCulture) ?? "";

    private static object ToJson(OnboardingResult r) => new
    {
        r.DryRun,
        r.Connectors,
        r.Loaded,
        Counts = Sections.ToDictionary(s => s.Section, s => r.Count(s.Section)),
        r.Matched,
        r.Report,
        r.Settled,
        r.OpenReviews,
        r.IsSettled,
        LoadSeconds = Math.Round(r.LoadTime.TotalSeconds, 1),
        MatchSeconds = Math.Round(r.MatchTime.TotalSeconds, 1),
        SettleSeconds = Math.Round(r.SettleTime.TotalSeconds, 1),
    };

    /// <summary>Load progress on stderr (stdout stays the report), at most once a second per system and when it is done.</summary>
    internal sealed class ConsoleProgress(TimeProvider time) : IProgress<LoadProgress>
    {
        private readonly Dictionary<string, long> _last = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();

        public void Report(LoadProgress value)
        {
            lock (_lock)
            {
                var now = time.GetTimestamp();
                if (!value.Done && _last.TryGetValue(value.Connector, out var last) && time.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1))
                {
                    return;
                }

                _last[value.Connector] = now;
                Console.Error.WriteLine($"loading {value.Connector}: {value.Records.ToString(CultureInfo.InvariantCulture)} records{(value.Done ? " (done)" : "")}");
            }
        }
    }
}
