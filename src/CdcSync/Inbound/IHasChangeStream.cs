namespace CdcSync.Inbound;

/// <summary>
/// An inbound connector whose system can push its changes (Salesforce Change Data Capture). The
/// poller runs the stream beside its polls: while the stream is up it polls only every
/// <see cref="IChangeStream.SafetyPollInterval"/>; while it is down, as usual. The poll cursor stays the
/// source of truth for "nothing missed": a stream that cannot say what happened (a gap, an expired
/// position) asks the poller for a catch-up.
/// </summary>
public interface IHasChangeStream
{
    /// <summary>The stream, or null when none is configured (polling only).</summary>
    IChangeStream? ChangeStream { get; }
}

/// <summary>A subscription that applies a system's changes to the hub as they come.</summary>
public interface IChangeStream
{
    /// <summary>How often the poller still polls while the stream is up.</summary>
    TimeSpan SafetyPollInterval { get; }

    /// <summary>
    /// Subscribes and applies events until cancelled, reconnecting with capped backoff on transient
    /// failures (reporting up and down through <paramref name="link"/>); throws only on a permanent one.
    /// </summary>
    Task RunAsync(ChangeStreamLink link, CancellationToken cancellationToken);
}
