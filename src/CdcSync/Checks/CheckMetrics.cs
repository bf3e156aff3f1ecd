using Prometheus;

namespace CdcSync.Checks;

/// <summary>The checks' Prometheus metrics, set after each run (worker or CLI in the same process).</summary>
internal static class CheckMetrics
{
    public static readonly Gauge FailingRows = Metrics.CreateGauge(
        "cdcsync_check_failing_rows", "Rows the check's query returned on its last run (0 = passing).", "check");

    public static readonly Gauge LastRun = Metrics.CreateGauge(
        "cdcsync_check_last_run_timestamp_seconds", "When the check last ran (Unix time), whatever the outcome.", "check");

    public static readonly Gauge Duration = Metrics.CreateGauge(
        "cdcsync_check_duration_seconds", "How long the check's last run took.", "check");

    public static readonly Counter Errors = Metrics.CreateCounter(
        "cdcsync_check_errors_total", "Runs of the check that failed (a query error, a timeout, its view missing).", "check");
}
