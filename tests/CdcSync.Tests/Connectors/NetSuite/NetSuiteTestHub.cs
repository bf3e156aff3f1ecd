using System.Text;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Replication;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Tests.Connectors.NetSuite;

/// <summary>A migrated hub database plus helpers that turn ns_customers rows into change events.</summary>
public sealed class NetSuiteTestHub : IAsyncDisposable
{
    public static readonly RelationInfo Customers = new(
        16384,
        "public",
        "ns_customers",
        'f',
        [
            new("hub_id", 2950, -1, true),
            new("internalid", 25, -1, false),
            new("externalid", 25, -1, false),
            new("entityid", 25, -1, false),
            new("companyname", 25, -1, false),
            new("isperson", 16, -1, false),
            new("firstname", 25, -1, false),
            new("lastname", 25, -1, false),
            new("email", 25, -1, false),
            new("phone", 25, -1, false),
            new("url", 25, -1, false),
            new("subsidiary", 25, -1, false),
            new("isinactive", 16, -1, false),
            new("addressbook", 3802, -1, false),
            new("datecreated", 1184, -1, false),
            new("lastmodifieddate", 1184, -1, false),
            new("cdc_source_modified_at", 1184, -1, false),
        ]);

    private long _lsn = 0x1000000;

    private NetSuiteTestHub(NpgsqlDataSource dataSource)
    {
        DataSource = dataSource;
        Gateway = new HubGateway(dataSource);
        Staging = new StagingWriter(dataSource);
    }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>What outbound connectors use to reach the hub.</summary>
    public HubGateway Gateway { get; }

    /// <summary>Inbound pages into the staging tables, as the inbound side writes them.</summary>
    internal StagingWriter Staging { get; }

    public static async Task<NetSuiteTestHub> CreateAsync(string name)
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(name);
        return new NetSuiteTestHub(NpgsqlDataSource.Create(connectionString));
    }

    /// <summary>Inserts a hub row (as a transform would) and returns its hub_id.</summary>
    public async Task<Guid> InsertAsync(string externalId, string? companyName, string? internalId = null, string addressBook = "[]")
    {
        await using var cmd = DataSource.CreateCommand(
            "INSERT INTO ns_customers (externalid, companyname, internalid, subsidiary, addressbook) VALUES ($1, $2, $3, '1', $4::jsonb) RETURNING hub_id");
        cmd.Parameters.Add(new NpgsqlParameter { Value = externalId });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)companyName ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)internalId ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { Value = addressBook });
        return (Guid)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>The row as the replication stream would carry it (text format values).</summary>
    public async Task<RowValues> ReadRowAsync(Guid hubId)
    {
        var columns = string.Join(", ", Customers.Columns.Select(c => $"{c.Name}::text"));
        await using var cmd = DataSource.CreateCommand($"SELECT {columns} FROM ns_customers WHERE hub_id = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = hubId });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"hub row {hubId} not found");
        var builder = new RowValues.Builder();
        for (var i = 0; i < Customers.Columns.Count; i++)
        {
            if (reader.IsDBNull(i))
            {
                builder.Add(ValueKind.Null, default);
            }
            else
            {
                builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes(reader.GetString(i)));
            }
        }

        return builder.Build();
    }

    public async Task<string?> InternalIdAsync(Guid hubId)
    {
        await using var cmd = DataSource.CreateCommand("SELECT internalid FROM ns_customers WHERE hub_id = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = hubId });
        return await cmd.ExecuteScalarAsync() as string;
    }

    public async Task<List<(string RecordKey, string Error)>> DeadLettersAsync(string connector)
    {
        await using var cmd = DataSource.CreateCommand("SELECT record_key, error FROM cdc.dead_letters WHERE connector = $1 ORDER BY id");
        cmd.Parameters.Add(new NpgsqlParameter { Value = connector });
        await using var reader = await cmd.ExecuteReaderAsync();
        var result = new List<(string, string)>();
        while (await reader.ReadAsync())
        {
            result.Add((reader.GetString(0), reader.GetString(1)));
        }

        return result;
    }

    public TransactionInfo NextTransaction() =>
        new(1, new NpgsqlLogSequenceNumber((ulong)Interlocked.Add(ref _lsn, 0x100)), DateTime.UtcNow, null);

    public async Task<ChangeEvent> InsertEventAsync(Guid hubId, TransactionInfo tx, int position = 0) =>
        new(Customers, ChangeKind.Insert, await ReadRowAsync(hubId), null, tx, position);

    public async ValueTask DisposeAsync() => await DataSource.DisposeAsync();
}
