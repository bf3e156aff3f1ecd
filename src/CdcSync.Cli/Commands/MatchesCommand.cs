using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Onboarding;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync matches list|show|accept|reject|unlink</c>: the onboarding review queue and its
/// decisions. Thin: the engine is <see cref="MatchService"/>. Exit 1 from <c>list</c> when reviews wait.
/// </summary>
internal static class MatchesCommand
{
    public static Command Create() => new("matches", "Records onboarding could not match with confidence (held: nothing is created or linked for them): list them, show one, accept, reject; unlink a wrong automatic match.")
    {
        List(), Show(), Accept(), Reject(), Unlink(),
    };

    private static Command List()
    {
        var (db, config) = HubOptions();
        var json = CliOptions.Json();
        var command = new Command("list", "Open reviews with their candidates, scores and matching keys. Exit 1 when any wait.") { db, config, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, config, ct);
            var rows = await new MatchService(hub).ListAsync(ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonArray([.. rows]).ToJsonString(CliJson.Options));
            }
            else if (rows.Count == 0)
            {
                Console.WriteLine("no records wait for review.");
            }
            else
            {
                PrintRows(rows);
                Console.WriteLine("decide: cdcsync matches accept <id> [--with <hub_id>] | cdcsync matches reject <id>");
            }

            return rows.Count > 0 ? ExitCodes.Attention : ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Show()
    {
        var (db, config) = HubOptions();
        var id = new Argument<long>("id") { Description = "Match candidate id (see matches list)." };
        var json = CliOptions.Json();
        var command = new Command("show", "One review: the record and every candidate, with scores and the keys that matched.") { db, config, id, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, config, ct);
            var (candidates, review) = await new MatchService(hub).ShowAsync(parse.GetValue(id), ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(new { Candidates = candidates, Review = review });
                return ExitCodes.Ok;
            }

            var first = candidates[0];
            Console.WriteLine($"record {first.ObjectA} {first.HubA}");
            Console.WriteLine("  id\tstatus\tcandidate object\tcandidate\tscore\tkeys\tdecided");
            foreach (var c in candidates)
            {
                Console.WriteLine($"  {c.Id.ToString(CultureInfo.InvariantCulture)}\t{c.Status}\t{c.ObjectB}\t{c.HubB}\t{c.Score?.ToString("0.##", CultureInfo.InvariantCulture)}\t{c.Keys}\t{(c.DecidedBy is null ? "" : $"{c.DecidedBy} at {c.DecidedAt:yyyy-MM-dd HH:mm:ss}")}");
            }

            if (review.Count > 0)
            {
                Console.WriteLine();
                PrintRows(review);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Accept()
    {
        var (db, config) = HubOptions();
        var id = new Argument<long>("id") { Description = "Match candidate id (see matches list)." };
        var with = new Option<Guid?>("--with") { Description = "In a tie, the candidate to link (its hub id, as matches show prints it)." };
        var json = CliOptions.Json();
        var command = new Command("accept", "Link the record with its candidate; both systems are updated by the worker.") { db, config, id, with, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, config, ct);
            var link = await new MatchService(hub).AcceptAsync(parse.GetValue(id), parse.GetValue(with), By(), ct);
            Report(parse.GetValue(json), new { Id = parse.GetValue(id), Decision = "accepted", Link = link }, $"match {parse.GetValue(id)} accepted: link {link}.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Reject()
    {
        var (db, config) = HubOptions();
        var id = new Argument<long>("id") { Description = "Match candidate id (see matches list)." };
        var json = CliOptions.Json();
        var command = new Command("reject", "Not the same record: it is created as new on the other side.") { db, config, id, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, config, ct);
            await new MatchService(hub).RejectAsync(parse.GetValue(id), By(), ct);
            Report(parse.GetValue(json), new { Id = parse.GetValue(id), Decision = "rejected" }, $"match {parse.GetValue(id)} rejected: the record will be created on the other side.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Unlink()
    {
        var (db, config) = HubOptions();
        var link = new Argument<Guid>("link") { Description = "Link id of a wrong automatic match (link_id in matches show)." };
        var json = CliOptions.Json();
        var command = new Command("unlink", "Undo a wrong automatic match: both records stand alone and are held for review.") { db, config, link, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, config, ct);
            await new MatchService(hub).UnlinkAsync(parse.GetValue(link), By(), ct);
            Report(parse.GetValue(json), new { Link = parse.GetValue(link), Decision = "unlinked" }, $"link {parse.GetValue(link)} undone: both records are held for review (cdcsync matches list).");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string By() => "cli:" + Environment.UserName;

    private static void Report(bool json, object value, string text)
    {
        if (json)
        {
            CliJson.Write(value);
        }
        else
        {
            Console.WriteLine(text);
        }
    }

    /// <summary>Rows of cdc.match_review as the SQL shapes them: its columns, tab-separated.</summary>
    private static void PrintRows(IReadOnlyList<JsonObject> rows)
    {
        var columns = rows.SelectMany(r => r.Select(p => p.Key)).Distinct(StringComparer.Ordinal).ToList();
        Console.WriteLine(string.Join('\t', columns));
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join('\t', columns.Select(c => row[c] switch
            {
                null => "",
                JsonValue v when v.TryGetValue<string>(out var s) => s,
                var other => other.ToJsonString(),
            })));
        }
    }

    private static (Option<string?> Db, Option<string?> Config) HubOptions()
    {
        var config = CliOptions.MustBeFile(new Option<string?>("--config") { Description = "Pipeline config (JSON) whose Hub:ConnectionString to use, instead of --db." });
        return (CliOptions.Db(), config);
    }

    private static async Task<NpgsqlDataSource> OpenAsync(ParseResult parse, Option<string?> db, Option<string?> config, CancellationToken ct)
    {
        string connectionString;
        string source;
        if (parse.GetValue(config) is { } path)
        {
            connectionString = ConnectorConfig.Bind(ConfigLoader.Build(path)).Hub.ConnectionString;
            source = "Hub:ConnectionString";
        }
        else
        {
            connectionString = CliOptions.HubConnectionString(parse, db);
            source = CliOptions.SourceOf(parse, db);
        }

        await (await HubConnection.OpenAsync(connectionString, source, ct)).DisposeAsync();
        return NpgsqlDataSource.Create(connectionString);
    }
}
