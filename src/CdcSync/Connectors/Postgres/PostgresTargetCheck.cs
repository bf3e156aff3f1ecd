using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Replication;
using CdcSync.Resilience;
using Npgsql;

namespace CdcSync.Connectors.Postgres;

/// <summary>What `check` asks of a PostgreSQL target: reachable, the routed tables there, and the grants to write them and the checkpoint.</summary>
internal static class PostgresTargetCheck
{
    public static async Task CheckAsync(ConnectorCheck check, CancellationToken cancellationToken)
    {
        var (name, section, hubTables, problems) = check;
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

                if (!await ConfigChecker.ScalarAsync<bool>(connection, "SELECT to_regclass($1) IS NOT NULL", cancellationToken, target.Quoted))
                {
                    problems.Add(new($"Connector {name}: target table {target} (for hub table {hubTable}) does not exist; create it or map the table under Connectors:{name}:Tables."));
                    continue;
                }

                var lacking = new List<string>();
                foreach (var privilege in new[] { "SELECT", "INSERT", "UPDATE", "DELETE" })
                {
                    if (!await ConfigChecker.ScalarAsync<bool>(connection, "SELECT has_table_privilege($1, $2)", cancellationToken, target.Quoted, privilege))
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
            if (await ConfigChecker.ScalarAsync<bool>(connection, "SELECT to_regclass($1) IS NOT NULL", cancellationToken, checkpoints))
            {
                if (!await ConfigChecker.ScalarAsync<bool>(connection, "SELECT has_table_privilege($1, 'SELECT, INSERT, UPDATE')", cancellationToken, checkpoints))
                {
                    problems.Add(new($"Connector {name}: the target user may not write its checkpoints in {checkpoints}; GRANT SELECT, INSERT, UPDATE ON {checkpoints} TO it."));
                }
            }
            else if (!await ConfigChecker.ScalarAsync<bool>(connection, "SELECT CASE WHEN to_regnamespace($1) IS NULL THEN has_database_privilege(current_database(), 'CREATE') ELSE has_schema_privilege($1, 'CREATE') END", cancellationToken, HubSql.Quote(options.CheckpointSchema)))
            {
                problems.Add(new($"Connector {name}: the target user may not create its checkpoint table {checkpoints}; create it (see README) or GRANT CREATE on the database/schema to it."));
            }
        }
    }
}
