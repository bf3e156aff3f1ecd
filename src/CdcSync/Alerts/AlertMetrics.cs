using Prometheus;

namespace CdcSync.Alerts;

/// <summary>The alert evaluator's Prometheus metrics.</summary>
internal static class AlertMetrics
{
    public static readonly Gauge Open = Metrics.CreateGauge(
        "cdcsync_alerts_open", "Problems open at the last evaluation (alerted or not yet delivered).");

    public static readonly Counter Deliveries = Metrics.CreateCounter(
        "cdcsync_alert_deliveries_total", "Alert deliveries by outcome (sent: the receiver answered 2xx; failed: after all retries).", "outcome");
}
