namespace CdcSync.Onboarding;

/// <summary>One row of <c>cdc.match_candidates</c>: a record (A) and one candidate (B) for it, with the match's status.</summary>
internal sealed record MatchCandidate
{
    public long Id { get; init; }
    public string ObjectA { get; init; } = "";
    public Guid HubA { get; init; }
    public string? ObjectB { get; init; }
    public Guid? HubB { get; init; }
    public decimal? Score { get; init; }

    /// <summary>JSON: key name -> weight that matched.</summary>
    public string Keys { get; init; } = "{}";
    public string Status { get; init; } = "";
    public Guid? LinkId { get; init; }
    public string? DecidedBy { get; init; }
    public DateTime? DecidedAt { get; init; }
    public DateTime CreatedAt { get; init; }
}
