using Prometheus;

namespace CdcSync.Pipeline;

/// <summary>
/// The worker's Prometheus metrics (served on Hub:MetricsUrl /metrics). Counters are bumped where
/// the work happens (the connector writer); gauges are refreshed by the worker's progress loop.
/// Names follow Prometheus conventions: _total for counters, base units (bytes, seconds).
/// </summary>
internal static class PipelineMetrics
{
    public static readonly Counter ChangesReceived = Metrics.CreateCounter(
        "cdcsync_changes_received_total", "Changes the router handed to a connector (in).", "connector");

    public static readonly Counter ChangesApplied = Metrics.CreateCounter(
        "cdcsync_changes_applied_total", "Changes a connector made durable at its target (out).", "connector");

    public static readonly Histogram BatchDuration = Metrics.CreateHistogram(
        "cdcsync_batch_duration_seconds", "Time a connector took to write and commit one batch.",
        new HistogramConfiguration { LabelNames = ["connector"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });

    public static readonly Gauge LagBytes = Metrics.CreateGauge(
        "cdcsync_lag_bytes", "WAL bytes between what the worker has read and what the connector has applied (0 when caught up).", "connector");

    public static readonly Gauge LagSeconds = Metrics.CreateGauge(
        "cdcsync_lag_seconds", "Age of the oldest change not yet applied by the connector (0 when caught up).", "connector");

    public static readonly Counter Restarts = Metrics.CreateCounter(
        "cdcsync_pipeline_restarts_total", "Times the pipeline restarted from the slot after a failure (retries).");

    public static readonly Gauge BuildInfo = Metrics.CreateGauge(
        "cdcsync_build_info", "Always 1; the labels say which CdcSync build this worker runs.", "version");

    public static readonly Gauge ApiCallsUsed = Metrics.CreateGauge(
        "cdcsync_api_calls_used", "API calls counted against the system's daily allowance, as the system last reported (Salesforce: Sforce-Limit-Info).", "connector");

    public static readonly Gauge ApiCallsAllowed = Metrics.CreateGauge(
        "cdcsync_api_calls_allowed", "The system's daily API allowance, as it last reported.", "connector");

    public static readonly Gauge DeadLetters = Metrics.CreateGauge(
        "cdcsync_dead_letters_open", "Open dead letters per connector.", "connector");

    public static readonly Gauge Conflicts = Metrics.CreateGauge(
        "cdcsync_conflicts_open", "Open conflicts waiting for review per connector.", "connector");

    public static readonly Gauge ReplayWindowBytes = Metrics.CreateGauge(
        "cdcsync_replay_window_bytes", "WAL bytes the slot retains for replay (current WAL position minus the slot's confirmed position).");

    public static readonly Gauge Streaming = Metrics.CreateGauge(
        "cdcsync_streaming", "1 while this worker holds the lease and streams the slot, else 0.");

    public static readonly Gauge CircuitOpen = Metrics.CreateGauge(
        "cdcsync_circuit_open", "1 while a connector's circuit breaker is open (calls to its system are refused).", "connector");
}
