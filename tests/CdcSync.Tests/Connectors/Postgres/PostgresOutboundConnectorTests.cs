using CdcSync.Connectors.Postgres;
using CdcSync.Replication;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;
using static CdcSync.Tests.Pipeline.TestChanges;
using static CdcSync.Tests.Pipeline.TestPipeline;

namespace CdcSync.Tests.Connectors.Postgres;

/// <summary>
/// One target database for the class that already holds other data (another connector's
/// checkpoint, other tables): every test uses tables and a connector name of its own and looks
/// only at those, so the tests hold on a database that is not empty.
/// </summary>
public sealed class PostgresTargetFixture : IAsyncLifetime
{
    public const string OtherConnector = "someone_else";

    public string Target { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Target = await TestPostgres.CreateDatabaseAsync(nameof(PostgresOutboundConnectorTests));
        await ExecuteAsync(Target, $"""
            CREATE SCHEMA cdcsync;
            CREATE TABLE cdcsync.checkpoints (connector text PRIMARY KEY, lsn pg_lsn NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO cdcsync.checkpoints (connector, lsn) VALUES ('{OtherConnector}', '5/0');
            CREATE TABLE public.orders (id int PRIMARY KEY, name text, body text, qty int);
            INSERT INTO public.orders SELECT g, 'existing ' || g, 'body', g FROM generate_series(1, 100) g;
            """);
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>The PostgreSQL outbound connector against a real target database (no hub: the tests never need a row read back).</summary>
public sealed class PostgresOutboundConnectorTests(PostgresTargetFixture fixture) : IClassFixture<PostgresTargetFixture>
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task WriteAndCommit_InsertsUpdatesAndDeletes_LandInTheTargetBesideRowsAlreadyThere()
    {
        var table = await OrdersTableAsync("ins_upd_del");
        var hub = Relation(table);
        await using var connector = Connector(Unique("pg"));
        await connector.ReadCheckpointAsync(None);

        var first = Transaction(0x1000);
        await connector.WriteAsync([Insert(hub, first, 0, 1, "one", "body 1", 10), Insert(hub, first, 1, 2, "two", "body 2", 20), Insert(hub, first, 2, 3, "three", "body 3", 30)], None);
        await connector.CommitAsync(first.CommitLsn, None);
        var second = Transaction(0x2000);
        await connector.WriteAsync([Update(hub, second, 0, 2, "two v2", "body 2 v2", 21), Delete(hub, second, 1, 3), Update(hub, second, 2, 1000, "changed", "body", 2)], None);
        await connector.CommitAsync(second.CommitLsn, None);

        Assert.Equal("1:one:body 1:10|2:two v2:body 2 v2:21|1000:changed:body:2|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal(second.CommitLsn, await connector.ReadCheckpointAsync(None));
    }

    [Fact]
    public async Task Commit_OfATransactionInChunks_WhoseLastChunkMeetsARowAlreadyThere_KeepsEveryChunkAndTheCheckpoint()
    {
        // Each chunk of new rows is tried as a COPY straight into the table under a savepoint that
        // the next chunk or the COMMIT releases; a conflict undoes only its own chunk's attempt.
        var table = await OrdersTableAsync("chunks");
        var hub = Relation(table);
        var name = Unique("pg");
        await using var connector = Connector(name);
        await connector.ReadCheckpointAsync(None);

        var tx = Transaction(0x5000);
        await connector.WriteAsync([Insert(hub, tx, 0, 1, "one", "b1", 1), Insert(hub, tx, 1, 2, "two", "b2", 2)], None);
        await connector.WriteAsync([Insert(hub, tx, 2, 3, "three", "b3", 3)], None);
        await connector.WriteAsync([Insert(hub, tx, 3, 4, "four", "b4", 4), Insert(hub, tx, 4, 1001, "replaced", "b", 9)], None);
        await connector.CommitAsync(tx.CommitLsn, None);

        Assert.Equal("1:one:b1:1|2:two:b2:2|3:three:b3:3|4:four:b4:4|1000:big:big body:5|1001:replaced:b:9", await RowsAsync(table));
        Assert.Equal(tx.CommitLsn.ToString(), await CheckpointAsync(name));

        var next = Transaction(0x6000);
        await connector.WriteAsync([Update(hub, next, 0, 2, "two v2", "b2", 20)], None);
        await connector.CommitAsync(next.CommitLsn, None);
        Assert.Equal(next.CommitLsn.ToString(), await CheckpointAsync(name));
        Assert.Equal("2:two v2:b2:20", await TextAsync(fixture.Target, $"SELECT format('%s:%s:%s:%s', id, name, body, qty) FROM public.{table} WHERE id = 2"));
    }

    [Fact]
    public async Task Update_WithAnUnchangedToastedColumn_WritesOnlyTheColumnsItCarries()
    {
        var table = await OrdersTableAsync("partial");
        // Records every UPDATE that names body in its SET list, whatever the value.
        await ExecuteAsync(fixture.Target, $"""
            CREATE TABLE public.{table}_body_writes (id int);
            CREATE FUNCTION public.{table}_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.{table}_body_writes VALUES (NEW.id); RETURN NEW; END $$;
            CREATE TRIGGER log_body AFTER UPDATE OF body ON public.{table} FOR EACH ROW EXECUTE FUNCTION public.{table}_log();
            """);
        var hub = Relation(table);
        await using var connector = Connector(Unique("pg"));
        await connector.ReadCheckpointAsync(None);

        var tx = Transaction(0x3000);
        await connector.WriteAsync([Update(hub, tx, 0, 1000, "renamed", Unchanged, 6), Update(hub, tx, 1, 1001, "full row", "new body", 7)], None);
        await connector.CommitAsync(tx.CommitLsn, None);

        Assert.Equal("1000:renamed:big body:6|1001:full row:new body:7", await RowsAsync(table));
        // The full-row update names body (the trigger works); the partial one leaves it out.
        Assert.Equal("1001", await TextAsync(fixture.Target, $"SELECT string_agg(id::text, ',' ORDER BY id) FROM public.{table}_body_writes"));
    }

    [Fact]
    public async Task Commit_CheckpointBecomesVisibleTogetherWithTheRows_AndANewInstanceReadsIt()
    {
        var table = await OrdersTableAsync("checkpoint");
        var hub = Relation(table);
        var name = Unique("pg");
        await using var connector = Connector(name);
        // Another connector's checkpoint in the same table is not this one's.
        Assert.Equal(default, await connector.ReadCheckpointAsync(None));

        var tx = Transaction(0x4000);
        await connector.WriteAsync([Insert(hub, tx, 0, 1, "one", "b", 1), Update(hub, tx, 1, 1000, "changed", "b", 2)], None);
        Assert.Equal("1000:big:big body:5|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal("<null>", await CheckpointAsync(name));

        await connector.CommitAsync(tx.CommitLsn, None);

        Assert.Equal("1:one:b:1|1000:changed:b:2|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal("0/4000", await CheckpointAsync(name));
        Assert.Equal(tx.CommitLsn, await connector.ReadCheckpointAsync(None));
        await using (var restarted = Connector(name))
        {
            Assert.Equal(tx.CommitLsn, await restarted.ReadCheckpointAsync(None));
        }

        Assert.Equal("5/0", await CheckpointAsync(PostgresTargetFixture.OtherConnector));
    }

    [Fact]
    public async Task Abort_AfterWrites_DropsThemAndKeepsTheLastCheckpoint_ThenARetryApplies()
    {
        var table = await OrdersTableAsync("abort");
        var hub = Relation(table);
        var name = Unique("pg");
        await using var connector = Connector(name);
        await connector.ReadCheckpointAsync(None);
        var first = Transaction(0x5000);
        await connector.WriteAsync([Insert(hub, first, 0, 1, "one", "b", 1)], None);
        await connector.CommitAsync(first.CommitLsn, None);

        var second = Transaction(0x6000);
        IReadOnlyList<ChangeEvent> changes = [Insert(hub, second, 0, 2, "two", "b", 2), Update(hub, second, 1, 1, "one v2", "b", 1), Delete(hub, second, 2, 1000)];
        await connector.WriteAsync(changes, None);
        await connector.AbortAsync(None);

        Assert.Equal("1:one:b:1|1000:big:big body:5|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal(first.CommitLsn, await connector.ReadCheckpointAsync(None));

        // The pipeline sends the same transaction again after an abort.
        await connector.WriteAsync(changes, None);
        await connector.CommitAsync(second.CommitLsn, None);

        Assert.Equal("1:one v2:b:1|2:two:b:2|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal("0/6000", await CheckpointAsync(name));
    }

    [Fact]
    public async Task Abort_OfTheFirstTransaction_ThenTheSameInstanceRetries_AndApplies()
    {
        var table = await OrdersTableAsync("abortfirst");
        var hub = Relation(table);
        var name = Unique("pg");
        await using var connector = Connector(name);
        await connector.ReadCheckpointAsync(None);
        var first = Transaction(0x7000);
        IReadOnlyList<ChangeEvent> changes = [Insert(hub, first, 0, 3, "three", "b", 3)];

        // The batch's temp table is created in the transaction the abort rolls back.
        await connector.WriteAsync(changes, None);
        await connector.AbortAsync(None);
        await connector.WriteAsync(changes, None);
        await connector.CommitAsync(first.CommitLsn, None);

        Assert.Equal("3:three:b:3|1000:big:big body:5|1001:already there:body:1", await RowsAsync(table));
        Assert.Equal("0/7000", await CheckpointAsync(name));
    }

    [Fact]
    public async Task ColumnMapping_WritesMappedColumnsUnderTheirTargetNames_AndLeavesTheRestAlone()
    {
        var schema = Unique("mapped");
        var hubTable = Unique("accounts");
        await ExecuteAsync(fixture.Target, $"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.customers (customer_id int PRIMARY KEY, display_name text, local_note text);
            INSERT INTO {schema}.customers VALUES (2, 'old name', 'kept by the target');
            """);
        // The hub table has a column the target does not: it is not in the mapping, so it is not written.
        var hub = new RelationInfo(16500, "public", hubTable, 'd', [new("id", 23, -1, true), new("name", 25, -1, false), new("secret", 25, -1, false)]);
        var mapping = new PostgresTableMapping { Target = $"{schema}.customers", Columns = { ["id"] = "customer_id", ["name"] = "display_name" } };
        await using var connector = Connector(Unique("pg"), new() { [$"public.{hubTable}"] = mapping });
        await connector.ReadCheckpointAsync(None);

        var tx = Transaction(0x7000);
        await connector.WriteAsync([Insert(hub, tx, 0, 1, "Acme", "s3cret"), Update(hub, tx, 1, 2, "new name", "s3cret")], None);
        await connector.CommitAsync(tx.CommitLsn, None);

        Assert.Equal(
            "1:Acme:|2:new name:kept by the target",
            await TextAsync(fixture.Target, $"SELECT string_agg(format('%s:%s:%s', customer_id, display_name, local_note), '|' ORDER BY customer_id) FROM {schema}.customers"));
        Assert.Equal("0", await TextAsync(fixture.Target, $"SELECT count(*) FROM pg_class WHERE relname = '{hubTable}'"));
    }

    private PostgresOutboundConnector Connector(string name, Dictionary<string, PostgresTableMapping>? tables = null) =>
        new(name, new PostgresConnectorOptions { ConnectionString = fixture.Target, Tables = tables ?? [] }, NullLogger.Instance);

    /// <summary>A target table named like the hub table, holding two rows before the test writes (1000 and 1001).</summary>
    private async Task<string> OrdersTableAsync(string stem)
    {
        var table = Unique(stem);
        await ExecuteAsync(fixture.Target, $"""
            CREATE TABLE public.{table} (id int PRIMARY KEY, name text, body text, qty int);
            INSERT INTO public.{table} VALUES (1000, 'big', 'big body', 5), (1001, 'already there', 'body', 1);
            """);
        return table;
    }

    /// <summary>The hub table as the stream describes it: int4 key, text, text, int4.</summary>
    private static RelationInfo Relation(string table) =>
        new(16500, "public", table, 'd', [new("id", 23, -1, true), new("name", 25, -1, false), new("body", 25, -1, false), new("qty", 23, -1, false)]);

    private Task<string> RowsAsync(string table) =>
        TextAsync(fixture.Target, $"SELECT string_agg(format('%s:%s:%s:%s', id, name, body, qty), '|' ORDER BY id) FROM public.{table}");

    /// <summary>The checkpoint as another session sees it: only what is committed.</summary>
    private Task<string> CheckpointAsync(string connector) =>
        TextAsync(fixture.Target, $"SELECT lsn FROM cdcsync.checkpoints WHERE connector = '{connector}'");

    /// <summary>Names no other test or earlier run uses, so data left behind never meets a test.</summary>
    private static string Unique(string stem) => $"{stem}_{Guid.NewGuid():N}"[..(stem.Length + 13)];
}
