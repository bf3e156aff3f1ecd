using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Connectors.Postgres;
using CdcSync.Hub;
using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Operations;

/// <summary>
/// Lowers a connector's checkpoint where that connector keeps it: the PostgreSQL connector in its
/// target database (next to the rows it writes), every other connector in the hub's
/// cdc.checkpoints. Only ever lowers, so a replay from an LSN the connector has not reached yet
/// cannot make it skip anything. Callers hold the leader lease: a running writer would otherwise
/// overwrite the lowered value with its next commit.
/// </summary>
internal static class ConnectorCheckpoints
{
    /// <summary>Lowers the checkpoint to <paramref name="lsn"/>; returns the previous one (0/0 when none was recorded).</summary>
    public static async Task<NpgsqlLogSequenceNumber> RewindAsync(CdcSyncOptions options, string connector, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        if (!options.Connectors.TryGetValue(connector, out var section))
        {
            throw new OperatorException($"Connector '{connector}' is not defined under Connectors (defined: {string.Join(", ", options.Connectors.Keys)}); pass one of those to --connector.");
        }

        NpgsqlLogSequenceNumber previous;
        if (Connectors.ConnectorRegistry.Default.Find(section["Type"]) is { CheckpointInTarget: true })
        {
            var target = ConnectorFactory.BindValidated(section, $"Connectors:{connector}", new PostgresConnectorOptionsValidator());
            await using var conn = await HubConnection.OpenAsync(target.ConnectionString, $"Connectors:{connector}:ConnectionString", cancellationToken);
            var table = $"{HubSql.Quote(target.CheckpointSchema)}.checkpoints";
            var exists = await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass(@table) IS NOT NULL", new { table }, cancellationToken: cancellationToken));
            previous = exists ? await LowerAsync(conn, table, connector, lsn, cancellationToken) : default;
        }
        else
        {
            previous = default;
        }

        await using var hub = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", cancellationToken);
        // For the PostgreSQL connector the hub holds a mirror (for status); lower it as well.
        var hubPrevious = await LowerAsync(hub, "cdc.checkpoints", connector, lsn, cancellationToken);
        await hub.ExecuteAsync(new CommandDefinition(
            "UPDATE cdc.connector_status SET caught_up_to = @lsn::pg_lsn WHERE connector = @connector AND caught_up_to > @lsn::pg_lsn",
            new { connector, lsn = lsn.ToString() }, cancellationToken: cancellationToken));
        return previous == default ? hubPrevious : previous;
    }

    private static async Task<NpgsqlLogSequenceNumber> LowerAsync(NpgsqlConnection conn, string table, string connector, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        // The old value comes back from the same statement, so nothing can move it in between.
        // Dapper cannot send an NpgsqlLogSequenceNumber: the LSN goes as text, cast in SQL (the result maps).
        return await conn.ExecuteScalarAsync<NpgsqlLogSequenceNumber?>(new CommandDefinition(
            $"""
            UPDATE {table} c SET lsn = @lsn::pg_lsn, updated_at = now()
            FROM (SELECT connector, lsn AS old FROM {table} WHERE connector = @connector FOR UPDATE) o
            WHERE c.connector = o.connector AND c.lsn > @lsn::pg_lsn
            RETURNING o.old
            """, new { connector, lsn = lsn.ToString() }, cancellationToken: cancellationToken)) ?? default;
    }
}
