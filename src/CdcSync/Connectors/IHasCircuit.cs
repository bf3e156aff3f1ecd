using Polly.CircuitBreaker;

namespace CdcSync.Connectors;

/// <summary>
/// Capability of a connector that calls a remote system through a circuit breaker (every HTTP
/// connector). Health (<c>/readyz</c>), <c>cdcsync status</c> and the <c>cdcsync_circuit_open</c>
/// gauge read it; a connector without it has no breaker and counts as closed.
/// </summary>
public interface IHasCircuit
{
    /// <summary>The breaker's state now: while it is open the system refuses calls.</summary>
    CircuitState CircuitState { get; }
}
