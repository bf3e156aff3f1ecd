using CdcSync.Hub;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Hub;

/// <summary>
/// A session tagged with a connector's replication origin must never go back to the pool tagged: the
/// next user of that pooled session would hold the origin, so every inbound page of the connector
/// failed with 55006 ("already active for PID ...") after an in-process restart that cancelled a
/// setup half way (seen in PubSubStreamingTests' restart).
/// </summary>
public sealed class OriginSessionPoolTests
{
    [Fact]
    public async Task UntagForPool_TaggedHalfWayOrNotAtAll_PooledSessionHoldsNoOriginAndTheConnectorCanTagAgain()
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(nameof(UntagForPool_TaggedHalfWayOrNotAtAll_PooledSessionHoldsNoOriginAndTheConnectorCanTagAgain));
        // One pooled session, so the next open gets the very session the first one left behind.
        await using var source = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 1 }.ConnectionString);
        var origin = ReplicationOrigins.For(new NpgsqlConnectionStringBuilder(connectionString).Database!, "half");

        // Setup stopped after pg_replication_origin_session_setup (a cancelled set_config, say).
        await using (var connection = await source.OpenConnectionAsync())
        {
            foreach (var (sql, value) in ReplicationOrigins.SetupStatements(origin, "half").Take(2))
            {
                await using var cmd = new NpgsqlCommand(sql, connection);
                cmd.Parameters.Add(new NpgsqlParameter { Value = value });
                await cmd.ExecuteNonQueryAsync();
            }

            await ReplicationOrigins.UntagForPoolAsync(connection);
        }

        // And a session the setup never tagged: nothing to untag, no error.
        await using (var connection = await source.OpenConnectionAsync())
        {
            await using var check = new NpgsqlCommand("SELECT pg_replication_origin_session_is_setup()", connection);
            Assert.False((bool)(await check.ExecuteScalarAsync())!);
            await ReplicationOrigins.UntagForPoolAsync(connection);
        }

        await using (var session = await ReplicationOrigins.OpenAsync(source, "half", CancellationToken.None))
        {
            await using var check = new NpgsqlCommand("SELECT pg_replication_origin_session_is_setup(), current_setting('cdc.connector')", session.Connection);
            await using var reader = await check.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.True(reader.GetBoolean(0));
            Assert.Equal("half", reader.GetString(1));
        }

        await using var after = await source.OpenConnectionAsync();
        await using var untagged = new NpgsqlCommand("SELECT pg_replication_origin_session_is_setup(), current_setting('cdc.connector')", after);
        await using var row = await untagged.ExecuteReaderAsync();
        Assert.True(await row.ReadAsync());
        Assert.False(row.GetBoolean(0));
        Assert.Equal(string.Empty, row.GetString(1));
    }

    [Fact]
    public async Task OpenAsync_OriginHeldByAnotherProcessesSession_WaitsUntilItIsFreeInsteadOfFailing()
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(nameof(OpenAsync_OriginHeldByAnotherProcessesSession_WaitsUntilItIsFreeInsteadOfFailing));
        await using var source = NpgsqlDataSource.Create(connectionString);
        var origin = ReplicationOrigins.For(new NpgsqlConnectionStringBuilder(connectionString).Database!, "busy");

        // Another process (a running worker, while an operator repairs from the CLI) holds the origin:
        // a session of its own, outside this process's gate.
        await using var other = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await other.OpenAsync();
        foreach (var (sql, value) in ReplicationOrigins.SetupStatements(origin, "busy"))
        {
            await using var cmd = new NpgsqlCommand(sql, other);
            cmd.Parameters.Add(new NpgsqlParameter { Value = value });
            await cmd.ExecuteNonQueryAsync();
        }

        var opening = ReplicationOrigins.OpenAsync(source, "busy", CancellationToken.None);
        // It is waiting (not failed) while the other session holds the origin ...
        await Task.Delay(500);
        Assert.False(opening.IsCompleted, opening.IsFaulted ? opening.Exception!.InnerException!.Message : "opened while the origin was held elsewhere");

        // ... and tags its session once the other one lets go.
        await ReplicationOrigins.ResetAsync(other, CancellationToken.None);
        await using var session = await opening.WaitAsync(TimeSpan.FromSeconds(30));
        await using var check = new NpgsqlCommand("SELECT pg_replication_origin_session_is_setup()", session.Connection);
        Assert.True((bool)(await check.ExecuteScalarAsync())!);
    }
}
