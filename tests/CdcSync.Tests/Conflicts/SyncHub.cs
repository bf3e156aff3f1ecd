using System.Runtime.CompilerServices;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// A migrated hub holding one Salesforce Account linked to one NetSuite customer, both systems in
/// agreement (bases set as the connectors set them), and the writes the connectors make:
/// inbound pages through the real <see cref="StagingWriter"/> under the connector's replication
/// origin, outbound acknowledgements through <c>cdc.record_outbound</c>.
/// </summary>
internal sealed class SyncHub : IAsyncDisposable
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 1, 10, 0, 0, TimeSpan.Zero);

    private SyncHub(string connectionString, NpgsqlDataSource source)
    {
        ConnectionString = connectionString;
        Source = source;
        Gateway = new HubGateway(source);
        Staging = new StagingWriter(source);
    }

    public string ConnectionString { get; }

    public NpgsqlDataSource Source { get; }

    public HubGateway Gateway { get; }

    /// <summary>Inbound pages into the staging tables, as the inbound side writes them.</summary>
    public StagingWriter Staging { get; }

    public static async Task<SyncHub> CreateAsync([CallerMemberName] string name = "")
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(name);
        return new SyncHub(connectionString, NpgsqlDataSource.Create(connectionString));
    }

    /// <summary>
    /// Creates Account <paramref name="sfId"/> in "Salesforce" and its customer <paramref name="nsId"/>
    /// in "NetSuite" the way the pipeline does, so both bases hold the agreed values. Returns
    /// (account hub id, customer hub id).
    /// </summary>
    public async Task<(Guid Account, Guid Customer)> SeedLinkedAsync(string sfId, string nsId, string name, string phone, string city)
    {
        await SalesforceAsync(sfId, T0, ("name", name), ("phone", phone), ("billingcity", city));
        var account = await ScalarAsync<Guid>("SELECT hub_id FROM sf_accounts WHERE id = $1", sfId);
        var customer = await ScalarAsync<Guid>("SELECT hub_id FROM ns_customers WHERE hub_id = cdc.linked_hub_id('sf_accounts', $1, 'ns_customers')", account);

        // NetSuite outbound: the create was acknowledged, the internal id is written back.
        await ExecuteAsync(
            """
            SELECT cdc.record_outbound('netsuite', 'ns_customers', $1::text, $2, 'upsert',
                (SELECT jsonb_object_agg(key, jsonb_build_object('before', NULL, 'after', value))
                   FROM jsonb_each(to_jsonb(n)) WHERE key NOT IN ('hub_id', 'cdc_source_modified_at', 'internalid')),
                NULL)
              FROM ns_customers n WHERE n.hub_id = $1
            """, customer, nsId);
        var writeBack = new HubBatchResult();
        writeBack.WriteBacks.Add(("ns_customers", "hub_id", new WriteBack(customer, new Dictionary<string, object?> { ["internalid"] = nsId })));
        await Gateway.ApplyAsync("netsuite", writeBack, CancellationToken.None);
        return (account, customer);
    }

    /// <summary>An inbound page from Salesforce: one Account (by Id) with these fields and modified stamp.</summary>
    public Task<int> SalesforceAsync(string sfId, DateTimeOffset modifiedAt, params (string Field, object? Value)[] fields) =>
        InboundAsync("salesforce", "sf_accounts", "id", sfId, modifiedAt, fields);

    /// <summary>An inbound page from NetSuite: one customer (by internal id) with these fields and modified stamp.</summary>
    public Task<int> NetSuiteAsync(string nsId, DateTimeOffset modifiedAt, params (string Field, object? Value)[] fields) =>
        InboundAsync("netsuite", "ns_customers", "internalid", nsId, modifiedAt, fields);

    private Task<int> InboundAsync(string connector, string table, string keyColumn, string key, DateTimeOffset modifiedAt, (string Field, object? Value)[] fields)
    {
        var values = new Dictionary<string, object?> { [keyColumn] = key, ["cdc_source_modified_at"] = modifiedAt };
        foreach (var (field, value) in fields)
        {
            values[field] = value;
        }

        return Staging.ApplyInboundAsync(connector, [new InboundRecord(table, keyColumn, values, Deleted: false)], cursor: null, CancellationToken.None);
    }

    public async Task<T> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var cmd = Source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task ExecuteAsync(string sql, params object[] parameters)
    {
        await using var cmd = Source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await cmd.ExecuteNonQueryAsync();
    }

    public Task<string?> SfAsync(string sfId, string field) =>
        ScalarOrNullAsync($"SELECT {HubSql.Quote(field)}::text FROM sf_accounts WHERE id = $1", sfId);

    public Task<string?> NsAsync(string nsId, string field) =>
        ScalarOrNullAsync($"SELECT {HubSql.Quote(field)}::text FROM ns_customers WHERE internalid = $1", nsId);

    private async Task<string?> ScalarOrNullAsync(string sql, params object[] parameters)
    {
        await using var cmd = Source.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return await cmd.ExecuteScalarAsync() as string;
    }

    public Task<long> ConflictCountAsync() => ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts");

    public ValueTask DisposeAsync() => Source.DisposeAsync();
}
