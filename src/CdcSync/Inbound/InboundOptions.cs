using System.ComponentModel.DataAnnotations;
using CdcSync.Configuration;

namespace CdcSync.Inbound;

/// <summary>
/// The inbound side of a connector (config section <c>Connectors:{name}:Inbound</c>): whether it
/// runs, how far behind its cursor it re-reads, and how it spends the system's API allowance.
/// </summary>
public sealed class InboundOptions
{
    /// <summary>Poll the system for changes. Default false.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Each scan starts this far behind the newest modified stamp read, so a change that became
    /// visible late (a transaction committed after a later one was read, a second-precision stamp)
    /// is still read; what was already applied (record id + stamp + content) is dropped. Default 5 s.
    /// </summary>
    [DurationRange("0", "1h")]
    public TimeSpan OverlapWindow { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>While polls come back empty the interval doubles from Hub:InboundPollInterval up to this; any change read resets it. Default 1 minute.</summary>
    [DurationRange("1ms", "1d")]
    public TimeSpan MaxIdleInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Share of the system's daily API allowance (when the system reports one, e.g. Salesforce's
    /// DailyApiRequests) an idle worker may spend on polling: idle polls are spaced so that a day of
    /// them costs at most this share. 0.0001..1, default 0.05 (5 %).
    /// </summary>
    [Range(0.0001, 1.0)]
    public double IdleApiShare { get; set; } = 0.05;

    /// <summary>
    /// Records per cursor kept to drop re-reads of the overlap window. Past it re-reads are applied
    /// again, harmlessly on tables under the sync base (transforms/005_sync_tracking.sql): a re-read
    /// value equal to the field's base keeps the hub's newer pending value and is no conflict.
    /// Default 10000.
    /// </summary>
    [Range(100, 1_000_000)]
    public int MaxSeenRecords { get; set; } = 10_000;
}
