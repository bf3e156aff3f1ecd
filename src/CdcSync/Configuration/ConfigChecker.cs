using System.Net.Sockets;
using CdcSync.Connectors.Postgres;
using CdcSync.Hub;
using CdcSync.Resilience;
using CdcSync.Routing;
using Dapper;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace CdcSync.Configuration;

/// <summary>One thing wrong with a config or with what it points to.</summary>
public sealed record ConfigProblem(string Message, FailureKind Kind = FailureKind.Permanent);

/// <summary>
/// Checks what a config points to before anything is created: the hub (reachable, logical WAL,
/// migrated, REPLICATION, routed tables, publication and origin grants) and every connector
/// (reachable; for PostgreSQL targets, tables and privileges). `cdcsync check` prints all of it;
/// `run` refuses to create a slot while any of it is wrong.
/// </summary>
public static class ConfigChecker
{
    private static readonly string[] OriginFunctions =
        ["pg_replication_origin_oid(text)", "pg_replication_origin_create(text)", "pg_replication_origin_session_setup(text)", "pg_replication_origin_session_reset()"];

    public static async Task<List<ConfigProblem>> CheckConnectivityAsync(CdcSyncOptions options, CancellationToken cancellationToken)
    {
        var problems = new List<ConfigProblem>();
        var routes = options.Routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value);
        await CheckHubAsync(options, routes, problems, cancellationToken);
        foreach (var (name, section) in options.Connectors)
        {
            var type = section["Type"];
            if (type is not null && type.StartsWith("postgres", StringComparison.OrdinalIgnoreCase))
            {
                await CheckPostgresTargetAsync(name, section, routes.Where(r => r.Value.Contains(name)).Select(r => r.Key).ToList(), problems, cancellationToken);
            }
            else
            {
                await CheckHttpEndpointsAsync(name, section, problems, cancellationToken);
            }
        }

