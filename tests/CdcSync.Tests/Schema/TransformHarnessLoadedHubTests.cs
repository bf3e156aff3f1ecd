using CdcSync.Schema;
using CdcSync.Tests.Infrastructure;

namespace CdcSync.Tests.Schema;

/// <summary>A hub as the README's workflow leaves it: 100,000 accounts mapped to customers, contacts, NetSuite-born customers.</summary>
public sealed class LoadedHubFixture : IAsyncLifetime
{
    public const int Accounts = 100_000;

    public string Hub { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hub = await TestPostgres.CreateMigratedHubAsync(nameof(LoadedHubFixture));
        // The 100,000 accounts in one INSERT ... SELECT with the mapping trigger off, as a bulk
        // load would: through the trigger the load is one 30-second transaction, and a long
        // transaction stalls logical slot creation for every other test on the server. A slice
        // goes through the mapping so the hub holds linked customers and contacts too.
        await TransformTests.ExecuteAsync(Hub, $$"""
            ALTER TABLE sf_accounts DISABLE TRIGGER cdc_sf_accounts_to_ns;
            INSERT INTO sf_accounts (id, name, phone, website, billingcity, billingcountry, createddate)
            SELECT '001LOAD' || lpad(g::text, 11, '0'), 'Load Account ' || g, '(415) 555-' || lpad((g % 10000)::text, 4, '0'),
                   'load' || g || '.example', 'City ' || (g % 100), 'USA', now()
              FROM generate_series(1, {{Accounts}}) g;
            ALTER TABLE sf_accounts ENABLE TRIGGER cdc_sf_accounts_to_ns;
            """);
        await TransformTests.ExecuteAsync(Hub, """
            INSERT INTO sf_contacts (id, accountid, lastname, email, createddate)
            SELECT '003LOAD' || lpad(g::text, 11, '0'), '001LOAD' || lpad(g::text, 11, '0'), 'Person ' || g, 'p' || g || '@load.example', now()
              FROM generate_series(1, 2000) g;
            """);
        await TransformTests.ExecuteAsync(Hub, """
            INSERT INTO ns_customers (internalid, companyname, email)
            SELECT (900000 + g)::text, 'NS Load ' || g, 'n' || g || '@load.example' FROM generate_series(1, 500) g;
            INSERT INTO cdc.checkpoints (connector, lsn) VALUES ('netsuite', '0/1000000'), ('salesforce', '0/1000000');
            INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error)
            SELECT 'netsuite', 'ns_customers', 'load-' || g, '{}', 'load' FROM generate_series(1, 50) g;
            """);
        Assert.Equal(2000L + 500L, await MigrateTests.ScalarAsync<long>(Hub, "SELECT count(*) FROM cdc.identity_links WHERE object = 'ns_customers'"));
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

public sealed class TransformHarnessLoadedHubTests(LoadedHubFixture fixture) : IClassFixture<LoadedHubFixture>
{
    private const string Footprint = """
        SELECT (SELECT count(*) FROM sf_accounts) || '/' || (SELECT count(*) FROM sf_contacts) || '/'
            || (SELECT count(*) FROM ns_customers) || '/' || (SELECT count(*) FROM cdc.identity_links) || '/'
            || (SELECT count(*) FROM cdc.dead_letters) || '/' || (SELECT max(xmin::text::bigint) FROM ns_customers)
        """;

    [Fact]
    public async Task TransformsTest_HubHolding100kAccounts_AllPassInTheScratchDatabase()
    {
        Assert.Equal((long)LoadedHubFixture.Accounts, await MigrateTests.ScalarAsync<long>(fixture.Hub, "SELECT count(*) FROM sf_accounts WHERE id LIKE '001LOAD%'"));
        var before = await MigrateTests.ScalarAsync<string>(fixture.Hub, Footprint);

        var run = await new TransformTestRunner(fixture.Hub, Repo.Scripts()).RunAsync(null, null, CancellationToken.None);

        Assert.True(run.Results.Count >= 10, $"only {run.Results.Count} transform tests found");
        Assert.All(run.Results, r => Assert.True(r.Passed, $"{r.File}:{r.Line} {r.Name}: {r.Message}"));
        Assert.False(await TransformTests.DatabaseExistsAsync(fixture.Hub, run.ScratchDatabase!), $"scratch database {run.ScratchDatabase} still exists: {run.CleanupError}");
        Assert.Equal(before, await MigrateTests.ScalarAsync<string>(fixture.Hub, Footprint));
    }

    [Fact]
    public async Task TransformsTest_HubHolding100kAccounts_AllPassInPlace_BecauseEachTestLooksOnlyAtItsOwnRows()
    {
        var before = await MigrateTests.ScalarAsync<string>(fixture.Hub, Footprint);

        var run = await new TransformTestRunner(fixture.Hub, Repo.Scripts(), TransformTestIsolation.InPlace).RunAsync(null, null, CancellationToken.None);

        Assert.True(run.Results.Count >= 10, $"only {run.Results.Count} transform tests found");
        Assert.All(run.Results, r => Assert.True(r.Passed, $"{r.File}:{r.Line} {r.Name}: {r.Message}"));
        Assert.Null(run.ScratchDatabase);
        Assert.Equal(before, await MigrateTests.ScalarAsync<string>(fixture.Hub, Footprint));
    }
}
