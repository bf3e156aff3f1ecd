using System.CommandLine;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;

namespace CdcSync.Cli.Commands;

/// <summary>`cdcsync replay`: re-deliver retained WAL after an LSN to one connector (logic in <see cref="ReplayService"/>).</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var connector = new Option<string>("--connector") { Description = "Connector (a name under Connectors) that gets the changes again; no other connector does.", Required = true };
        var from = new Option<string>("--from-lsn") { Description = "Re-deliver every change committed after this LSN (e.g. 0/1A2B3C4), as far as the replay window reaches.", Required = true };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the transactions that would be re-sent (commit LSN, time, tables, changes); change nothing." };
        var wait = CliOptions.AtLeast(DurationOption.Create("--wait", "How long to wait for a running worker to pick the request up, e.g. 30s, 5m. Default: 1m.", TimeSpan.FromMinutes(1)), TimeSpan.Zero);
        var json = CliOptions.Json();
        var command = new Command("replay", "Re-deliver to one connector every change after an LSN that the slot still retains (see Hub:ReplayRetentionBytes/Age).") { config, connector, from, dryRun, wait, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var name = parse.GetValue(connector)!;
            var text = parse.GetValue(from)!;
            if (!NpgsqlLogSequenceNumber.TryParse(text, out var lsn))
            {
                throw new OperatorException($"--from-lsn {text} is not an LSN; write it as PostgreSQL prints one, e.g. 0/1A2B3C4 (see 'cdcsync status' for the replay window).");
            }

            var service = new ReplayService(options, NullLogger.Instance);
            if (parse.GetValue(dryRun))
            {
                var transactions = await service.DryRunAsync(name, lsn, ct);
                if (parse.GetValue(json))
                {
                    CliJson.Write(new
                    {
                        connector = name,
                        fromLsn = lsn.ToString(),
                        dryRun = true,
                        transactions = transactions.Select(t => new { commitLsn = t.CommitLsn.ToString(), t.CommitTime, t.Changes, t.ChangesByTable }),
                        totalTransactions = transactions.Count,
                        totalChanges = transactions.Sum(t => t.Changes),
                    });
                    return ExitCodes.Ok;
                }

                Console.WriteLine("commit_lsn\tcommit_time\tchanges\ttables");
                foreach (var t in transactions)
                {
                    var tables = string.Join(", ", t.ChangesByTable.Select(kv => $"{kv.Key}={kv.Value}"));
                    Console.WriteLine($"{t.CommitLsn}\t{t.CommitTime.ToString("yyyy-MM-dd HH:mm:ss.fff zzz", CultureInfo.InvariantCulture)}\t{t.Changes}\t{tables}");
                }

                Console.WriteLine($"{transactions.Count} transaction(s), {transactions.Sum(t => t.Changes)} change(s) would be re-sent to {name}; nothing was changed (dry run).");
                return ExitCodes.Ok;
            }

            var outcome = await service.RequestAsync(name, lsn, parse.GetValue(wait), TimeProvider.System, ct);
            // RewindAsync only lowers: no previous checkpoint means it was already at or before the LSN.
            var lowered = outcome.Applied && outcome.Previous != default;
            if (parse.GetValue(json))
            {
                CliJson.Write(new
                {
                    requestId = outcome.RequestId,
                    connector = name,
                    fromLsn = lsn.ToString(),
                    applied = outcome.Applied,
                    lowered,
                    previousCheckpoint = lowered ? outcome.Previous.ToString() : null,
                });
                return outcome.Applied ? ExitCodes.Ok : ExitCodes.Attention;
            }

            if (!outcome.Applied)
            {
                Console.WriteLine($"replay {outcome.RequestId} queued: a worker holds the lease but has not applied it yet; it will when it next checks (see 'cdcsync status').");
                return ExitCodes.Attention;
            }

            Console.WriteLine(lowered
                ? $"replay {outcome.RequestId}: {name} checkpoint lowered from {outcome.Previous} to {lsn}; the worker re-delivers every retained change after it to {name} only."
                : $"replay {outcome.RequestId}: {name}'s checkpoint is already at or before {lsn}, so nothing was lowered; {name} receives every change after its checkpoint anyway.");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