        return problems;
    }

    private static async Task CheckHubAsync(CdcSyncOptions options, Dictionary<TableName, string[]> routes, List<ConfigProblem> problems, CancellationToken cancellationToken)
    {
        NpgsqlConnection connection;
        try
        {
            connection = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        }
        catch (OperatorException e)
        {
            problems.Add(new ConfigProblem(e.Message, e.Transient ? FailureKind.Transient : FailureKind.Permanent));
            return;
        }

        await using (connection)
        {
            var where = HubConnection.Describe(connection.ConnectionString);
            if (await ScalarAsync<string>(connection, "SHOW wal_level", null, cancellationToken) != "logical")
            {
                problems.Add(new($"The hub {where} does not have wal_level=logical; run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL."));
            }

            if (!await ScalarAsync<bool>(connection, "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user", null, cancellationToken))
            {
                problems.Add(new($"The hub user of {where} may not read the WAL; run ALTER ROLE {HubSql.Quote(connection.UserName ?? "<hub user>")} REPLICATION; (or use a superuser)."));
            }

            if (!await ScalarAsync<bool>(connection, "SELECT to_regclass('cdc.slots') IS NOT NULL", null, cancellationToken))
            {
                problems.Add(new($"The hub {where} is not migrated (cdc.slots is missing); run 'cdcsync migrate' against it first."));
            }

            var publicationExists = await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = @publication)", new { publication = options.Hub.Publication }, cancellationToken);
            foreach (var table in routes.Keys)
            {
                if (!await ScalarAsync<bool>(connection, "SELECT to_regclass(@table) IS NOT NULL", new { table = table.Quoted }, cancellationToken))
                {
                    problems.Add(new($"Routes name table {table}, which does not exist in the hub; fix Routes in the config or create the table with a migration."));
                }
                else if (!publicationExists && !await ScalarAsync<bool>(connection, "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass(@table)", new { table = table.Quoted }, cancellationToken))
                {
                    problems.Add(new($"The hub user cannot add {table} to publication {options.Hub.Publication} (only its owner can); create the publication as the owner (CREATE PUBLICATION {HubSql.Quote(options.Hub.Publication)} FOR TABLE ...) or connect as the owner."));
                }
            }

            if (!publicationExists && !await ScalarAsync<bool>(connection, "SELECT has_database_privilege(current_database(), 'CREATE')", null, cancellationToken))
            {
                problems.Add(new($"The hub user may not create publication {options.Hub.Publication}; GRANT CREATE ON DATABASE to it, or create the publication beforehand."));
            }

            if (options.Connectors.Values.Any(c => string.Equals(c["Inbound:Enabled"], "true", StringComparison.OrdinalIgnoreCase)))
            {
                var missing = new List<string>();
                foreach (var function in OriginFunctions)
                {
                    if (!await ScalarAsync<bool>(connection, "SELECT has_function_privilege(@function, 'EXECUTE')", new { function }, cancellationToken))
                    {
                        missing.Add(function);
                    }
                }

                if (missing.Count > 0)
                {
                    problems.Add(new($"The hub user may not call {string.Join(", ", missing)} (inbound connectors tag their writes with replication origins); {ReplicationOrigins.GrantAdvice}."));
                }
            }
        }
    }

    private static async Task CheckPostgresTargetAsync(string name, IConfigurationSection section, List<TableName> hubTables, List<ConfigProblem> problems, CancellationToken cancellationToken)
    {
        var options = new PostgresConnectorOptions();
        if (!ConfigSchema.TryBind(section, options, []) || string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return; // Reported by the config step.
        }

        var source = $"Connectors:{name}:ConnectionString";
        NpgsqlConnection connection;
        try
        {
            connection = await HubConnection.OpenAsync(options.ConnectionString, source, cancellationToken);
        }
        catch (OperatorException e)
        {
            problems.Add(new ConfigProblem($"Connector {name}: {e.Message}", e.Transient ? FailureKind.Transient : FailureKind.Permanent));
            return;
        }

        await using (connection)
        {
            var mappings = options.Tables.ToDictionary(t => TableName.Parse(t.Key), t => t.Value);
            foreach (var hubTable in hubTables)
            {
                TableName target;
                try
                {
                    target = mappings.TryGetValue(hubTable, out var mapping) && mapping.Target is { } t ? TableName.Parse(t, hubTable.Schema) : hubTable;
                }
                catch (FormatException e)
                {
                    problems.Add(new($"Connectors:{name}:Tables: {e.Message}"));
                    continue;
                }

                if (!await ScalarAsync<bool>(connection, "SELECT to_regclass(@table) IS NOT NULL", new { table = target.Quoted }, cancellationToken))
                {
                    problems.Add(new($"Connector {name}: target table {target} (for hub table {hubTable}) does not exist; create it or map the table under Connectors:{name}:Tables."));
                    continue;
                }

                var lacking = new List<string>();
                foreach (var privilege in new[] { "SELECT", "INSERT", "UPDATE", "DELETE" })
                {
                    if (!await ScalarAsync<bool>(connection, "SELECT has_table_privilege(@table, @privilege)", new { table = target.Quoted, privilege }, cancellationToken))
                    {
                        lacking.Add(privilege);
                    }
                }

                if (lacking.Count > 0)
                {
                    problems.Add(new($"Connector {name}: the target user may not {string.Join(", ", lacking)} on {target}; GRANT {string.Join(", ", lacking)} ON {target.Quoted} TO {HubSql.Quote(connection.UserName ?? "<user>")};"));
                }
            }

            var checkpoints = $"{HubSql.Quote(options.CheckpointSchema)}.checkpoints";
            if (await ScalarAsync<bool>(connection, "SELECT to_regclass(@table) IS NOT NULL", new { table = checkpoints }, cancellationToken))
            {
                if (!await ScalarAsync<bool>(connection, "SELECT has_table_privilege(@table, 'SELECT, INSERT, UPDATE')", new { table = checkpoints }, cancellationToken))
                {
                    problems.Add(new($"Connector {name}: the target user may not write its checkpoints in {checkpoints}; GRANT SELECT, INSERT, UPDATE ON {checkpoints} TO it."));
                }
            }
            else if (!await ScalarAsync<bool>(connection, "SELECT CASE WHEN to_regnamespace(@schema) IS NULL THEN has_database_privilege(current_database(), 'CREATE') ELSE has_schema_privilege(@schema, 'CREATE') END", new { schema = HubSql.Quote(options.CheckpointSchema) }, cancellationToken))
            {
                problems.Add(new($"Connector {name}: the target user may not create its checkpoint table {checkpoints}; create it (see README) or GRANT CREATE on the database/schema to it."));
            }
        }
    }

    /// <summary>HTTP connectors: every absolute URL in their options must accept a TCP connection.</summary>
    private static async Task CheckHttpEndpointsAsync(string name, IConfigurationSection section, List<ConfigProblem> problems, CancellationToken cancellationToken)
    {
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is null || !Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                continue;
            }

            using var client = new TcpClient();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                await client.ConnectAsync(uri.Host, uri.Port, timeout.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                problems.Add(new($"Connector {name}: cannot reach {uri.Scheme}://{uri.Host}:{uri.Port} (Connectors:{name}:{key}): {(e is SocketException s ? s.Message : "no answer in 5 s")}; check the URL or the network.", FailureKind.Transient));
            }
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, object? parameters, CancellationToken cancellationToken) =>
        (await connection.ExecuteScalarAsync<T>(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken)))!;
}
