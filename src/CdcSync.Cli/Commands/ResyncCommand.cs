using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using Microsoft.Extensions.Logging.Abstractions;

namespace CdcSync.Cli.Commands;

/// <summary>`cdcsync resync`: queue a backfill for the worker and follow its progress (logic in <see cref="ResyncService"/>).</summary>
internal static class ResyncCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var connector = new Option<string>("--connector") { Description = "Connector (a name under Connectors) that gets the rows; no other connector does.", Required = true };
        var table = new Option<string>("--table") { Description = "Hub table (schema.table, as in Routes).", Required = true };
        var where = new Option<string?>("--where") { Description = "Only rows matching this SQL condition, e.g. \"updated_at > now() - interval '1 day'\"." };
        var batch = new Option<int>("--batch-size") { Description = $"Rows per chunk (each chunk is one short transaction). Default: {ResyncService.DefaultBatchSize}.", DefaultValueFactory = _ => ResyncService.DefaultBatchSize };
        var detach = new Option<bool>("--detach") { Description = "Queue the resync and return; follow it with 'cdcsync status' or by running the same command again." };
        var json = CliOptions.Json();
        var command = new Command("resync", "Re-send the current rows of a hub table to one connector, in key-ordered chunks, while streaming goes on (run by the worker; resumable). Exit 1 when no worker runs (queued).")
        {
            config, connector, table, where, batch, detach, json,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var service = new ResyncService(options, NullLogger.Instance);
            var asJson = parse.GetValue(json);
            var job = await service.RequestAsync(parse.GetValue(connector)!, parse.GetValue(table)!, parse.GetValue(where), parse.GetValue(batch), ct);
            if (!asJson)
            {
                Console.WriteLine(job.StartedAt is null && job.RowsDone == 0
                    ? $"resync {job.Id}: {job.TableName} to {job.Connector}, {job.RowsTotal} row(s) queued"
                    : $"resync {job.Id}: resuming {job.TableName} to {job.Connector} at {job.RowsDone} of {job.RowsTotal} row(s)");
            }

            await using (var lease = await LeaderLease.TryAcquireAsync(options.Hub.ConnectionString, options.Hub.Slot, ct))
            {
                if (lease is not null)
                {
                    if (asJson)
                    {
                        CliJson.Write(Report(job, workerRunning: false));
                    }
                    else
                    {
                        Console.WriteLine("no worker is running on this slot: the resync starts when 'cdcsync run' does (progress is kept in cdc.resync_jobs).");
                    }

                    return ExitCodes.Attention;
                }
            }

            if (parse.GetValue(detach))
            {
                if (asJson)
                {
                    CliJson.Write(Report(job, workerRunning: true));
                }

                return ExitCodes.Ok;
            }

            return await FollowAsync(service, job, asJson, ct);
        }));
        return command;
    }

    /// <summary>The job as <c>--json</c> prints it; <c>status</c> as in cdc.resync_jobs (pending, running, done, failed).</summary>
    private static object Report(ResyncJob job, bool workerRunning) => new
    {
        id = job.Id,
        job.Connector,
        table = job.TableName,
        where = job.WhereSql,
        job.BatchSize,
        job.Status,
        job.RowsDone,
        job.RowsTotal,
        job.Error,
        workerRunning,
        job.CreatedAt,
        job.StartedAt,
        job.UpdatedAt,
    };

    /// <summary>A progress bar with rows/s and ETA on a terminal; a plain line every few seconds otherwise.</summary>
    private static async Task<int> FollowAsync(ResyncService service, ResyncJob job, bool asJson, CancellationToken cancellationToken)
    {
        var tty = !Console.IsOutputRedirected && !asJson;
        var clock = Stopwatch.StartNew();
        var startRows = job.RowsDone;
        var lastLine = TimeSpan.Zero;
        while (true)
        {
            job = await service.GetAsync(job.Id, cancellationToken);
            var rate = (job.RowsDone - startRows) / Math.Max(0.001, clock.Elapsed.TotalSeconds);
            var total = Math.Max(job.RowsTotal ?? 0, job.RowsDone);
            var eta = rate > 0 ? TimeSpan.FromSeconds((total - job.RowsDone) / rate) : (TimeSpan?)null;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{job.RowsDone:N0}/{total:N0} rows  {rate:N0} rows/s  ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "--:--:--")}  {job.Status}");
            if (tty)
            {
                var fraction = total == 0 ? 1 : (double)job.RowsDone / total;
                var filled = (int)Math.Round(fraction * 30);
                Console.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {fraction,4:P0} {line}   ");
            }
            else if (asJson)
            {
                if (job.Status is "done" or "failed")
                {
                    CliJson.Write(Report(job, workerRunning: true));
                    if (job.Status == "failed")
                    {
                        await Console.Error.WriteLineAsync($"error: resync {job.Id} failed: {job.Error}");
                    }

                    return job.Status == "done" ? ExitCodes.Ok : ExitCodes.Error;
                }
            }
            else if (clock.Elapsed - lastLine >= TimeSpan.FromSeconds(5) || job.Status is "done" or "failed")
            {
                Console.WriteLine(line);
                lastLine = clock.Elapsed;
            }

            switch (job.Status)
            {
                case "done":
                    if (tty)
                    {
                        Console.WriteLine();
                    }

                    Console.WriteLine($"resync {job.Id}: {job.RowsDone} row(s) of {job.TableName} sent to {job.Connector}");
                    return ExitCodes.Ok;
                case "failed":
                    if (tty)
                    {
                        Console.WriteLine();
                    }

                    await Console.Error.WriteLineAsync($"error: resync {job.Id} failed: {job.Error}");
                    return ExitCodes.Error;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }
}
