namespace CdcSync.Scheduling;

/// <summary>
/// Jobs that come and go while the worker runs (one per deployed check): <see cref="JobScheduler"/>
/// lists them at start and again every <see cref="JobScheduler.RefreshInterval"/>, so what
/// `cdcsync migrate` deploys is scheduled without a restart.
/// </summary>
public interface IScheduledJobSource
{
    /// <summary>The jobs as deployed now. Throws on a transient failure (the scheduler keeps the jobs it has).</summary>
    Task<IReadOnlyList<IScheduledJob>> ListAsync(CancellationToken cancellationToken);
}
