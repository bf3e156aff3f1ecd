using System.Net;
using CdcSync.Resilience;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Salesforce refused a request as a whole. The message carries Salesforce's error code and
/// message (never a secret or token); <see cref="IsTransient"/> tells whether trying again later can help.
/// </summary>
internal sealed class SalesforceApiException : Exception, IClassifiedFailure
{
    public SalesforceApiException(string message, HttpStatusCode? statusCode, string? errorCode, bool isTransient, bool isAuthentication = false, Exception? inner = null)
        : base(message, inner)
    {
        StatusCode = statusCode;
        ErrorCode = errorCode;
        IsTransient = isTransient;
        IsAuthentication = isAuthentication;
    }

    public HttpStatusCode? StatusCode { get; }

    /// <summary>Salesforce's <c>errorCode</c> (e.g. <c>INVALID_FIELD</c>) or OAuth <c>error</c> (e.g. <c>invalid_client</c>).</summary>
    public string? ErrorCode { get; }

    public bool IsTransient { get; }

    public FailureKind Kind => IsTransient ? FailureKind.Transient : FailureKind.Permanent;

    /// <summary>The org refused the connector's credentials or session: a configuration problem, never a record's.</summary>
    public bool IsAuthentication { get; }
}
