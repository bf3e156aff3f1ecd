using System.Collections.Concurrent;
using System.Text;
using CdcSync.Connectors.Http;
using CdcSync.Connectors.Salesforce;
using CdcSync.Hub;
using CdcSync.Inbound;
using CdcSync.Replication;
using CdcSync.Sandboxes.Salesforce;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>A migrated hub, a running Salesforce sandbox, and helpers that turn hub rows into change events.</summary>
public sealed class SalesforceTestHub : IAsyncDisposable
{
    private readonly Dictionary<string, RelationInfo> _relations = new(StringComparer.Ordinal);
    private long _lsn = 0x2000000;

    private SalesforceTestHub(NpgsqlDataSource dataSource, SalesforceSandbox sandbox)
    {
        DataSource = dataSource;
        Sandbox = sandbox;
        Gateway = new HubGateway(dataSource);
        Staging = new StagingWriter(dataSource);
    }

    public NpgsqlDataSource DataSource { get; }

    public SalesforceSandbox Sandbox { get; }

    /// <summary>What outbound connectors use to reach the hub.</summary>
    public HubGateway Gateway { get; }

    /// <summary>Inbound pages into the staging tables, as the inbound side writes them.</summary>
    internal StagingWriter Staging { get; }

    public Logs Logs { get; } = new();

    public static async Task<SalesforceTestHub> CreateAsync(string name, string suffix = "")
    {
        var connectionString = await TestPostgres.CreateMigratedHubAsync(name, suffix);
        var sandbox = await SalesforceSandbox.StartAsync(new SalesforceSandboxOptions(), CancellationToken.None);
        return new SalesforceTestHub(NpgsqlDataSource.Create(connectionString), sandbox);
    }

    /// <summary>Connector options pointing at the sandbox, with resilience delays short enough for tests.</summary>
    public SalesforceOptions Options(string? clientSecret = null, Action<HttpResilienceOptions>? resilience = null)
    {
        var options = new SalesforceOptions
        {
            LoginUrl = Sandbox.BaseUrl,
            ClientId = SalesforceSandboxOptions.DefaultClientId,
            ClientSecret = clientSecret ?? SalesforceSandboxOptions.DefaultClientSecret,
            Objects = EndToEnd.ExampleConfig.SalesforceObjects(),
            Resilience = new HttpResilienceOptions
            {
                MaxRetryAttempts = 5,
                RetryBaseDelay = TimeSpan.FromMilliseconds(20),
                RetryMaxDelay = TimeSpan.FromMilliseconds(200),
                MaxRetryAfter = TimeSpan.FromSeconds(2),
                ThrottlePause = TimeSpan.FromMilliseconds(100),
                AttemptTimeout = TimeSpan.FromSeconds(20),
            },
        };
        resilience?.Invoke(options.Resilience);
        return options;
    }

    internal SalesforceClient Client(SalesforceOptions options) =>
        new(options, new HttpClient { Timeout = Timeout.InfiniteTimeSpan }, Logs.Factory.CreateLogger<SalesforceClient>());

    internal SalesforceOutboundConnector Outbound(SalesforceClient client) =>
        new(client, Gateway, Logs.Factory.CreateLogger<SalesforceOutboundConnector>());

    internal SalesforceInboundConnector Inbound(SalesforceClient client) =>
        new(client, DataSource, Logs.Factory.CreateLogger<SalesforceInboundConnector>());

    /// <summary>Inserts an account row as a transform would (no Salesforce Id yet) and returns its hub_id.</summary>
    public async Task<Guid> InsertAccountAsync(string name, string? id = null, string? city = null)
    {
        await using var cmd = DataSource.CreateCommand("INSERT INTO sf_accounts (name, id, billingcity, numberofemployees, annualrevenue) VALUES ($1, $2, $3, 42, 1000000) RETURNING hub_id");
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)id ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)city ?? DBNull.Value });
        return (Guid)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task<Guid> InsertContactAsync(Guid accountHubId, string lastName)
    {
        await using var cmd = DataSource.CreateCommand("INSERT INTO sf_contacts (account_hub_id, lastname, email) VALUES ($1, $2, $3) RETURNING hub_id");
        cmd.Parameters.Add(new NpgsqlParameter { Value = accountHubId });
        cmd.Parameters.Add(new NpgsqlParameter { Value = lastName });
        cmd.Parameters.Add(new NpgsqlParameter { Value = lastName.ToLowerInvariant() + "@example.com" });
        return (Guid)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task ExecuteAsync(string sql, params object[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T?> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    /// <summary>The table as a pgoutput Relation message would describe it.</summary>
    public async Task<RelationInfo> RelationAsync(string table)
    {
        if (_relations.TryGetValue(table, out var cached))
        {
            return cached;
        }

        await using var cmd = DataSource.CreateCommand(
            "SELECT attname, atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        var columns = new List<ColumnInfo>();
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                columns.Add(new ColumnInfo(reader.GetString(0), (uint)reader.GetInt32(1), reader.GetInt32(2), true));
            }
        }

        var relation = new RelationInfo((uint)(16384 + _relations.Count), "public", table, 'f', columns);
        _relations[table] = relation;
        return relation;
    }

    /// <summary>The row as the replication stream would carry it (text format values).</summary>
    public async Task<RowValues> ReadRowAsync(string table, Guid hubId)
    {
        var relation = await RelationAsync(table);
        var columns = string.Join(", ", relation.Columns.Select(c => $"\"{c.Name}\"::text"));
        await using var cmd = DataSource.CreateCommand($"SELECT {columns} FROM \"{table}\" WHERE hub_id = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = hubId });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"hub row {hubId} not found in {table}");
        var builder = new RowValues.Builder();
        for (var i = 0; i < relation.Columns.Count; i++)
        {
            if (reader.IsDBNull(i))
            {
                builder.Add(ValueKind.Null, default);
            }
            else
            {
                // pgoutput's text format is the type's output function: booleans are t/f, not true/false.
                var text = reader.GetString(i);
                text = relation.Columns[i].TypeOid == 16 ? text[..1] : text;
                builder.Add(ValueKind.Text, Encoding.UTF8.GetBytes(text));
            }
        }

        return builder.Build();
    }

    public TransactionInfo NextTransaction() =>
        new(1, new NpgsqlLogSequenceNumber((ulong)Interlocked.Add(ref _lsn, 0x100)), DateTime.UtcNow, null);

    public async Task<ChangeEvent> UpsertEventAsync(string table, Guid hubId, TransactionInfo tx, int position = 0) =>
        new(await RelationAsync(table), ChangeKind.Insert, await ReadRowAsync(table, hubId), null, tx, position);

    /// <summary>A DELETE event; call before deleting the row (REPLICA IDENTITY FULL sends the whole old row).</summary>
    public async Task<ChangeEvent> DeleteEventAsync(string table, Guid hubId, TransactionInfo tx, int position = 0) =>
        new(await RelationAsync(table), ChangeKind.Delete, null, await ReadRowAsync(table, hubId), tx, position);

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

    public async ValueTask DisposeAsync()
    {
        await Sandbox.DisposeAsync();
        await DataSource.DisposeAsync();
        Logs.Factory.Dispose();
    }
}

/// <summary>Keeps every formatted log line with its exception, so a test can search them for secrets.</summary>
public sealed class Logs : ILoggerProvider
{
    public Logs()
    {
        Factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(this));
    }

    public ILoggerFactory Factory { get; }

    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(Logs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}
