using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;
using Npgsql;

namespace CdcSync.Resilience;

/// <summary>
/// The one place that decides whether a failure is transient or permanent. The hub reader, the
/// PostgreSQL target, the inbound and outbound loops and the HTTP connectors all ask here, so an
/// outage is ridden out the same way everywhere and a missing grant stops everything the same way.
/// </summary>
internal static class FailureClassifier
{
    /// <summary>Every origin function the worker calls; the README's grants and the hub's errors list the same set.</summary>
    public const string ReplicationOriginGrantAdvice =
        "grant them with GRANT EXECUTE ON FUNCTION pg_replication_origin_oid(text), pg_replication_origin_create(text), pg_replication_origin_session_setup(text), pg_replication_origin_session_reset() TO <hub user>, or use a superuser";

    public static FailureKind Classify(Exception error)
    {
        var e = Unwrap(error);
        return e switch
        {
            OperatorException op => op.Transient ? FailureKind.Transient : FailureKind.Permanent,
            // HTTP connectors: throttling, 5xx and timeouts pass; a refused login, a missing
            // permission or a request the API rejects as a whole (an unknown field) do not.
            IClassifiedFailure classified => classified.Kind,
            PostgresException pg => Classify(pg.SqlState),
            NpgsqlException npgsql when FindTls(npgsql) is not null => FailureKind.Permanent,
            NpgsqlException => FailureKind.Transient,
            SocketException or IOException or TimeoutException or HttpRequestException => FailureKind.Transient,
            Polly.CircuitBreaker.BrokenCircuitException or Polly.Timeout.TimeoutRejectedException => FailureKind.Transient,
            AuthenticationException => FailureKind.Permanent,
            ArgumentException or FormatException or System.ComponentModel.DataAnnotations.ValidationException => FailureKind.Permanent,
            // Anything else (a dropped connection surfacing as "connection is not open", a disposed
            // stream) is retried: giving up costs an outage, retrying costs a log line.
            _ => FailureKind.Transient,
        };
    }

    /// <summary>
    /// SQLSTATE classes: 08 connection, 40 rollback (serialization, deadlock), 53 resources,
    /// 57 operator intervention (admin/crash shutdown, cannot connect now), 58 system error and
    /// 55006 (object in use: another worker holds the slot) pass; privileges, missing objects,
    /// bad names and data the target rejects do not.
    /// </summary>
    public static FailureKind Classify(string sqlState)
    {
        if (sqlState is PostgresErrorCodes.ObjectInUse or PostgresErrorCodes.LockNotAvailable)
        {
            return FailureKind.Transient;
        }

        return sqlState[..2] switch
        {
            "08" or "40" or "53" or "57" or "58" or "XX" => FailureKind.Transient,
            _ => FailureKind.Permanent,
        };
    }

    /// <summary>One line, no stack trace, no secret: the cause, and for permanent failures the fix.</summary>
    public static string Describe(Exception error)
    {
        var e = Unwrap(error);
        switch (e)
        {
            case OperatorException op:
                return op.Message;
            case PostgresException { SqlState: PostgresErrorCodes.ObjectInUse } pg when pg.MessageText.Contains("replication slot", StringComparison.Ordinal):
                return $"Another worker holds the replication slot ({pg.MessageText}); this worker waits until it stops. Two workers on one slot is normal only for a standby.";
            case PostgresException pg:
                return $"PostgreSQL error {pg.SqlState}: {OneLine(pg.MessageText)}{(pg.TableName is { } t ? $" (table {t})" : string.Empty)}{Hint(pg)}";
            case NpgsqlException npgsql when FindTls(npgsql) is { } tls:
                return $"TLS to PostgreSQL failed: {TlsCause(tls)}";
            default:
                var inner = e.InnerException is { } i && i is SocketException or IOException or TimeoutException ? $" ({OneLine(i.Message)})" : string.Empty;
                return OneLine(e.Message) + inner;
        }
    }

    /// <summary>Strips the wrappers tasks and pipelines put around the failure that matters.</summary>
    public static Exception Unwrap(Exception error)
    {
        var e = error;
        while (e is AggregateException { InnerExceptions.Count: 1 } agg)
        {
            e = agg.InnerExceptions[0];
        }

        while (e is InvalidOperationException { InnerException: OperatorException or NpgsqlException or SocketException or IOException } wrapper)
        {
            e = wrapper.InnerException!;
        }

        return e;
    }

    private static string Hint(PostgresException pg) => pg.SqlState switch
    {
        PostgresErrorCodes.InsufficientPrivilege when pg.MessageText.Contains("pg_replication_origin", StringComparison.Ordinal) =>
            "; " + ReplicationOriginGrantAdvice,
        PostgresErrorCodes.InsufficientPrivilege => "; grant the privilege to the worker's role (README, section \"Grants\") or connect as the table owner.",
        PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedObject or PostgresErrorCodes.UndefinedFunction or PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.InvalidSchemaName =>
            "; create it (cdcsync migrate for the hub, a migration for a target) or fix the name in the config.",
        PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification => "; fix Username/Password in the connection string.",
        PostgresErrorCodes.InvalidCatalogName => "; create the database or fix Database in the connection string.",
        _ when Classify(pg.SqlState) == FailureKind.Permanent => "; fix the cause and start the worker again.",
        _ => string.Empty,
    };

    private static AuthenticationException? FindTls(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is AuthenticationException auth)
            {
                return auth;
            }
        }

        return null;
    }

    /// <summary>Npgsql says only "Exception while performing SSL handshake"; the inner exceptions say why.</summary>
    private static string TlsCause(AuthenticationException tls)
    {
        var text = tls.Message + " " + tls.InnerException?.Message;
        if (text.Contains("RemoteCertificateChainErrors", StringComparison.Ordinal) || text.Contains("chain", StringComparison.OrdinalIgnoreCase))
        {
            return "the server's certificate is not signed by the root certificate given (Root Certificate); point it at the CA that signed the server's certificate.";
        }

        if (text.Contains("RemoteCertificateValidationCallback", StringComparison.Ordinal))
        {
            // Npgsql verifies against Root Certificate in its own callback and keeps the reason to itself.
            return "the server's certificate was rejected: it is not signed by the root certificate given (Root Certificate), or (SSL Mode=VerifyFull) it does not name the Host connected to; point Root Certificate at the CA that signed the server's certificate.";
        }

        if (text.Contains("RemoteCertificateNameMismatch", StringComparison.Ordinal))
        {
            return "the server's certificate does not name the Host connected to; connect by the name in the certificate or use SSL Mode=VerifyCA.";
        }

        return OneLine(text.Trim()) + "; check SSL Mode and Root Certificate in the connection string.";
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
