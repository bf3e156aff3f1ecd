using CdcSync.Resilience;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// A NetSuite REST call failed. The message carries the operation, HTTP status and NetSuite's
/// error code and detail; never a credential.
/// </summary>
internal sealed class NetSuiteApiException(string operation, int statusCode, string? errorCode, string? detail, string? errorPath)
    : Exception($"NetSuite {operation} failed: HTTP {statusCode} {errorCode ?? "(no error code)"}{(errorPath is null ? string.Empty : " at " + errorPath)}: {detail ?? "(no detail)"}"), IClassifiedFailure
{
    public int StatusCode { get; } = statusCode;

    public string? ErrorCode { get; } = errorCode;

    public string? Detail { get; } = detail;

    public string? ErrorPath { get; } = errorPath;

    /// <summary>Timeouts, throttling and server errors pass; everything else needs the operator or the record fixed.</summary>
    public FailureKind Kind => StatusCode is 408 or 429 or >= 500 ? FailureKind.Transient : FailureKind.Permanent;

    /// <summary>
    /// NetSuite refuses this record for good (validation, bad reference): it goes to dead letters.
    /// Authentication, permission, throttling and server errors are not about the record.
    /// </summary>
    public bool IsPermanentRecordError => StatusCode is >= 400 and < 500 and not (401 or 403 or 408 or 429);
}
