namespace CdcSync.Onboarding;

/// <summary>One line of <c>cdc.onboard_report</c>: a matched pair, a record held for review, a record to create on one side, or a field difference inside a matched pair.</summary>
internal sealed record ReportLine
{
    /// <summary>'matched', 'review', 'create_in_salesforce', 'create_in_netsuite' or 'difference'.</summary>
    public string Section { get; init; } = "";
    public string? Object { get; init; }
    public Guid? HubId { get; init; }
    public string? OtherObject { get; init; }
    public Guid? OtherHubId { get; init; }
    public string? Label { get; init; }
    public string? Field { get; init; }
    public string? Value { get; init; }
    public string? OtherValue { get; init; }
    public string? Settlement { get; init; }
    public decimal? Score { get; init; }
}

/// <summary>A row of what <c>cdc.onboard_match()</c> or <c>cdc.onboard_settle()</c> did: outcome, object, how many.</summary>
internal sealed record OnboardingOutcome
{
    public string Outcome { get; init; } = "";
    public string? Object { get; init; }
    public long Count { get; init; }
}

/// <summary>What an onboarding did (or, in a dry run, would do).</summary>
internal sealed record OnboardingResult
{
    public bool DryRun { get; init; }

    /// <summary>Connectors this run loaded and matched; empty when every one was already onboarded.</summary>
    public IReadOnlyList<string> Connectors { get; init; } = [];

    /// <summary>Records written into the hub per connector by this run (a resumed load counts what it read after the resume).</summary>
    public IReadOnlyDictionary<string, long> Loaded { get; init; } = new Dictionary<string, long>();

    public IReadOnlyList<OnboardingOutcome> Matched { get; init; } = [];

    public IReadOnlyList<ReportLine> Report { get; init; } = [];

    /// <summary>What the settlement did; empty in a dry run.</summary>
    public IReadOnlyList<OnboardingOutcome> Settled { get; init; } = [];

    /// <summary>Records held for review after this run (they wait: nothing is created or linked for them).</summary>
    public long OpenReviews { get; init; }

    /// <summary>Every onboarded connector is settled (false in a dry run).</summary>
    public bool IsSettled { get; init; }

    /// <summary>Reading the systems into the hub.</summary>
    public TimeSpan LoadTime { get; init; }

    /// <summary>Matching and computing the report.</summary>
    public TimeSpan MatchTime { get; init; }

    /// <summary>Settling (zero in a dry run).</summary>
    public TimeSpan SettleTime { get; init; }

    public int Count(string section) => Report.Count(l => l.Section == section);
}
