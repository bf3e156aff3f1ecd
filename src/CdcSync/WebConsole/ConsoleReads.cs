using CdcSync.Audit;
using CdcSync.Checks;
using CdcSync.Configuration;
using CdcSync.Conflicts;
using CdcSync.Onboarding;
using CdcSync.Operations;
using CdcSync.Reconcile;
using CdcSync.Scheduling;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.WebConsole;

/// <summary>Everything one overview shows: the hub's status and the last hour of history.</summary>
internal sealed record Overview(
    HubStatus Status, IReadOnlyList<StatusSample> History, IReadOnlyList<JobRun> Jobs, IReadOnlyList<ResyncJob> Resyncs, IReadOnlyList<AuditEntry> RecentActions, DateTime Now,
    ReconcileRun? LastReconcile, IReadOnlyList<DeployedCheck> Checks);

/// <summary>The drift page: the newest reconcile runs and the findings (masked) of one of them.</summary>
internal sealed record DriftView(IReadOnlyList<ReconcileRun> Runs, ReconcileRun? Run, IReadOnlyList<ReconcileFinding> Findings);

/// <summary>The checks page: each deployed check with its last run, and that run's sample rows (masked JSON arrays by check name).</summary>
internal sealed record ChecksView(IReadOnlyList<DeployedCheck> Checks, IReadOnlyDictionary<string, string> Samples);

/// <summary>A record's journey: its linked rows, each row's current values (masked) and the audit timeline.</summary>
internal sealed record RecordView(string Reference, AuditHistory History, IReadOnlyDictionary<string, string?> CurrentRows, IReadOnlyList<ConflictRecord> Conflicts);

/// <summary>
/// What the console's pages read, each from the engine service the CLI verb uses (status,
/// conflicts, dead letters, audit, matches); no page holds a query.
/// </summary>
internal sealed class ConsoleReads(NpgsqlDataSource hub, CdcSyncOptions options, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The thresholds `cdcsync status` uses by default.</summary>
    private static readonly StatusThresholds Thresholds = new(TimeSpan.FromMinutes(5), 1L << 30);

    public async Task<Overview> OverviewAsync(CancellationToken cancellationToken)
    {
        var status = await new StatusService(options.Hub.ConnectionString, options, _time).GetAsync(Thresholds, cancellationToken);
        var history = await StatusHistory.ReadAsync(hub, StatusHistory.Kept, cancellationToken);
        var jobs = await JobRunHistory.LatestAsync(hub, options.Hub.Slot, cancellationToken);
        var resyncs = await new ResyncService(options, NullLogger.Instance).RecentAsync(10, cancellationToken);
        var actions = await new AuditService(hub).RecentActionsAsync(10, cancellationToken);
        var reconcile = (await Reconcile().RunsAsync(10, cancellationToken)).FirstOrDefault(r => r.FinishedAt is not null);
        var checks = await Checks().ListAsync(cancellationToken);
        return new Overview(status, history, jobs, resyncs, actions, _time.GetUtcNow().UtcDateTime, reconcile, checks);
    }

    /// <summary>The newest runs and the findings of <paramref name="runId"/>, else of the newest finished run.</summary>
    public async Task<DriftView> DriftAsync(long? runId, CancellationToken cancellationToken)
    {
        var service = Reconcile();
        var runs = await service.RunsAsync(20, cancellationToken);
        var run = runId is { } id
            ? runs.FirstOrDefault(r => r.RunId == id) ?? throw new OperatorException($"reconcile run {id} is not among the newest {runs.Count}; pick one from the list.")
            : runs.FirstOrDefault(r => r.FinishedAt is not null);
        var findings = run is null ? [] : await service.FindingsAsync(run.RunId, masked: true, cancellationToken);
        return new DriftView(runs, run, findings);
    }

    public async Task<ChecksView> ChecksAsync(CancellationToken cancellationToken)
    {
        var runner = Checks();
        return new ChecksView(await runner.ListAsync(cancellationToken), await runner.LastSamplesMaskedAsync(cancellationToken));
    }

    private ReconcileService Reconcile() => new(hub, NullLogger<ReconcileService>.Instance, _time);

    /// <summary>Reads only: who runs a check is named where one is run (ConsoleActions).</summary>
    private CheckRunner Checks() => new(hub, "console", _time);

    public Task<IReadOnlyList<ConflictRecord>> ConflictsAsync(bool all, CancellationToken cancellationToken) =>
        new ConflictService(hub).ListAsync(all, null, 200, cancellationToken);

    public Task<IReadOnlyList<DeadLetter>> DeadLettersAsync(bool all, CancellationToken cancellationToken) =>
        new DeadLetterService(options.Hub.ConnectionString, "Hub:ConnectionString").ListAsync(null, all, cancellationToken);

    public Task<IReadOnlyList<System.Text.Json.Nodes.JsonObject>> MatchReviewsAsync(CancellationToken cancellationToken) =>
        new MatchService(hub).ListAsync(cancellationToken);

    /// <summary>A record by any of its ids: a hub id, a Salesforce Id, a NetSuite internal id.</summary>
    public async Task<RecordView> RecordAsync(string reference, CancellationToken cancellationToken)
    {
        var audit = new AuditService(hub);
        var history = await audit.HistoryAsync(reference, 500, cancellationToken);
        var rows = new Dictionary<string, string?>(StringComparer.Ordinal);
        var conflicts = new List<ConflictRecord>();
        var service = new ConflictService(hub);
        foreach (var identity in history.Identities)
        {
            if (Guid.TryParse(identity.HubId, out var hubId))
            {
                rows[identity.Object] = await audit.CurrentRowAsync(identity.Object, hubId, cancellationToken);
            }

            conflicts.AddRange(await service.ListAsync(true, identity.HubId, 50, cancellationToken));
        }

        return new RecordView(reference, history, rows, conflicts);
    }
}
