namespace CdcSync.Resilience;

/// <summary>What the worker does after a failure: wait and try again, or stop and tell the operator.</summary>
public enum FailureKind
{
    /// <summary>The server or the network will come back by itself: retry forever with backoff.</summary>
    Transient,

    /// <summary>Only the operator can fix it (grants, missing objects, bad config): one line, exit code 2.</summary>
    Permanent,
}
