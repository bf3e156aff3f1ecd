using Prometheus;

namespace CdcSync.Inbound;

/// <summary>What the inbound side exports per connector, for alerts on polling that stopped or fell behind.</summary>
internal static class InboundMetrics
{
    public static readonly Counter InboundPolls = Metrics.CreateCounter(
        "cdcsync_inbound_polls_total", "Polls of a system for changes, successful or not.", "connector");

    public static readonly Counter InboundPollFailures = Metrics.CreateCounter(
        "cdcsync_inbound_poll_failures_total", "Polls that failed (the system, the network or the hub); retried with backoff.", "connector");

    public static readonly Counter InboundRecords = Metrics.CreateCounter(
        "cdcsync_inbound_records_total", "Records read from a system and written to the hub's staging tables.", "connector");

    public static readonly Gauge InboundStreamUp = Metrics.CreateGauge(
        "cdcsync_inbound_stream_up", "1 while a system's change stream (Salesforce Pub/Sub) is subscribed, 0 while it is down and polling carries the changes.", "connector");

    public static readonly Gauge InboundLagSeconds = Metrics.CreateGauge(
        "cdcsync_inbound_lag_seconds", "Seconds since a poll last read a system up to its newest change (0 right after one; grows while polls fail or a backlog is read).", "connector");
}
