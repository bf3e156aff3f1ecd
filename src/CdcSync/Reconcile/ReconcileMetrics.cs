using Prometheus;

namespace CdcSync.Reconcile;

/// <summary>
/// Drift as the last finished reconcile run of this process found it, per staging table and kind
/// (open conflicts are not drift and not counted). Alert on <c>cdcsync_drift_records &gt; 0</c>.
/// </summary>
internal static class ReconcileMetrics
{
    internal static readonly Gauge DriftRecords = Metrics.CreateGauge(
        "cdcsync_drift_records", "Drift findings of the last finished reconcile run, per staging table and kind (field_differs counts fields).", "table", "kind");

    private static readonly Lock Sync = new();

    public static void Publish(ReconcileResult result)
    {
        if (result.Status is not (ReconcileStatus.Clean or ReconcileStatus.Drift))
        {
            return; // a capped run compared nothing: the last full picture stands
        }

        lock (Sync)
        {
            // Series of the previous run that are clean now go to 0 rather than keeping their count.
            foreach (var labels in DriftRecords.GetAllLabelValues())
            {
                DriftRecords.WithLabels(labels).Set(0);
            }

            foreach (var group in result.Findings.Where(f => f.Drift).GroupBy(f => (f.Object, f.Kind)))
            {
                DriftRecords.WithLabels(group.Key.Object, group.Key.Kind).Set(group.Count());
            }
        }
    }
}
