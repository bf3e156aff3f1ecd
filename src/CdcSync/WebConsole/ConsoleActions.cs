using System.Text.Json.Nodes;
using CdcSync.Audit;
using CdcSync.Checks;
using CdcSync.Conflicts;
using CdcSync.Configuration;
using CdcSync.Onboarding;
using CdcSync.Operations;
using CdcSync.Reconcile;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.WebConsole;

/// <summary>
/// What a person can do in the console, each through the engine service the CLI verb uses, then
/// recorded in the audit trail under the person's name. The role check is the page's (before it
/// calls here); this class is the one place an action and its audit row are written together.
/// </summary>
internal sealed class ConsoleActions(NpgsqlDataSource hub, CdcSyncOptions options, ILoggerFactory loggers)
{
    private readonly AuditService _audit = new(hub);

    /// <summary>Decides conflict <paramref name="id"/> with the value <paramref name="system"/> holds.</summary>
    public async Task<ConflictRecord> ResolveTakingAsync(string user, long id, string system, CancellationToken cancellationToken)
    {
        var decided = await new ConflictService(hub).ResolveTakingAsync(id, system, Actor(user), cancellationToken);
        await RecordConflictAsync(user, decided, cancellationToken);
        return decided;
    }

    /// <summary>Decides conflict <paramref name="id"/> with a value the person typed (text in the column's type; null for NULL).</summary>
    public async Task<ConflictRecord> ResolveWithValueAsync(string user, long id, string field, string? value, CancellationToken cancellationToken)
    {
        var decided = await new ConflictService(hub).ResolveWithValueAsync(id, field, value, Actor(user), cancellationToken);
        await RecordConflictAsync(user, decided, cancellationToken);
        return decided;
    }

    /// <summary>Queues a one-row resync of each dead letter's current hub row to the connector that rejected it.</summary>
    public async Task<int> RetryDeadLettersAsync(string user, IReadOnlyList<long> ids, CancellationToken cancellationToken)
    {
        var service = new DeadLetterService(options.Hub.ConnectionString, "Hub:ConnectionString");
        var retried = await service.RetryAsync(ids, new ResyncService(options, loggers.CreateLogger<ConsoleActions>()), cancellationToken);
        foreach (var (id, obj, hubId, job) in retried)
        {
            await _audit.RecordActionAsync(user, "retry dead letter", Bare(obj), hubId.ToString(), null, new JsonObject { ["dead_letter"] = id, ["resync_job"] = job }, cancellationToken);
        }

        return retried.Count;
    }

    public async Task<int> DiscardDeadLettersAsync(string user, IReadOnlyList<long> ids, CancellationToken cancellationToken)
    {
        var service = new DeadLetterService(options.Hub.ConnectionString, "Hub:ConnectionString");
        var letters = (await service.ListAsync(null, false, cancellationToken)).Where(l => ids.Contains(l.Id)).ToList();
        await service.DiscardAsync(ids, cancellationToken);
        foreach (var letter in letters)
        {
            await _audit.RecordActionAsync(user, "discard dead letter", Bare(letter.Object), letter.RecordKey, null, new JsonObject { ["dead_letter"] = letter.Id, ["connector"] = letter.Connector }, cancellationToken);
        }

        return ids.Count;
    }

    public async Task AcceptMatchAsync(string user, long id, Guid? with, CancellationToken cancellationToken)
    {
        var service = new MatchService(hub);
        var (candidates, _) = await service.ShowAsync(id, cancellationToken);
        var link = await service.AcceptAsync(id, with, Actor(user), cancellationToken);
        var row = candidates.First(c => c.Id == id);
        await _audit.RecordActionAsync(user, "accept match", row.ObjectA, row.HubA.ToString(), null, new JsonObject { ["match"] = id, ["with"] = with?.ToString(), ["link"] = link.ToString() }, cancellationToken);
    }

    public async Task RejectMatchAsync(string user, long id, CancellationToken cancellationToken)
    {
        var service = new MatchService(hub);
        var (candidates, _) = await service.ShowAsync(id, cancellationToken);
        await service.RejectAsync(id, Actor(user), cancellationToken);
        var row = candidates.First(c => c.Id == id);
        await _audit.RecordActionAsync(user, "reject match", row.ObjectA, row.HubA.ToString(), null, new JsonObject { ["match"] = id }, cancellationToken);
    }

