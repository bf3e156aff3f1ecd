using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Replication;
using CdcSync.Resilience;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>
/// Checks what a config points to before anything is created: the hub (reachable, logical WAL,
/// migrated, REPLICATION, routed tables, publication and origin grants) and every connector, as
/// its type checks it (reachable; for PostgreSQL targets, tables and privileges). `cdcsync check`
/// prints all of it; `run` refuses to create a slot while any of it is wrong.
/// </summary>
internal static class ConfigChecker
{
    private static readonly string[] OriginFunctions =
        ["pg_replication_origin_oid(text)", "pg_replication_origin_create(text)", "pg_replication_origin_session_setup(text)", "pg_replication_origin_session_reset()"];

    public static Task<List<ConfigProblem>> CheckConnectivityAsync(CdcSyncOptions options, CancellationToken cancellationToken) =>
        CheckConnectivityAsync(options, ConnectorRegistry.Default, cancellationToken);

    /// <param name="registry">The connector types; each checks what its sections point to.</param>
    public static async Task<List<ConfigProblem>> CheckConnectivityAsync(CdcSyncOptions options, ConnectorRegistry registry, CancellationToken cancellationToken)
    {
        var problems = new List<ConfigProblem>();
        var routes = options.Routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value);
        await CheckHubAsync(options, routes, problems, cancellationToken);
        foreach (var (name, section) in options.Connectors)
        {
            var check = registry.Find(section["Type"])?.CheckConnectivityAsync ?? HttpEndpointCheck.CheckAsync;
            await check(new ConnectorCheck(name, section, routes.Where(r => r.Value.Contains(name)).Select(r => r.Key).ToList(), problems), cancellationToken);
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
            if (await ScalarAsync<string>(connection, "SHOW wal_level", cancellationToken) != "logical")
            {
                problems.Add(new($"The hub {where} does not have wal_level=logical; run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL."));
            }

            if (!await ScalarAsync<bool>(connection, "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user", cancellationToken))
            {
                problems.Add(new($"The hub user of {where} may not read the WAL; run ALTER ROLE {HubSql.Quote(connection.UserName ?? "<hub user>")} REPLICATION; (or use a superuser)."));
            }

            if (!await ScalarAsync<bool>(connection, "SELECT to_regclass('cdc.slots') IS NOT NULL", cancellationToken))
            {
                problems.Add(new($"The hub {where} is not migrated (cdc.slots is missing); run 'cdcsync migrate' against it first."));
            }

            var publicationExists = await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", cancellationToken, options.Hub.Publication);
            foreach (var table in routes.Keys)
            {
                if (!await ScalarAsync<bool>(connection, "SELECT to_regclass($1) IS NOT NULL", cancellationToken, table.Quoted))
                {
                    problems.Add(new($"Routes name table {table}, which does not exist in the hub; fix Routes in the config or create the table with a migration."));
                }
                else if (!publicationExists && !await ScalarAsync<bool>(connection, "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass($1)", cancellationToken, table.Quoted))
                {
                    problems.Add(new($"The hub user cannot add {table} to publication {options.Hub.Publication} (only its owner can); create the publication as the owner (CREATE PUBLICATION {HubSql.Quote(options.Hub.Publication)} FOR TABLE ...) or connect as the owner."));
                }
            }

            if (!publicationExists && !await ScalarAsync<bool>(connection, "SELECT has_database_privilege(current_database(), 'CREATE')", cancellationToken))
            {
                problems.Add(new($"The hub user may not create publication {options.Hub.Publication}; GRANT CREATE ON DATABASE to it, or create the publication beforehand."));
            }

            if (options.Connectors.Values.Any(c => string.Equals(c["Inbound:Enabled"], "true", StringComparison.OrdinalIgnoreCase)))
            {
                var missing = new List<string>();
                foreach (var function in OriginFunctions)
                {
                    if (!await ScalarAsync<bool>(connection, "SELECT has_function_privilege($1, 'EXECUTE')", cancellationToken, function))
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

    internal static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return (T)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }
}
