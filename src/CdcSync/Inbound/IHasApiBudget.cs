namespace CdcSync.Inbound;

/// <summary>
/// A connector whose system counts API calls against an allowance and reports it (Salesforce's
/// <c>Sforce-Limit-Info</c>): polling paces itself by it, and the worker exports it as
/// <c>cdcsync_api_calls_used</c> / <c>cdcsync_api_calls_allowed</c>.
/// </summary>
public interface IHasApiBudget
{
    /// <summary>The allowance as the system last reported it; null before it reported one.</summary>
    ApiBudget? Budget { get; }
}

/// <summary>A system's daily API allowance as it last reported it, and what one poll costs.</summary>
public sealed record ApiBudget(long Used, long Max, int CallsPerPoll);
