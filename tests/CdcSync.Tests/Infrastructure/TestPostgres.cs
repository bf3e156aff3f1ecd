using System.Runtime.CompilerServices;
using Npgsql;
using Testcontainers.PostgreSql;

namespace CdcSync.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL server the tests run against: CDCSYNC_TEST_DB (a superuser connection string,
/// set by scripts/test.sh from a throwaway cluster) when given, else a Testcontainers container.
/// Each test gets its own database, named after the test, dropped and recreated.
/// </summary>
public static class TestPostgres
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _adminConnectionString;
    private static PostgreSqlContainer? _container;

    public static async Task<string> AdminConnectionStringAsync()
    {
        if (_adminConnectionString is not null)
        {
            return _adminConnectionString;
        }

        await Gate.WaitAsync();
        try
        {
            if (_adminConnectionString is not null)
            {
                return _adminConnectionString;
            }

            var fromEnv = Environment.GetEnvironmentVariable("CDCSYNC_TEST_DB");
            if (!string.IsNullOrWhiteSpace(fromEnv))
            {
                _adminConnectionString = fromEnv;
            }
            else if (Environment.GetEnvironmentVariable("CI") == "true")
            {
                throw new InvalidOperationException("CDCSYNC_TEST_DB is not set in CI; run the tests through scripts/test.sh, which starts a local PostgreSQL.");
            }
            else
            {
                _container = new PostgreSqlBuilder("postgres:15")
                    .WithCommand("-c", "wal_level=logical", "-c", "max_replication_slots=512", "-c", "max_wal_senders=64")
                    .Build();
                await _container.StartAsync();
                _adminConnectionString = _container.GetConnectionString();
            }

            await using var conn = new NpgsqlConnection(_adminConnectionString);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SHOW wal_level", conn);
            var walLevel = (string?)await cmd.ExecuteScalarAsync();
            if (walLevel != "logical")
            {
                throw new InvalidOperationException($"The test PostgreSQL has wal_level={walLevel}; the tests need wal_level=logical (scripts/devdb.sh sets it).");
            }

            return _adminConnectionString;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Creates an empty database named after the calling test and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync([CallerMemberName] string name = "", string suffix = "")
    {
        var admin = await AdminConnectionStringAsync();
        var dbName = DatabaseName(name + suffix);
        await DropDatabaseAsync(dbName);
        await using (var conn = new NpgsqlConnection(admin))
        {
            await conn.OpenAsync();
            // CREATE and DROP DATABASE wait for checkpoints: longer than the default 30 s on a busy server.
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{dbName}\"", conn) { CommandTimeout = 180 };
            await cmd.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(admin) { Database = dbName, Pooling = true }.ConnectionString;
    }

    /// <summary>A fresh database named after the calling test, migrated with the checkout's SQL (as `cdcsync migrate`).</summary>
    public static async Task<string> CreateMigratedHubAsync([CallerMemberName] string name = "", string suffix = "")
    {
        var hub = await CreateDatabaseAsync(name, suffix);
        var result = await new CdcSync.Schema.HubMigrator(hub, Repo.Scripts()).MigrateAsync(CancellationToken.None);
        Assert.True(result.Succeeded, result.Error);
        return hub;
    }

    public static async Task DropDatabaseAsync(string dbName)
    {
        var admin = await AdminConnectionStringAsync();
        await using var conn = new NpgsqlConnection(admin);
        await conn.OpenAsync();
        // Slots pin the database; a test that failed may have left one behind.
        await using (var drop = new NpgsqlCommand(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", conn))
        {
            drop.Parameters.Add(new NpgsqlParameter { Value = dbName });
            await drop.ExecuteNonQueryAsync();
        }

        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{dbName}\" WITH (FORCE)", conn) { CommandTimeout = 180 };
        await cmd.ExecuteNonQueryAsync();
    }

    public static string DatabaseName(string testName)
    {
        var clean = new string(testName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        var name = "t_" + clean;
        return name.Length > 60 ? name[..50] + "_" + (uint)StableHash(name) : name;
    }

    private static int StableHash(string s)
    {
        var h = 17;
        foreach (var c in s)
        {
            h = unchecked((h * 31) + c);
        }

        return h;
    }
}
