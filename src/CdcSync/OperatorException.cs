namespace CdcSync;

/// <summary>
/// A problem reported as one line without a stack trace. Permanent ones (the default) need the
/// operator and stop the worker with exit code 2; transient ones (the server is down or starting)
/// are retried by the worker, while one-shot verbs still print them and exit 2.
/// </summary>
public sealed class OperatorException(string message, Exception? inner = null, bool transient = false) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}
