namespace CdcSync.Resilience;

/// <summary>
/// A failure that knows whether trying again can help (a system API's refusal, throttling, an
/// outage). <see cref="FailureClassifier"/> asks it instead of knowing each connector's exceptions.
/// </summary>
public interface IClassifiedFailure
{
    FailureKind Kind { get; }
}
