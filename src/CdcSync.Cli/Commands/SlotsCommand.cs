using System.CommandLine;
using CdcSync.Operations;

namespace CdcSync.Cli.Commands;

/// <summary>Operator verbs for the slot (logic in <see cref="SlotService"/>; backfills: <see cref="ResyncCommand"/>).</summary>
internal static class SlotsCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var listJson = CliOptions.Json();
        var list = new Command("list", "Show replication slots with their position, retained WAL and whether CdcSync created them (a slot CdcSync created that is gone shows as missing).") { db, listJson };
        list.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var slots = await Service(parse, db).ListAsync(ct);
            if (parse.GetValue(listJson))
            {
                CliJson.Write(slots);
                return ExitCodes.Ok;
            }

            Console.WriteLine("slot\tplugin\tactive\tconfirmed\twal_status\tretained\tcdcsync");
            foreach (var s in slots)
            {
                Console.WriteLine($"{s.Slot}\t{s.Plugin ?? "-"}\t{s.Active}\t{s.ConfirmedLsn ?? "-"}\t{s.WalStatus}\t{s.Retained ?? "-"}\t{s.CreatedByCdcSync}");
            }

            return ExitCodes.Ok;
        }));

        var slotOption = new Option<string>("--slot") { Description = "Slot name (Hub:Slot).", Required = true };
        var resetJson = CliOptions.Json();
        var reset = new Command("reset", "Drop a slot CdcSync created and forget it, so the next 'run' creates a new one (then resync the routed tables).") { db, slotOption, resetJson };
        reset.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var slot = parse.GetValue(slotOption)!;
            var was = await Service(parse, db).ResetAsync(slot, ct);
            if (parse.GetValue(resetJson))
            {
                CliJson.Write(new { slot, reset = true, was });
                return ExitCodes.Ok;
            }

            Console.WriteLine($"slot {slot} {(was.WalStatus == "missing" ? "(already gone) forgotten" : "dropped and forgotten")}; the next 'cdcsync run' creates it again. Backfill with 'cdcsync resync --config <file> --connector <name> --table <table>' for each routed table.");
            return ExitCodes.Ok;
        }));

        return new Command("slots", "Inspect and reset replication slots.") { list, reset };
    }

    private static SlotService Service(ParseResult parse, Option<string?> db) =>
        new(CliOptions.HubConnectionString(parse, db), CliOptions.SourceOf(parse, db));
}
