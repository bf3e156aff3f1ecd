using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Audit;
using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync audit --record &lt;id&gt;</c>: one customer's history across systems; <c>audit purge</c>
/// and <c>audit retention</c> for the trail's retention. Thin: the engine is <see cref="AuditService"/>.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var record = new Option<string?>("--record") { Description = "A hub id, Salesforce Id or NetSuite internal id; shows every change applied to the record and its linked records." };
        var limit = CliOptions.AtLeast(new Option<int>("--limit") { Description = "At most this many changes, oldest first.", DefaultValueFactory = _ => 1000 }, 1);
        var json = CliOptions.Json();
        var command = new Command("audit", "Every change applied to a record, inbound into the hub and outbound into each system.")
        {
            db, record, limit, json, Purge(), Retention(),
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var reference = parse.GetValue(record)
                ?? throw new OperatorException("give the record: cdcsync audit --record <hub id | Salesforce Id | NetSuite id>.");
            await using var hub = await OpenAsync(parse, db, ct);
            var history = await new AuditService(hub).HistoryAsync(reference.Trim(), parse.GetValue(limit), ct);
            if (history.Identities.Count == 0 && history.Entries.Count == 0)
            {
                throw new OperatorException($"no record '{reference}' in the hub's links or audit trail; give a hub id, a Salesforce Id or a NetSuite internal id.");
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(ToJson(history).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return ExitCodes.Ok;
            }

            Console.WriteLine("record");
            foreach (var i in history.Identities)
            {
                Console.WriteLine($"  {i.System,-12} {i.Object,-14} hub {i.HubId}  id {i.RecordId ?? "(not yet assigned)"}");
            }

            Console.WriteLine();
            Console.WriteLine("applied at (UTC)\tfrom -> to\tobject\tid\toperation\tchanges");
            foreach (var e in history.Entries)
            {
                Console.WriteLine(string.Join('\t',
                    e.AppliedAt.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
                    $"{e.SourceSystem} -> {e.TargetSystem}",
                    e.Object,
                    e.RecordId ?? e.RecordKey,
                    e.Operation,
                    Changes(e.Changes)));
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Purge()
    {
        var db = CliOptions.Db();
        var json = CliOptions.Json();
        var command = new Command("purge", "Delete audit rows older than the retention now (writers also do it, at most hourly).") { db, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            var service = new AuditService(hub);
            var deleted = await service.PurgeAsync(ct);
            var retention = await service.RetentionAsync(ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(new { deleted, retention });
                return ExitCodes.Ok;
            }

            Console.WriteLine($"deleted {deleted} audit row(s) older than {retention}.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Retention()
    {
        var db = CliOptions.Db();
        var value = new Argument<string?>("interval") { Description = "New retention, a PostgreSQL interval ('90 days'); omit to show it.", Arity = ArgumentArity.ZeroOrOne };
        var json = CliOptions.Json();
        var command = new Command("retention", "Show or set how long audit rows are kept.") { db, value, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            var service = new AuditService(hub);
            if (parse.GetValue(value) is { } interval)
            {
                await service.SetRetentionAsync(interval, ct);
            }

            var retention = await service.RetentionAsync(ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(new { retention });
                return ExitCodes.Ok;
            }

            Console.WriteLine($"audit retention: {retention}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<NpgsqlDataSource> OpenAsync(ParseResult parse, Option<string?> db, CancellationToken ct)
    {
        var connectionString = CliOptions.HubConnectionString(parse, db);
        await (await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct)).DisposeAsync();
        return NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>"phone: 111 -> 222; name: null -> Acme".</summary>
    private static string Changes(string? json)
    {
        if (json is null || JsonNode.Parse(json) is not JsonObject changes)
        {
            return "";
        }

        return string.Join("; ", changes.Select(c =>
            $"{c.Key}: {Value(c.Value?["before"])} -> {Value(c.Value?["after"])}"));
    }

    private static string Value(JsonNode? v) => v switch
    {
        null => "null",
        JsonValue s when s.GetValueKind() == JsonValueKind.String => s.GetValue<string>(),
        _ => v.ToJsonString(),
    };

    private static JsonObject ToJson(AuditHistory h) => new()
    {
        ["identities"] = new JsonArray(h.Identities.Select(i => (JsonNode)new JsonObject
        {
            ["system"] = i.System, ["object"] = i.Object, ["hubId"] = i.HubId, ["recordId"] = i.RecordId,
        }).ToArray()),
        ["changes"] = new JsonArray(h.Entries.Select(e => (JsonNode)new JsonObject
        {
            ["id"] = e.Id,
            ["appliedAt"] = e.AppliedAt,
            ["direction"] = e.Direction,
            ["connector"] = e.Connector,
            ["from"] = e.SourceSystem,
            ["to"] = e.TargetSystem,
            ["object"] = e.Object,
            ["hubId"] = e.RecordKey,
            ["recordId"] = e.RecordId,
            ["operation"] = e.Operation,
            ["changes"] = ConflictsCommand.Parse(e.Changes),
        }).ToArray()),
    };
}
