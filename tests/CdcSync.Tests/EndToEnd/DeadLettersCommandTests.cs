using System.CommandLine;
using CdcSync.Cli.Commands;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.EndToEnd;

/// <summary><c>cdcsync deadletters list|discard|retry</c> against a migrated hub.</summary>
public sealed class DeadLettersCommandTests
{
    [Fact]
    public async Task ListDiscardAndRetry_ChangeTheStatus_AndRetryQueuesAOneRowResyncToThatConnectorOnly()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);

        var hubId = await ScalarAsync<Guid>(source, "INSERT INTO sf_accounts (name) VALUES ('Dead Letter Co') RETURNING hub_id");
        var rejected = await AddAsync(source, "salesforce", "sf_accounts", hubId.ToString());
        var other = await AddAsync(source, "netsuite", "ns_customers", Guid.NewGuid().ToString());
        var notAHubRow = await AddAsync(source, "webhook", "sf_accounts", "0/16B3748:0");

        Assert.Equal(0, await RunAsync("deadletters", "list", "--db", hub));
        Assert.Equal(0, await RunAsync("deadletters", "list", "--connector", "salesforce", "--db", hub));

        // discard
        Assert.Equal(0, await RunAsync("deadletters", "discard", other.ToString(), "--db", hub));
        Assert.Equal("discarded", await StatusAsync(source, other));
        Assert.Equal(2, await RunAsync("deadletters", "discard", other.ToString(), "--db", hub));
        Assert.Equal(2, await RunAsync("deadletters", "discard", "999999", "--db", hub));

        // retry: a one-row resync of the current hub row to the connector that rejected it; the hub
        // row itself is not written (no new version, no triggers).
        var config = await ConfigAsync(hub);
        var before = await ScalarAsync<string>(source, "SELECT xmin::text FROM sf_accounts WHERE hub_id = $1", hubId);
        Assert.Equal(0, await RunAsync("deadletters", "retry", rejected.ToString(), "--config", config));
        Assert.Equal("retried", await StatusAsync(source, rejected));
        Assert.Equal(before, await ScalarAsync<string>(source, "SELECT xmin::text FROM sf_accounts WHERE hub_id = $1", hubId));
        Assert.Equal(
            $"salesforce|public.sf_accounts|hub_id = '{hubId:D}'::uuid|1",
            await ScalarAsync<string>(source, "SELECT connector || '|' || table_name || '|' || where_sql || '|' || rows_total FROM cdc.resync_jobs"));

        // A record key that is not a hub_id, and unknown ids, are clear errors that change nothing.
        Assert.Equal(2, await RunAsync("deadletters", "retry", notAHubRow.ToString(), "--config", config));
        Assert.Equal("open", await StatusAsync(source, notAHubRow));
        Assert.Equal(2, await RunAsync("deadletters", "retry", "999999", "--config", config));
        Assert.Equal(1L, await ScalarAsync<long>(source, "SELECT count(*) FROM cdc.resync_jobs"));
    }

    private static async Task<string> ConfigAsync(string hub)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-deadletters-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, System.Text.Json.JsonSerializer.Serialize(new
        {
            Hub = new { ConnectionString = hub, Slot = "deadletters_retry", Publication = "deadletters_retry" },
            Connectors = new
            {
                salesforce = new
                {
                    Type = "salesforce",
                    LoginUrl = "http://127.0.0.1:9/",
                    ClientId = "id",
                    ClientSecret = "secret",
                    Objects = new[] { new { SObject = "Account", Table = "sf_accounts" } },
                },
            },
            Routes = new Dictionary<string, string[]> { ["public.sf_accounts"] = ["salesforce"] },
        }));
        return path;
    }

    private static Task<int> RunAsync(params string[] args) =>
        new RootCommand { DeadLettersCommand.Create() }.Parse(args).InvokeAsync();

    private static async Task<long> AddAsync(NpgsqlDataSource source, string connector, string obj, string recordKey) =>
        await ScalarAsync<long>(
            source,
            "INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error) VALUES ($1, $2, $3, '{}'::jsonb, 'FIELD_CUSTOM_VALIDATION_EXCEPTION: rejected') RETURNING id",
            connector,
            obj,
            recordKey);

    private static async Task<string> StatusAsync(NpgsqlDataSource source, long id) =>
        (await ScalarAsync<string>(source, "SELECT status FROM cdc.dead_letters WHERE id = $1", id))!;

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource source, string sql, params object[] parameters)
    {
        await using var cmd = source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
