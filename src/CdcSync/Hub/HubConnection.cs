using System.Net.Sockets;
using Dapper;
using Npgsql;

namespace CdcSync.Hub;

/// <summary>Opens the hub and explains, in one line without the password, why it could not.</summary>
internal static class HubConnection
{
    public static NpgsqlConnectionStringBuilder Parse(string? connectionString, string source)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new OperatorException($"No hub connection string: pass --db or set {source} (e.g. Host=127.0.0.1;Port=5432;Database=hub;Username=cdcsync;Password=...). For a local throwaway hub run: eval \"$(scripts/devdb.sh start)\".");
        }

        try
        {
            return new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            // The parser's message names the keyword, never a value.
            throw new OperatorException($"The connection string in {source} is malformed ({e.Message}); use the form Host=...;Port=...;Database=...;Username=...;Password=...");
        }
    }

    /// <summary>
    /// Pools built from the worker's connection strings close connections idle for more than
    /// 10 s (Npgsql's default is 300 s): a smart shutdown of a server waits for every session, and
    /// a pooled connection nobody uses must not hold it up. Explicit settings are kept.
    /// </summary>
    public static string WithShortIdleLifetime(string connectionString)
    {
        // NpgsqlConnectionStringBuilder.ContainsKey says whether a keyword exists, not whether it was set.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Given(string keyword) => given.ContainsKey(keyword) || given.ContainsKey(keyword.Replace(" ", string.Empty, StringComparison.Ordinal));
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Given("Connection Idle Lifetime"))
        {
            builder.ConnectionIdleLifetime = 10;
        }

        if (!Given("Connection Pruning Interval"))
        {
            builder.ConnectionPruningInterval = 2;
        }

        return builder.ConnectionString;
    }

    /// <summary>Where a connection string points, safe to print.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder b) => $"{b.Username ?? "?"}@{b.Host ?? "localhost"}:{b.Port}/{b.Database ?? b.Username}";

    public static string Describe(string connectionString)
    {
        try
        {
            return Describe(new NpgsqlConnectionStringBuilder(connectionString));
        }
        catch (ArgumentException)
        {
            return "(malformed connection string)";
        }
    }

    public static async Task<NpgsqlConnection> OpenAsync(string connectionString, string source, CancellationToken cancellationToken)
    {
        var builder = Parse(connectionString, source);
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or System.Security.Cryptography.CryptographicException)
        {
            await connection.DisposeAsync();
            throw Explain(e, builder, source);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            await connection.DisposeAsync();
            throw Explain(e, builder, source);
        }
    }

    public static OperatorException Explain(Exception e, NpgsqlConnectionStringBuilder b, string source)
    {
        var where = Describe(b);
        return e switch
        {
            PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } =>
                new OperatorException($"PostgreSQL at {where} rejected the login (password authentication failed); fix Username/Password in {source}.", e),
            PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName } =>
                new OperatorException($"Database '{b.Database}' does not exist on {b.Host}:{b.Port}; create it (CREATE DATABASE) or fix Database in {source}.", e),
            PostgresException pg when Resilience.FailureClassifier.Classify(pg.SqlState) == Resilience.FailureKind.Transient =>
                new OperatorException($"PostgreSQL at {where} is not accepting connections ({pg.SqlState}: {pg.MessageText}); waiting for it, or check {source}.", e, transient: true),
            PostgresException pg =>
                new OperatorException($"PostgreSQL at {where} refused the connection: {pg.MessageText}; check {source}.", e),
            _ when IsCertificateFileProblem(e) =>
                new OperatorException($"A certificate file named in {source} cannot be read ({CertificateFiles(b)}); fix the path in Root Certificate / SSL Certificate / SSL Key.", e),
            _ when FindTls(e) is not null =>
                new OperatorException($"{Resilience.FailureClassifier.Describe(e)} ({where}, {source})", e),
            _ when HasSocketError(e) =>
                new OperatorException($"Cannot reach PostgreSQL at {b.Host}:{b.Port} ({SocketMessage(e)}); start the server or fix Host/Port in {source}.", e, transient: true),
            _ => new OperatorException($"Cannot connect to PostgreSQL at {where}: {e.Message}; check {source}.", e, transient: true),
        };
    }

    private static string CertificateFiles(NpgsqlConnectionStringBuilder b)
    {
        var files = new[] { ("Root Certificate", b.RootCertificate), ("SSL Certificate", b.SslCertificate), ("SSL Key", b.SslKey) }
            .Where(f => !string.IsNullOrEmpty(f.Item2))
            .Select(f => $"{f.Item1}={f.Item2}{(File.Exists(f.Item2) ? string.Empty : " (missing)")}");
        return string.Join(", ", files);
    }

    /// <summary>CdcSync reads the hub's WAL; without wal_level=logical there is nothing to read.</summary>
    public static async Task RequireLogicalWalAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var level = await connection.ExecuteScalarAsync<string>(new CommandDefinition("SHOW wal_level", cancellationToken: cancellationToken));
        if (level != "logical")
        {
            throw new OperatorException(
                $"The hub {connection.Host}:{connection.Port} has wal_level={level}; CdcSync needs wal_level=logical. Run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.");
        }
    }

    private static System.Security.Authentication.AuthenticationException? FindTls(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException auth)
            {
                return auth;
            }
        }

        return null;
    }

    private static bool IsCertificateFileProblem(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is FileNotFoundException or DirectoryNotFoundException or System.Security.Cryptography.CryptographicException)
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasSocketError(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is SocketException or TimeoutException or IOException)
            {
                return true;
            }
        }

        return false;
    }

    private static string SocketMessage(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is SocketException or TimeoutException or IOException)
            {
                return e.Message;
            }
        }

        return "unreachable";
    }
}
