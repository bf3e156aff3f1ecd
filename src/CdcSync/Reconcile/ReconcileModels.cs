namespace CdcSync.Reconcile;

/// <summary>What a reconcile run is asked to do.</summary>
internal sealed record ReconcileRequest
{
    /// <summary>Report only this staging table (the systems are still read in full).</summary>
    public string? Table { get; init; }

    /// <summary>Report only this record: a hub id or a system id, with the records linked to it.</summary>
    public string? Record { get; init; }

    /// <summary>Bring the systems and the hub back to agreement (<see cref="ReconcileRepairer"/>).</summary>
    public bool Repair { get; init; }

    /// <summary>Repair a record removed without a trace by re-creating it (<c>Reconcile:RecreateMissing</c>), not by the delete rule.</summary>
    public bool RecreateMissing { get; init; }

    /// <summary>With <see cref="Repair"/>: list the writes, make none.</summary>
    public bool DryRun { get; init; }

    /// <summary>Where the run came from: 'cli' or 'schedule'.</summary>
    public string Trigger { get; init; } = "cli";
}

/// <summary>One row of <c>cdc.reconcile_findings</c> (kinds: see migrations/0033_reconcile.sql).</summary>
internal sealed record ReconcileFinding
{
    public long Id { get; init; }
    public string Kind { get; init; } = "";
    public bool Drift { get; init; }
    public string Object { get; init; } = "";
    public string? System { get; init; }
    public Guid? HubId { get; init; }
    public string? RecordId { get; init; }
    public Guid? LinkId { get; init; }
    public string? Field { get; init; }
    public string? SystemValue { get; init; }
    public string? HubValue { get; init; }
    public DateTime? SystemModifiedAt { get; init; }
    public DateTime? HubModifiedAt { get; init; }
    public string? Repair { get; init; }
    public DateTime? RepairedAt { get; init; }
}

/// <summary>One row of <c>cdc.reconcile_runs</c>.</summary>
internal sealed record ReconcileRun
{
    public long RunId { get; init; }
    public DateTime StartedAt { get; init; }
    public DateTime? FinishedAt { get; init; }

    /// <summary>cli or schedule.</summary>
    public string Trigger { get; init; } = "";

    /// <summary>{"table": .., "record": ..} when narrowed, else {}.</summary>
    public string Scope { get; init; } = "{}";
    public bool Repair { get; init; }
    public bool DryRun { get; init; }

    /// <summary>running, or a <see cref="ReconcileStatus"/>.</summary>
    public string Status { get; init; } = "";
    public long RecordsRead { get; init; }
    public long DriftCount { get; init; }
    public long OpenConflicts { get; init; }
    public long Repaired { get; init; }
    public long ApiCalls { get; init; }
    public long? MaxApiCalls { get; init; }
    public string? Error { get; init; }
}

/// <summary>One write of a repair: a record written into its staging table through the inbound path.</summary>
/// <param name="Connector">The inbound connector whose origin the write carries.</param>
/// <param name="Action">late_edit, apply_delete, recreate or late_create.</param>
/// <param name="Fields">The fields that differed (late_edit).</param>
internal sealed record RepairAction(string Connector, string Action, string Object, string? RecordId, Guid? HubId, IReadOnlyList<string> Fields);

/// <summary>How a run ended.</summary>
internal static class ReconcileStatus
{
    public const string Clean = "clean";
    public const string Drift = "drift";
    public const string Capped = "capped";
    public const string Failed = "failed";
}

/// <summary>What a reconcile run found (and, with repair, did).</summary>
internal sealed record ReconcileResult
{
    public long RunId { get; init; }

    /// <summary><see cref="ReconcileStatus"/>: clean, drift or capped.</summary>
    public string Status { get; init; } = "";

    public bool Repair { get; init; }

    public bool DryRun { get; init; }

    /// <summary>Records read per connector.</summary>
    public IReadOnlyDictionary<string, long> Read { get; init; } = new Dictionary<string, long>();

    public long ApiCalls { get; init; }

    public long? MaxApiCalls { get; init; }

    /// <summary>Drift and open conflicts (<see cref="ReconcileFinding.Drift"/> false), as found before any repair.</summary>
    public IReadOnlyList<ReconcileFinding> Findings { get; init; } = [];

    /// <summary>The writes the repair made (or, in a dry run, would make).</summary>
    public IReadOnlyList<RepairAction> Repairs { get; init; } = [];

    public TimeSpan ReadTime { get; init; }

    public TimeSpan CompareTime { get; init; }

    public long DriftCount => Findings.Count(f => f.Drift);

    public long OpenConflicts => Findings.Count(f => f.Kind == "open_conflict");
}
