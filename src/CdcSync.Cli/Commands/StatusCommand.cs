using System.CommandLine;
using System.Text.Json;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Operations;

namespace CdcSync.Cli.Commands;

/// <summary>`cdcsync status`: exit 0 healthy, 1 needs attention, 2 error (logic in <see cref="StatusService"/>).</summary>
internal static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static Command Create()
    {
        var db = CliOptions.Db();
        var config = CliOptions.MustBeFile(new Option<string?>("--config") { Description = "Pipeline config: its hub, slot and connectors (reads PostgreSQL connectors' checkpoints from their targets). Without it: --db / CDCSYNC_DB and every slot CdcSync created." });
        var json = new Option<bool>("--json") { Description = "Print JSON (for scripts and monitoring)." };
        var maxLag = CliOptions.AtLeast(DurationOption.Create("--max-lag", "Lag in time above which a connector needs attention (exit 1), e.g. 30s, 5m, 00:05:00. Default: 1m.", TimeSpan.FromMinutes(1)), TimeSpan.Zero);
        var maxLagBytes = CliOptions.AtLeast(new Option<long>("--max-lag-bytes") { Description = "Lag in WAL bytes above which a connector needs attention (exit 1). Default: 1073741824 (1 GiB).", DefaultValueFactory = _ => 1L << 30 }, 0L);
        var command = new Command("status", "WAL and slot position, retained WAL, replay window, per connector checkpoint, lag (bytes, seconds), events/s, last error, circuit, dead letters, open conflicts. Exit 0 healthy, 1 needs attention, 2 error.")
        {
            db, config, json, maxLag, maxLagBytes,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var configPath = parse.GetValue(config);
            var options = configPath is null ? null : ConnectorConfig.Bind(ConfigLoader.Build(configPath));
            var hub = options?.Hub.ConnectionString ?? CliOptions.HubConnectionString(parse, db);
            // Connect once here so an unreachable hub is reported against where its string came from
            // (--db, CDCSYNC_DB or the config's Hub:ConnectionString).
            await (await HubConnection.OpenAsync(hub, options is null ? CliOptions.SourceOf(parse, db) : "Hub:ConnectionString", ct)).DisposeAsync();
            var status = await new StatusService(hub, options).GetAsync(new StatusThresholds(parse.GetValue(maxLag), parse.GetValue(maxLagBytes)), ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    status.Hub,
                    status.WalPosition,
                    status.WorkerConnected,
                    status.Healthy,
                    status.Attention,
                    status.Workers,
                    status.Slots,
                    status.Connectors,
                    status.DeadLetters,
                    status.OpenConflicts,
                }, Json));
            }
            else
            {
                Print(status);
            }

            return status.Healthy ? ExitCodes.Ok : ExitCodes.Attention;
        }));
        return command;
    }

    private static void Print(HubStatus status)
    {
        Console.WriteLine($"hub {status.Hub}: WAL at {status.WalPosition}; worker {(status.WorkerConnected ? "connected" : "NOT connected")}");
        foreach (var w in status.Workers)
        {
            Console.WriteLine($"worker {w.Worker} on slot {w.Slot}: {w.State}, pipeline {w.Pipeline}{(w.Stage is null ? string.Empty : ": " + w.Stage)}{(w.Restarts > 0 ? $"; restarts {w.Restarts}" : string.Empty)}");
        }

        Console.WriteLine("\nslot\tactive\tconfirmed\twal_status\tretained_bytes\treplay_window_bytes");
        foreach (var s in status.Slots)
        {
            Console.WriteLine($"{s.Slot}\t{s.Active}\t{s.ConfirmedLsn ?? "-"}\t{s.WalStatus}\t{s.RetainedBytes}\t{s.ReplayWindowBytes}");
        }

        Console.WriteLine("\nconnector\tcheckpoint\tlag_bytes\tlag_seconds\tevents_per_s\tcircuit\tdead_letters\topen_conflicts\tlast_error");
        foreach (var c in status.Connectors)
        {
            Console.WriteLine($"{c.Connector}\t{c.Checkpoint ?? "-"}\t{c.LagBytes}\t{c.LagSeconds}\t{c.EventsPerSecond}\t{c.Circuit}\t{c.DeadLetters}\t{c.OpenConflicts}\t{c.LastError ?? "-"}");
        }

        Console.WriteLine($"\nopen dead letters: {status.DeadLetters}; open conflicts: {status.OpenConflicts}");
        Console.WriteLine(status.Healthy ? "healthy" : "needs attention: " + string.Join("; ", status.Attention));
    }
}
