using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync conflicts list|show|resolve</c>: the conflicts the hub decided by policy, and the
/// ones held for manual review. Thin: the engine is <see cref="ConflictService"/>.
/// </summary>
internal static class ConflictsCommand
{
    public static Command Create() => new("conflicts", "Fields changed in both systems since they last agreed: list them, show one, resolve the ones held for review.")
    {
        List(), Show(), Resolve(),
    };

    private static Command List()
    {
        var db = CliOptions.Db();
        var all = new Option<bool>("--all") { Description = "Include conflicts already decided (default: open ones, held for review)." };
        var record = new Option<string?>("--record") { Description = "Only this record (hub id)." };
        var limit = CliOptions.AtLeast(new Option<int>("--limit") { Description = "At most this many, newest first.", DefaultValueFactory = _ => 100 }, 1);
        var json = Json();
        var command = new Command("list", "List conflicts, newest first.") { db, all, record, limit, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            var rows = await new ConflictService(hub).ListAsync(parse.GetValue(all), parse.GetValue(record), parse.GetValue(limit), ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonArray(rows.Select(r => (JsonNode)ToJson(r)).ToArray()).ToJsonString(Pretty));
                return ExitCodes.Ok;
            }

            if (rows.Count == 0)
            {
                Console.WriteLine(parse.GetValue(all) ? "no conflicts." : "no open conflicts.");
                return ExitCodes.Ok;
            }

            Console.WriteLine("id\tstatus\tpolicy\tobject\trecord\tfield\thub value (from)\tincoming value (from)\tdecision");
            foreach (var r in rows)
            {
                Console.WriteLine(string.Join('\t',
                    r.Id.ToString(CultureInfo.InvariantCulture), r.Status, r.Policy, r.Object, r.RecordKey, r.Field,
                    $"{r.HubValue ?? "null"} ({r.HubSystem})", $"{r.IncomingValue ?? "null"} ({r.IncomingSystem})", r.Decision));
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Show()
    {
        var db = CliOptions.Db();
        var id = new Argument<long>("id") { Description = "Conflict id (see conflicts list)." };
        var json = Json();
        var command = new Command("show", "Everything recorded about one conflict.") { db, id, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            var conflict = await new ConflictService(hub).GetAsync(parse.GetValue(id), ct)
                ?? throw new OperatorException($"no conflict with id {parse.GetValue(id)} (see cdcsync conflicts list --all).");
            Print(conflict, parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Resolve()
    {
        var db = CliOptions.Db();
        var id = new Argument<long>("id") { Description = "Conflict id (see conflicts list)." };
        var take = new Option<string?>("--take") { Description = "Keep the value this system holds (salesforce, netsuite, ...)." };
        var value = new Option<string?>("--value") { Description = "Keep this value instead: field=value (empty after '=' means NULL)." };
        var json = Json();
        var command = new Command("resolve", "Decide a conflict held for review; the decision is written to the hub and syncs to both systems.") { db, id, take, value, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var takeValue = parse.GetValue(take);
            var setValue = parse.GetValue(value);
            if ((takeValue is null) == (setValue is null))
            {
                throw new OperatorException("give exactly one of --take <system> or --value <field>=<value>.");
            }

            await using var hub = await OpenAsync(parse, db, ct);
            var service = new ConflictService(hub);
            var by = "cli:" + Environment.UserName;
            ConflictRecord decided;
            if (takeValue is not null)
            {
                decided = await service.ResolveTakingAsync(parse.GetValue(id), takeValue, by, ct);
            }
            else
            {
                var eq = setValue!.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new OperatorException($"--value '{setValue}' is not field=value; write it like --value phone=4155550100.");
                }

                var text = setValue[(eq + 1)..];
                decided = await service.ResolveWithValueAsync(parse.GetValue(id), setValue[..eq], text.Length == 0 ? null : text, by, ct);
            }

            Print(decided, parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true };

    private static Option<bool> Json() => new("--json") { Description = "Print JSON for scripts." };

    private static async Task<NpgsqlDataSource> OpenAsync(ParseResult parse, Option<string?> db, CancellationToken ct)
    {
        var connectionString = CliOptions.HubConnectionString(parse, db);
        // Same reachability/login checks and one-line errors as every verb.
        await (await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct)).DisposeAsync();
        return NpgsqlDataSource.Create(connectionString);
    }

    private static void Print(ConflictRecord r, bool json)
    {
        if (json)
        {
            Console.WriteLine(ToJson(r).ToJsonString(Pretty));
            return;
        }

        Console.WriteLine($"conflict {r.Id}: {r.Status}, policy {r.Policy}, {r.Decision}");
        Console.WriteLine($"  record     {r.Object} {r.RecordKey}, field {r.Field}");
        Console.WriteLine($"  base       {r.BaseValue ?? "null"}   (what both systems last agreed on)");
        Console.WriteLine($"  hub        {r.HubValue ?? "null"}   from {r.HubSystem} at {Stamp(r.HubModifiedAt)}");
        Console.WriteLine($"  incoming   {r.IncomingValue ?? "null"}   from {r.IncomingSystem} at {Stamp(r.IncomingModifiedAt)}");
        Console.WriteLine($"  decided    {(r.Status == "open" ? "(waiting: conflicts resolve " + r.Id + " --take " + r.IncomingSystem + "|" + r.HubSystem + ")" : r.DecidedValue ?? "null")}");
        Console.WriteLine($"  recorded   {Stamp(r.CreatedAt)}" + (r.ResolvedAt is null ? "" : $", resolved {Stamp(r.ResolvedAt)} by {r.ResolvedBy}"));
    }

    private static string Stamp(DateTime? t) => t?.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) ?? "unknown";

    internal static JsonObject ToJson(ConflictRecord r) => new()
    {
        ["id"] = r.Id,
        ["status"] = r.Status,
        ["policy"] = r.Policy,
        ["decision"] = r.Decision,
        ["connector"] = r.Connector,
        ["object"] = r.Object,
        ["recordKey"] = r.RecordKey,
        ["field"] = r.Field,
        ["baseValue"] = Parse(r.BaseValue),
        ["hubValue"] = Parse(r.HubValue),
        ["hubSystem"] = r.HubSystem,
        ["hubModifiedAt"] = r.HubModifiedAt,
        ["incomingValue"] = Parse(r.IncomingValue),
        ["incomingSystem"] = r.IncomingSystem,
        ["incomingModifiedAt"] = r.IncomingModifiedAt,
        ["decidedValue"] = Parse(r.DecidedValue),
        ["createdAt"] = r.CreatedAt,
        ["resolvedAt"] = r.ResolvedAt,
        ["resolvedBy"] = r.ResolvedBy,
    };

    internal static JsonNode? Parse(string? json) => json is null ? null : JsonNode.Parse(json);
}
