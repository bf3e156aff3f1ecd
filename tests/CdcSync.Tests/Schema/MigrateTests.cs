using CdcSync.Hub;
using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Schema;

public sealed class MigrateTests
{
    [Fact]
    public async Task Migrate_EmptyDatabase_CreatesHubAndSecondRunDoesNothing()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var scripts = Repo.Scripts();
        var migrator = new HubMigrator(db, scripts);

        var first = await migrator.MigrateAsync(CancellationToken.None);

        Assert.True(first.Succeeded, first.Error);
        Assert.Equal(scripts.Migrations.Count + scripts.Transforms.Count + scripts.Checks.Count, first.Applied.Count);
        Assert.Empty(await migrator.PendingAsync(CancellationToken.None));
        foreach (var table in new[] { "cdc.checkpoints", "cdc.identity_links", "cdc.dead_letters", "cdc.conflicts", "cdc.audit_log", "public.sf_accounts", "public.sf_contacts", "public.ns_customers" })
        {
            Assert.True(await ScalarAsync<bool>(db, $"SELECT to_regclass('{table}') IS NOT NULL"), table);
        }

        var journalBefore = await ScalarAsync<long>(db, "SELECT count(*) FROM cdc.schema_journal");
        var second = await migrator.MigrateAsync(CancellationToken.None);
        Assert.True(second.Succeeded, second.Error);
        Assert.Empty(second.Applied);
        Assert.Equal(journalBefore, await ScalarAsync<long>(db, "SELECT count(*) FROM cdc.schema_journal"));
    }

    [Fact]
    public async Task Migrate_OneTransformEdited_RerunsOnlyThatTransform()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        Assert.True((await new HubMigrator(db, ScriptSet.Load(dir)).MigrateAsync(CancellationToken.None)).Succeeded);

        var edited = Directory.GetFiles(Path.Combine(dir, "transforms"), "*.sql").Order(StringComparer.Ordinal).Last();
        await File.AppendAllTextAsync(edited, "\n-- a comment is a change too\nCOMMENT ON SCHEMA cdc IS 'edited by a test';\n");

        var migrator = new HubMigrator(db, ScriptSet.Load(dir));
        var pending = await migrator.PendingAsync(CancellationToken.None);
        var result = await migrator.MigrateAsync(CancellationToken.None);

        Assert.True(result.Succeeded, result.Error);
        var only = Assert.Single(result.Applied);
        Assert.StartsWith($"transforms/{Path.GetFileName(edited)}@", only);
        Assert.Equal(pending, result.Applied);
        Assert.Equal("edited by a test", await ScalarAsync<string>(db, "SELECT obj_description('cdc'::regnamespace)"));
    }

    [Fact]
    public async Task Migrate_ScriptWithSyntaxError_StopsWithFileAndLineAndLeavesJournalConsistent()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(dir, "migrations", "9000_broken.sql"),
            "CREATE TABLE broken_ok (id int);\n\nCREATE TABLE broken_bad (id int,,);\n");

        var result = await new HubMigrator(db, ScriptSet.Load(dir)).MigrateAsync(CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("migrations/9000_broken.sql:3", result.Error);
        Assert.Contains("syntax error", result.Error);
        // The failing script rolled back as a whole; everything before it is journaled and applied.
        Assert.False(await ScalarAsync<bool>(db, "SELECT to_regclass('broken_ok') IS NOT NULL"));
        Assert.Equal(0L, await ScalarAsync<long>(db, "SELECT count(*) FROM cdc.schema_journal WHERE scriptname LIKE '%9000_broken%'"));
        Assert.True(await ScalarAsync<bool>(db, "SELECT to_regclass('public.sf_accounts') IS NOT NULL"));

        File.Delete(Path.Combine(dir, "migrations", "9000_broken.sql"));
        var retry = await new HubMigrator(db, ScriptSet.Load(dir)).MigrateAsync(CancellationToken.None);
        Assert.True(retry.Succeeded, retry.Error);
    }

    [Fact]
    public async Task Migrate_TransformThatRaises_ReportsTheMessageAndAppliesNothingOfIt()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        await File.WriteAllTextAsync(Path.Combine(dir, "transforms", "999_raises.sql"),
            "CREATE OR REPLACE FUNCTION cdc.raises_ok() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nDO $$\nBEGIN\n  RAISE EXCEPTION 'mapping table missing';\nEND\n$$;\n");

        var result = await new HubMigrator(db, ScriptSet.Load(dir)).MigrateAsync(CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("transforms/999_raises.sql:", result.Error);
        Assert.Contains("mapping table missing", result.Error);
        Assert.False(await ScalarAsync<bool>(db, "SELECT to_regprocedure('cdc.raises_ok()') IS NOT NULL"));
    }

    [Fact]
    public async Task Connect_WrongPassword_ExplainsWithoutPrintingIt()
    {
        var admin = new NpgsqlConnectionStringBuilder(await TestPostgres.AdminConnectionStringAsync()) { Password = "not-the-Secret-42" };

        var e = await Assert.ThrowsAsync<OperatorException>(() => HubConnection.OpenAsync(admin.ConnectionString, "CDCSYNC_DB", CancellationToken.None));

        Assert.Contains("password authentication failed", e.Message);
        Assert.Contains("CDCSYNC_DB", e.Message);
        Assert.DoesNotContain("not-the-Secret-42", e.ToString());
    }

    [Fact]
    public async Task Connect_NothingListening_SaysUnreachableAndWhere()
    {
        var admin = new NpgsqlConnectionStringBuilder(await TestPostgres.AdminConnectionStringAsync()) { Host = "127.0.0.1", Port = 1, Timeout = 3 };

        var e = await Assert.ThrowsAsync<OperatorException>(() => HubConnection.OpenAsync(admin.ConnectionString, "--db", CancellationToken.None));

        Assert.Contains("127.0.0.1:1", e.Message);
        Assert.Contains("--db", e.Message);
    }

    internal static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
