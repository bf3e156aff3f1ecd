using Npgsql;

namespace CdcSync.Alerts;

/// <summary>
/// One kind of problem the alert evaluator watches (failing checks, dead letters, ...). Each round
/// it returns every problem open now; a problem it no longer returns is resolved. A source that
/// throws resolves nothing that round.
/// </summary>
internal interface IAlertSource
{
    /// <summary>The prefix of its keys (<c>checks</c> gives <c>check:NAME</c> keys under source <c>checks</c>); stable, it is kept with each alert.</summary>
    string Name { get; }

    /// <param name="hub">An open connection to the hub.</param>
    /// <param name="now">The evaluator's clock (a TimeProvider), for thresholds on ages.</param>
    Task<IReadOnlyList<AlertProblem>> OpenProblemsAsync(NpgsqlConnection hub, DateTimeOffset now, CancellationToken cancellationToken);
}