    /// <summary>Runs deployed check <paramref name="name"/> now, as `cdcsync checks run --name NAME` does; the run is recorded in cdc.check_runs as run by console:USER.</summary>
    public async Task<CheckRunResult> RunCheckAsync(string user, string name, CancellationToken cancellationToken)
    {
        var runner = new CheckRunner(hub, Actor(user));
        var checks = await runner.ListAsync(cancellationToken);
        var check = checks.FirstOrDefault(c => c.Name == name)
            ?? throw new OperatorException($"no deployed check is named '{name}'; deployed: {string.Join(", ", checks.Select(c => c.Name))} (checks/*.sql, deployed by 'cdcsync migrate').");
        var result = await runner.RunAsync(check, cancellationToken);
        await _audit.RecordActionAsync(
            user, "run check", "checks", check.Name, null,
            new JsonObject { ["check"] = check.Name, ["check_run"] = result.RunId, ["failing_rows"] = result.FailingRows, ["error"] = result.Error }, cancellationToken);
        return result;
    }

    /// <summary>
    /// Repairs drift as `cdcsync reconcile --repair` does (<see cref="ReconcileService"/>, each write
    /// audited as reconcile:&lt;repair&gt;): of one record (<paramref name="record"/>: its system id or
    /// hub id) or, without one, of what run <paramref name="runId"/> covered. A repair writes the
    /// record as its system holds it now, so this is a new run that reads every system in full; the
    /// run is recorded with trigger 'cli' (the hub knows no other manual trigger) and the person in
    /// the audit trail.
    /// </summary>
    public async Task<ReconcileResult> RepairAsync(string user, long runId, string? record, CancellationToken cancellationToken)
    {
        var service = new ReconcileService(hub, loggers.CreateLogger<ReconcileService>());
        var run = (await service.RunsAsync(50, cancellationToken)).FirstOrDefault(r => r.RunId == runId)
            ?? throw new OperatorException($"reconcile run {runId} is not among the newest 50; repair from the CLI: cdcsync reconcile --config FILE --repair.");
        using var scope = System.Text.Json.JsonDocument.Parse(run.Scope);
        var request = new ReconcileRequest
        {
            Table = record is null && scope.RootElement.TryGetProperty("table", out var table) ? table.GetString() : null,
            Record = record ?? (scope.RootElement.TryGetProperty("record", out var only) ? only.GetString() : null),
            Repair = true,
            RecreateMissing = options.Reconcile.RecreateMissing,
        };
        var budget = new ApiCallBudget(options.Reconcile.MaxApiCalls);
        using var readers = ReconcileConnectors.Create(options, hub, budget, loggers);
        // Repairs write rows the systems must receive: the slot must exist before the first.
        await OnboardingSlot.EnsureAsync(options, loggers.CreateLogger<ConsoleActions>(), cancellationToken);
        var result = await service.RunAsync(readers.Connectors, budget, request, null, cancellationToken);
        await _audit.RecordActionAsync(
            user, "reconcile repair", request.Table ?? "reconcile", request.Record ?? $"run {runId}", request.Record,
            new JsonObject { ["from_run"] = runId, ["run"] = result.RunId, ["status"] = result.Status, ["writes"] = result.Repairs.Count, ["api_calls"] = result.ApiCalls },
            cancellationToken);
        return result;
    }

    /// <summary>How a console user appears where the CLI writes "cli:NAME" (resolved_by, decided_by).</summary>
    public static string Actor(string user) => "console:" + user;

    private Task RecordConflictAsync(string user, ConflictRecord decided, CancellationToken cancellationToken)
    {
        // The decided value under the field's own name, so cdc.mask_record masks it when the field is sensitive.
        var details = new JsonObject { ["conflict"] = decided.Id, ["decision"] = decided.Decision };
        if (decided.Field is { } field)
        {
            details[field] = decided.DecidedValue is null ? null : JsonNode.Parse(decided.DecidedValue);
        }

        return _audit.RecordActionAsync(user, "resolve conflict", decided.Object, decided.RecordKey, null, details, cancellationToken);
    }

    /// <summary>Dead letters name a table as the connector saw it (public.sf_accounts); the audit trail uses the bare name.</summary>
    private static string Bare(string obj) => obj.Contains('.', StringComparison.Ordinal) ? obj[(obj.LastIndexOf('.') + 1)..] : obj;
}
