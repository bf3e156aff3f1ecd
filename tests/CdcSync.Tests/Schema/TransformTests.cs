using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Schema;

public sealed class TransformTests
{
    [Fact]
    public async Task TransformsTest_ShippedTests_AllPass()
    {
        var db = await TestPostgres.CreateDatabaseAsync();

        var results = await new TransformTestRunner(db, Repo.Scripts()).RunAsync(null, null, CancellationToken.None);

        Assert.True(results.Count >= 10, $"only {results.Count} transform tests found");
        Assert.All(results, r => Assert.True(r.Passed, $"{r.File}:{r.Line} {r.Name}: {r.Message}"));
        // Everything ran in rolled-back transactions: the database is still empty.
        Assert.False(await MigrateTests.ScalarAsync<bool>(db, "SELECT to_regclass('public.sf_accounts') IS NOT NULL"));
    }

    [Fact]
    public async Task TransformsTest_MappingBroken_FailsWithTheAssertionMessage()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        var dir = Repo.CopyScripts();
        var sfToNs = Directory.GetFiles(Path.Combine(dir, "transforms"), "*sf_to_ns*.sql").Single();
        var sql = await File.ReadAllTextAsync(sfToNs);
        // Break the mapping: the customer no longer gets the account's name as it is.
        const string line = "n.companyname := cdc.ns_company_name(a.name);";
        Assert.Contains(line, sql, StringComparison.Ordinal);
        await File.WriteAllTextAsync(sfToNs, sql.Replace(line, "n.companyname := 'BROKEN ' || cdc.ns_company_name(a.name);", StringComparison.Ordinal));

        var results = await new TransformTestRunner(db, ScriptSet.Load(dir)).RunAsync(null, null, CancellationToken.None);

        var failed = results.Where(r => !r.Passed).ToList();
        Assert.NotEmpty(failed);
        Assert.Contains(failed, r => r.Message!.Contains("assertion failed", StringComparison.Ordinal) && r.Message.Contains("BROKEN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SalesforceAccount_Inserted_YieldsCustomer_AndIdenticalUpdateKeepsItsXmin()
    {
        var db = await TestPostgres.CreateDatabaseAsync();
        Assert.True((await new HubMigrator(db, Repo.Scripts()).MigrateAsync(CancellationToken.None)).Succeeded);
        await using var conn = new NpgsqlConnection(db);
        await conn.OpenAsync();
        await ExecuteAsync(conn, """
            INSERT INTO sf_accounts (hub_id, id, name, phone, website, billingstreet, billingcity, billingstate, billingpostalcode, billingcountry, createddate)
            VALUES ('00000000-0000-0000-0000-0000000000a1', '001000000000009AAA', 'Globex Corporation', '(212) 555-0101', 'globex.com',
                    '5 Main St', 'Springfield', 'IL', '62701', 'United States', now());
            INSERT INTO sf_contacts (id, accountid, firstname, lastname, email, createddate)
            VALUES ('003000000000009AAA', '001000000000009AAA', 'Hank', 'Scorpio', 'hank@globex.com', now());
            """);

        const string customer = "SELECT companyname || '|' || email || '|' || phone || '|' || url FROM ns_customers WHERE externalid = 'sf-00000000-0000-0000-0000-0000000000a1'";
        Assert.Equal("Globex Corporation|hank@globex.com|2125550101|https://globex.com", await ScalarAsync<string>(conn, customer));
        var xmin = await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers");

        // The same values again, as an inbound echo would write them, in new transactions.
        await ExecuteAsync(conn, "UPDATE sf_accounts SET name = 'Globex Corporation', phone = '(212) 555-0101', website = 'globex.com'");
        await ExecuteAsync(conn, "UPDATE sf_contacts SET email = 'hank@globex.com'");

        Assert.Equal(xmin, await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers"));
        Assert.Equal(1L, await ScalarAsync<long>(conn, "SELECT count(*) FROM ns_customers"));

        await ExecuteAsync(conn, "UPDATE sf_accounts SET name = 'Globex Corp'");
        Assert.NotEqual(xmin, await ScalarAsync<string>(conn, "SELECT xmin::text FROM ns_customers"));
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
