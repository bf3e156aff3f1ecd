using System.CommandLine;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Operations;
using Microsoft.Extensions.Logging.Abstractions;

namespace CdcSync.Cli.Commands;

/// <summary><c>cdcsync deadletters list|discard|retry</c> (logic in <see cref="DeadLetterService"/>).</summary>
internal static class DeadLettersCommand
{
    public static Command Create()
    {
        var command = new Command("deadletters", "Records a connector could not deliver: list them, retry (re-send the current hub row) or discard them.")
        {
            List(), Discard(), Retry(),
        };
        return command;
    }

    private static DeadLetterService Service(ParseResult parse, Option<string?> db) =>
        new(CliOptions.HubConnectionString(parse, db), CliOptions.SourceOf(parse, db));

    private static Command List()
    {
        var db = CliOptions.Db();
        var connector = new Option<string?>("--connector") { Description = "Only this connector's dead letters." };
        var all = new Option<bool>("--all") { Description = "Include retried and discarded ones (default: open only)." };
        var json = CliOptions.Json();
        var command = new Command("list", "List dead letters, newest first.") { db, connector, all, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var letters = await Service(parse, db).ListAsync(parse.GetValue(connector), parse.GetValue(all), ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(letters);
                return ExitCodes.Ok;
            }

            if (letters.Count == 0)
            {
                Console.WriteLine("no dead letters.");
                return ExitCodes.Ok;
            }

            Console.WriteLine("id\tconnector\tobject\trecord_key\tstatus\tattempts\tfirst_seen\tlast_seen\terror");
            foreach (var d in letters)
            {
                Console.WriteLine(string.Join('\t',
                    d.Id.ToString(CultureInfo.InvariantCulture),
                    d.Connector,
                    d.Object,
                    d.RecordKey,
                    d.Status,
                    d.Attempts.ToString(CultureInfo.InvariantCulture),
                    d.FirstSeen.ToString("u", CultureInfo.InvariantCulture),
                    d.LastSeen.ToString("u", CultureInfo.InvariantCulture),
                    OneLine(d.Error)));
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Discard()
    {
        var db = CliOptions.Db();
        var ids = IdsArgument();
        var json = CliOptions.Json();
        var command = new Command("discard", "Mark dead letters as discarded (nothing is sent); all ids or none.") { db, ids, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var list = parse.GetValue(ids) ?? [];
            await Service(parse, db).DiscardAsync(list, ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(list.Select(id => new { id, status = "discarded" }));
                return ExitCodes.Ok;
            }

            foreach (var id in list)
            {
                Console.WriteLine($"dead letter {id}: discarded");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Retry()
    {
        var config = CliOptions.Config();
        var ids = IdsArgument();
        var json = CliOptions.Json();
        var command = new Command("retry", "Re-send the current hub row of each dead letter to the connector that rejected it (a one-row resync the worker runs), and mark the dead letter retried; all ids or none.") { config, ids, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var service = new DeadLetterService(options.Hub.ConnectionString, "Hub:ConnectionString");
            var retried = await service.RetryAsync(parse.GetValue(ids) ?? [], new ResyncService(options, NullLogger.Instance), ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(retried.Select(r => new { id = r.Id, status = "retried", @object = r.Object, hubId = r.HubId, resyncJob = r.Job }));
                return ExitCodes.Ok;
            }

            foreach (var (id, obj, hubId, job) in retried)
            {
                Console.WriteLine($"dead letter {id}: {obj} {hubId} queued for re-send (resync job {job}; the running worker sends it)");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Argument<long[]> IdsArgument() => new("id")
    {
        Description = "Dead letter ids (see deadletters list).",
        Arity = ArgumentArity.OneOrMore,
    };

    private static string OneLine(string s)
    {
        var line = s.ReplaceLineEndings(" ").Replace('\t', ' ');
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
