using System.Globalization;
using System.Text.Json;
using CdcSync.Reconcile;
using Microsoft.AspNetCore.Mvc;

namespace CdcSync.WebConsole.Pages;

/// <summary>
/// Reconcile drift: the newest runs and the findings of one, each with the repair
/// <c>cdcsync reconcile --repair</c> makes. Operators repair a record or a run here: a repair writes
/// the record as the system holds it, which only a new run reads (each run's scratch copy of the
/// systems is dropped when it ends), so it is a new run reading every system in full, and the page
/// waits for it; on large systems the CLI command shown does the same.
/// </summary>
public sealed class DriftModel : ConsolePage
{
    internal DriftView Data { get; private set; } = new([], null, []);

    public string? LoadProblem { get; private set; }

    public async Task OnGetAsync(long? run, CancellationToken cancellationToken)
    {
        try
        {
            Data = await Get<ConsoleReads>().DriftAsync(run, cancellationToken);
        }
        catch (OperatorException e)
        {
            LoadProblem = e.Message;
            Data = await Get<ConsoleReads>().DriftAsync(null, cancellationToken);
        }
    }

    /// <summary>As `cdcsync reconcile --record ID --repair`.</summary>
    public Task<IActionResult> OnPostRepairRecordAsync(long run, string? record, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Operator, async () => Outcome(await Get<ConsoleActions>().RepairAsync(
            UserName, run, string.IsNullOrEmpty(record) ? throw new OperatorException("name the record to repair.") : record, cancellationToken)));

    /// <summary>As `cdcsync reconcile --repair`, narrowed as run <paramref name="run"/> was.</summary>
    public Task<IActionResult> OnPostRepairRunAsync(long run, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Operator, async () => Outcome(await Get<ConsoleActions>().RepairAsync(UserName, run, null, cancellationToken)));

    private static string Outcome(ReconcileResult r) => r.Status == ReconcileStatus.Capped
        ? $"Repair run {r.RunId} stopped at the API call cap ({r.MaxApiCalls}) before every system was read; nothing was compared or written."
        : $"Repair run {r.RunId}: {r.Repairs.Count} repair write(s) made; {r.DriftCount} drift finding(s) found before the repair.";

    internal IEnumerable<IGrouping<string, ReconcileFinding>> Groups =>
        Data.Findings.GroupBy(f => f.Kind).OrderBy(g => g.Key == "open_conflict").ThenBy(g => Array.IndexOf(Kinds, g.Key));

    private static readonly string[] Kinds = ["field_differs", "missing_in_system", "missing_in_hub", "unlinked", "dangling_link", "open_conflict"];

    public static string KindTitle(string kind) => kind switch
    {
        "field_differs" => "Field differs (system vs hub)",
        "missing_in_system" => "Record missing in its system",
        "missing_in_hub" => "Record missing in the hub",
        "unlinked" => "Record linked to nothing",
        "dangling_link" => "Link to a record that is gone",
        "open_conflict" => "Open conflicts (known, waiting for a decision: not drift)",
        _ => kind,
    };

    /// <summary>What --repair does about a finding (ReconcileRepairer, docs/operations.md "Reconcile").</summary>
    internal static string RepairText(ReconcileFinding f) => f.Repair switch
    {
        "late_edit" => $"late edit: the record as {f.System} holds it is written into the hub, dated now, and flows to the other systems",
        "apply_delete" => $"apply the delete {f.System} never reported, by the mapping's delete rule",
        "recreate" => $"re-create the record in {f.System} from the hub",
        "late_create" => $"late creation: the record {f.System} holds is written into the hub and flows to the other systems",
        null when f.Kind == "open_conflict" => "none: decide the conflict",
        null => "none: an operator's decision (link or remove the record by hand)",
        var other => other,
    };

    /// <summary>The command that repairs one finding's record (a run narrowed to the record repairs only it).</summary>
    internal static string RecordCommand(ReconcileFinding f) =>
        $"cdcsync reconcile --config FILE --record {f.RecordId ?? f.HubId?.ToString()} --repair";

    /// <summary>The command that repairs what the run found, narrowed as the run was.</summary>
    internal static string RunCommand(ReconcileRun run)
    {
        using var scope = JsonDocument.Parse(run.Scope);
        var narrowed = string.Concat(scope.RootElement.EnumerateObject().Select(p => $" --{p.Name} {p.Value.GetString()}"));
        return $"cdcsync reconcile --config FILE{narrowed} --repair";
    }

    internal static bool Repairable(ReconcileFinding f) => f.Drift && f.Repair is not null && f.RepairedAt is null && (f.RecordId ?? f.HubId?.ToString()) is not null;

    public static string Stamp(DateTime? at) => at is { } t ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "";
}
