using CdcSync.Hub;
using CdcSync.Pipeline;
using CdcSync.Tests.Infrastructure;
using Npgsql;

namespace CdcSync.Tests.Pipeline;

public sealed class PipelineTests
{
    private const string AwkwardTable = "\"my.schema\".\"Quoted\"\"Name\"";

    private const string AwkwardDdl = """
        CREATE SCHEMA "my.schema";
        CREATE TABLE "my.schema"."Quoted""Name" (
            id int PRIMARY KEY,
            amount numeric(20,6),
            at timestamptz,
            doc jsonb,
            tags text[],
            ids int[],
            uid uuid,
            blob bytea,
            label text,
            flag boolean,
            big bigint,
            ratio double precision,
            day date,
            empty text);
        """;

    private static string Snapshot(string table, string orderBy = "id") =>
        $"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY {orderBy}), '') FROM {table} t";

    [Fact]
    public async Task Run_InsertsUpdatesKeyChangesDeletesAndCommonTypes_TargetIdenticalToHub()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_InsertsUpdatesKeyChangesDeletesAndCommonTypes_TargetIdenticalToHub));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, AwkwardDdl);
        await TestPipeline.ExecuteAsync(target, AwkwardDdl);

        await using var pipeline = await TestPipeline.StartAsync(hub, "types_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { [AwkwardTable] = ["target"] });
        await TestPipeline.ExecuteAsync(hub, """
            INSERT INTO "my.schema"."Quoted""Name" VALUES
              (1, 12345678901234.123456, '2024-02-29 23:59:59.123456+00', '{"a": [1, 2, {"b": null}], "ü": "ß"}', ARRAY['x', NULL, 'z,"q"'], ARRAY[1, 2, 3],
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10', 'Zürich – 東京 🚀', true, 9223372036854775807, 1.5e-300, '1999-12-31', NULL),
              (2, -0.000001, '1970-01-01 00:00:00+00', '[]', '{}', '{}', NULL, '\x', '', false, -1, 'NaN', 'infinity', NULL),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            UPDATE "my.schema"."Quoted""Name" SET label = label || ' changed', amount = amount * 2 WHERE id = 1;
            UPDATE "my.schema"."Quoted""Name" SET id = 20 WHERE id = 2;
            DELETE FROM "my.schema"."Quoted""Name" WHERE id = 3;
            """);

        await pipeline.WaitForSameAsync(hub, target, Snapshot(AwkwardTable));
        Assert.Contains("Zürich – 東京 🚀 changed", await TestPipeline.TextAsync(target, Snapshot(AwkwardTable)));
        Assert.Equal("1,20", await TestPipeline.TextAsync(target, $"SELECT string_agg(id::text, ',' ORDER BY id) FROM {AwkwardTable}"));

        // Several transactions touching the same row, then one that touches it again.
        for (var i = 0; i < 20; i++)
        {
            await TestPipeline.ExecuteAsync(hub, $"UPDATE {AwkwardTable} SET big = big - 1, label = 'v{i}' WHERE id = 1");
        }

        await pipeline.WaitForSameAsync(hub, target, Snapshot(AwkwardTable));

        // The hub mirrors the target's checkpoint for `cdcsync status`.
        await TestPipeline.WaitUntilAsync(async () =>
            await TestPipeline.TextAsync(target, "SELECT lsn::text FROM cdcsync.checkpoints WHERE connector = 'target'")
            == await TestPipeline.TextAsync(hub, "SELECT lsn::text FROM cdc.checkpoints WHERE connector = 'target'"), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Run_TextValuesInsteadOfBinary_TargetIdenticalToHub()
    {
        // The path servers before PostgreSQL 14 take (and Hub:Binary=false): text values, text COPY.
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_TextValuesInsteadOfBinary_TargetIdenticalToHub));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, AwkwardDdl);
        await TestPipeline.ExecuteAsync(target, AwkwardDdl);

        await using var pipeline = await TestPipeline.StartAsync(hub, "text_slot", new Dictionary<string, string> { ["target"] = target },
            new Dictionary<string, string[]> { [AwkwardTable] = ["target"] }, new Dictionary<string, string?> { ["Hub:Binary"] = "false" });
        await TestPipeline.ExecuteAsync(hub, """
            INSERT INTO "my.schema"."Quoted""Name" VALUES
              (1, 1.5, now(), '{"tab": "a\tb", "nl": "x\ny", "bs": "c:\\d"}', ARRAY['x', NULL, E'tab\there'], ARRAY[1, 2],
               gen_random_uuid(), '\x00ff', E'line1\nline2\ttabbed \\ backslash', true, 1, 2.5, '2024-01-01', NULL),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            UPDATE "my.schema"."Quoted""Name" SET id = 3 WHERE id = 2;
            """);

        await pipeline.WaitForSameAsync(hub, target, Snapshot(AwkwardTable));
    }

    [Fact]
    public async Task Run_TruncateReplicaIdentityFullAndUnchangedToast_TargetIdenticalToHub()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_TruncateReplicaIdentityFullAndUnchangedToast_TargetIdenticalToHub));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string ddl = """
            CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
            CREATE TABLE full_rows (id int PRIMARY KEY, v text);
            """;
        await TestPipeline.ExecuteAsync(hub, ddl + "ALTER TABLE full_rows REPLICA IDENTITY FULL;");
        await TestPipeline.ExecuteAsync(target, ddl);

        await using var pipeline = await TestPipeline.StartAsync(hub, "toast_slot", new Dictionary<string, string> { ["target"] = target },
            new Dictionary<string, string[]> { ["public.docs"] = ["target"], ["public.full_rows"] = ["target"] },
            // A budget smaller than the backlog: the reader must wait for the writer, not buffer it all.
            new Dictionary<string, string?> { ["Hub:MaxMegabytesInFlight"] = "1" });

        // A body big and random enough to be TOASTed out of line (no compression wins).
        await TestPipeline.ExecuteAsync(hub, """
            INSERT INTO docs SELECT g, 'title ' || g, (SELECT string_agg(md5(random()::text || i::text), '') FROM generate_series(1, 400) i) FROM generate_series(1, 300) g;
            INSERT INTO full_rows SELECT g, 'v' || g FROM generate_series(1, 10) g;
            """);
        await pipeline.WaitForSameAsync(hub, target, Snapshot("docs"));

        // Updates that do not touch body: the server sends it as "unchanged", never as NULL.
        await TestPipeline.ExecuteAsync(hub, """
            UPDATE docs SET title = title || ' (edited)' WHERE id <= 3;
            UPDATE full_rows SET v = v || '!' WHERE id % 2 = 0;
            DELETE FROM full_rows WHERE id = 3;
            UPDATE full_rows SET id = 100 WHERE id = 5;
            """);
        await pipeline.WaitForSameAsync(hub, target, Snapshot("docs"));
        await pipeline.WaitForSameAsync(hub, target, Snapshot("full_rows"));
        Assert.Equal("0", await TestPipeline.TextAsync(target, "SELECT count(*) FROM docs WHERE body IS NULL"));

        await TestPipeline.ExecuteAsync(hub, "TRUNCATE full_rows; INSERT INTO full_rows VALUES (7, 'after truncate');");
        await pipeline.WaitForSameAsync(hub, target, Snapshot("full_rows"));
        Assert.Equal("1", await TestPipeline.TextAsync(target, "SELECT count(*) FROM full_rows"));
    }

    [Fact]
    public async Task Run_TransactionUnderOriginOfA_ReachesBButNotA_AndUntaggedReachesBoth()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_TransactionUnderOriginOfA_ReachesBButNotA_AndUntaggedReachesBoth));
        var targetA = await TestPostgres.CreateDatabaseAsync(suffix: "_a");
        var targetB = await TestPostgres.CreateDatabaseAsync(suffix: "_b");
        const string ddl = "CREATE TABLE items (id int PRIMARY KEY, v text); CREATE TABLE items_copy (id int PRIMARY KEY, v text);";
        await TestPipeline.ExecuteAsync(hub, ddl + """
            CREATE FUNCTION copy_item() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO items_copy VALUES (NEW.id, NEW.v) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v;
                RETURN NULL;
            END $$;
            CREATE TRIGGER copy_item AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION copy_item();
            """);
        await TestPipeline.ExecuteAsync(targetA, ddl);
        await TestPipeline.ExecuteAsync(targetB, ddl);

        await using var pipeline = await TestPipeline.StartAsync(hub, "origin_slot",
            new Dictionary<string, string> { ["a"] = targetA, ["b"] = targetB },
            new Dictionary<string, string[]> { ["public.items"] = ["a", "b"], ["public.items_copy"] = ["a", "b"] });

        await using (var dataSource = NpgsqlDataSource.Create(hub))
        await using (var session = await ReplicationOrigins.OpenAsync(dataSource, "a", CancellationToken.None))
        {
            await using var cmd = new NpgsqlCommand("INSERT INTO items VALUES (1, 'from a')", session.Connection);
            await cmd.ExecuteNonQueryAsync();
        }

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO items VALUES (2, 'untagged')");

        await pipeline.WaitForSameAsync(hub, targetB, Snapshot("items"));
        await pipeline.WaitForSameAsync(hub, targetB, Snapshot("items_copy"));
        // Row 2 reaching a proves a is caught up past row 1's transaction, which it must not have.
        await pipeline.WaitForSameAsync(hub, targetA, "SELECT count(*) FROM items WHERE id = 2");
        Assert.Equal("(2,untagged)", await TestPipeline.TextAsync(targetA, Snapshot("items")));
        Assert.Equal("(2,untagged)", await TestPipeline.TextAsync(targetA, Snapshot("items_copy")));
        Assert.True(pipeline.Runner.ChangesSuppressedByOrigin >= 2);
    }

    /// <summary>
    /// Origins are server-wide. Two hubs on one server with the same connector names: while the other
    /// hub's worker (another process) holds its connector a's origin, this hub's connector a tags its own
    /// writes all the same, and they stay out of a. WAL written under the name of versions before
    /// per-hub names (<c>cdcsync:a</c>) is still a's own.
    /// </summary>
    [Fact]
    public async Task Run_TwoHubsOnOneServerWithTheSameConnectorNames_EachTagsItsOwnWrites_AndTheOldNameStillCounts()
    {
        var otherHub = await TestPipeline.MigratedHubAsync(nameof(Run_TwoHubsOnOneServerWithTheSameConnectorNames_EachTagsItsOwnWrites_AndTheOldNameStillCounts) + "_other");
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_TwoHubsOnOneServerWithTheSameConnectorNames_EachTagsItsOwnWrites_AndTheOldNameStillCounts));
        var targetA = await TestPostgres.CreateDatabaseAsync(suffix: "_a");
        var targetB = await TestPostgres.CreateDatabaseAsync(suffix: "_b");
        const string ddl = "CREATE TABLE items (id int PRIMARY KEY, v text);";
        await TestPipeline.ExecuteAsync(hub, ddl);
        await TestPipeline.ExecuteAsync(targetA, ddl);
        await TestPipeline.ExecuteAsync(targetB, ddl);

        // The other hub's worker, in another process, writes as its connector a and keeps the origin.
        await using var other = new NpgsqlConnection(otherHub);
        await other.OpenAsync();
        await ReplicationOrigins.SetupSessionAsync(other, "a", CancellationToken.None);

        await using var pipeline = await TestPipeline.StartAsync(hub, "two_hubs_slot",
            new Dictionary<string, string> { ["a"] = targetA, ["b"] = targetB },
            new Dictionary<string, string[]> { ["public.items"] = ["a", "b"] });
        await using (var dataSource = NpgsqlDataSource.Create(hub))
        await using (var session = await ReplicationOrigins.OpenAsync(dataSource, "a", CancellationToken.None))
        {
            await using var cmd = new NpgsqlCommand("INSERT INTO items VALUES (1, 'from a')", session.Connection);
            await cmd.ExecuteNonQueryAsync();
        }

        // A transaction tagged with the old, server-wide name (WAL from before an upgrade).
        await using (var legacy = new NpgsqlConnection(hub))
        {
            await legacy.OpenAsync();
            // One statement each: a transaction takes the session's origin when it commits.
            foreach (var sql in new[]
            {
                "SELECT pg_replication_origin_create('cdcsync:a') WHERE pg_replication_origin_oid('cdcsync:a') IS NULL",
                "SELECT pg_replication_origin_session_setup('cdcsync:a')",
                "INSERT INTO items VALUES (2, 'from a, old name')",
                "SELECT pg_replication_origin_session_reset()",
            })
            {
                await using var cmd = new NpgsqlCommand(sql, legacy);
                await cmd.ExecuteNonQueryAsync();
            }
        }

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO items VALUES (3, 'untagged')");

        await pipeline.WaitForSameAsync(hub, targetB, Snapshot("items"));
        await pipeline.WaitForSameAsync(hub, targetA, "SELECT count(*) FROM items WHERE id = 3");
        Assert.Equal("(3,untagged)", await TestPipeline.TextAsync(targetA, Snapshot("items")));
        // One origin per hub and connector, both on the server at once.
        Assert.Equal("1", await TestPipeline.TextAsync(otherHub, "SELECT count(*) FROM pg_replication_origin WHERE roname = 'cdcsync:' || current_database() || ':a'"));
        Assert.Equal("1", await TestPipeline.TextAsync(hub, "SELECT count(*) FROM pg_replication_origin WHERE roname = 'cdcsync:' || current_database() || ':a'"));
    }

    [Fact]
    public async Task Run_MillionRowTransaction_StreamsThroughAndLandsWhole()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_MillionRowTransaction_StreamsThroughAndLandsWhole));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string ddl = "CREATE TABLE bulk (id int PRIMARY KEY, v int, note text);";
        await TestPipeline.ExecuteAsync(hub, ddl);
        await TestPipeline.ExecuteAsync(target, ddl);

        await using var pipeline = await TestPipeline.StartAsync(hub, "bulk_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.bulk"] = ["target"] });
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO bulk SELECT g, g % 1000, 'row ' || g FROM generate_series(1, 1000000) g");

        const string summary = "SELECT count(*) || ':' || coalesce(sum(v), 0) || ':' || coalesce(max(md5(note)), '') FROM bulk";
        await pipeline.WaitForSameAsync(hub, target, summary, TimeSpan.FromMinutes(4));
        Assert.Equal("1000000", await TestPipeline.TextAsync(target, "SELECT count(*) FROM bulk"));
    }

    [Fact]
    public async Task Run_HubBusyOnlyWithUnroutedTables_SlotStillAdvancesThroughHeartbeats()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_HubBusyOnlyWithUnroutedTables_SlotStillAdvancesThroughHeartbeats));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE routed (id int PRIMARY KEY); CREATE TABLE noise (id int, v text);");
        await TestPipeline.ExecuteAsync(target, "CREATE TABLE routed (id int PRIMARY KEY);");
        await using var pipeline = await TestPipeline.StartAsync(hub, "idle_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.routed"] = ["target"] });

        // WAL the slot must not hold on to: nothing in it is routed anywhere.
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO noise SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
        var written = await TestPipeline.TextAsync(hub, "SELECT pg_current_wal_lsn()::text");

        await TestPipeline.WaitUntilAsync(async () =>
            await TestPipeline.TextAsync(hub, $"SELECT confirmed_flush_lsn >= '{written}'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'idle_slot'") == "True",
            TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Run_InsertOfRowTheTargetAlreadyHolds_FallsBackToUpsert()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_InsertOfRowTheTargetAlreadyHolds_FallsBackToUpsert));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE pre (id int PRIMARY KEY, v text)");
        await TestPipeline.ExecuteAsync(target, "CREATE TABLE pre (id int PRIMARY KEY, v text); INSERT INTO pre VALUES (2, 'stale copy')");
        await using var pipeline = await TestPipeline.StartAsync(hub, "pre_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.pre"] = ["target"] });

        await TestPipeline.ExecuteAsync(hub, "INSERT INTO pre SELECT g, 'hub ' || g FROM generate_series(1, 100) g");
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO pre SELECT g, 'hub ' || g FROM generate_series(101, 200) g");

        await pipeline.WaitForSameAsync(hub, target, Snapshot("pre"));
        Assert.Equal(PipelineHealth.Running, pipeline.Runner.Health);
        Assert.Equal(0, pipeline.Runner.Restarts);
    }

    [Fact]
    public async Task Run_HubTableGainsColumnTargetLacks_StopsWithErrorNamingColumnAndFix()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_HubTableGainsColumnTargetLacks_StopsWithErrorNamingColumnAndFix));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE evolving (id int PRIMARY KEY, v text)");
        await TestPipeline.ExecuteAsync(target, "CREATE TABLE evolving (id int PRIMARY KEY, v text)");
        await using var pipeline = await TestPipeline.StartAsync(hub, "evolving_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.evolving"] = ["target"] });
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO evolving VALUES (1, 'before')");
        await pipeline.WaitForSameAsync(hub, target, Snapshot("evolving"));

        // The stream describes the table again with the new column; the target cannot take it.
        await TestPipeline.ExecuteAsync(hub, "ALTER TABLE evolving ADD COLUMN priority int; INSERT INTO evolving VALUES (2, 'after', 5)");

        var e = await Assert.ThrowsAsync<OperatorException>(() => pipeline.WaitForSameAsync(hub, target, Snapshot("evolving")));
        Assert.Contains("priority", e.Message);
        Assert.Contains("ADD COLUMN", e.Message);
        Assert.Equal("(1,before)", await TestPipeline.TextAsync(target, Snapshot("evolving")));

        // Once the target has the column, a new run picks up where the checkpoint is.
        await TestPipeline.ExecuteAsync(target, "ALTER TABLE evolving ADD COLUMN priority int");
        await using var again = await TestPipeline.StartAsync(hub, "evolving_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.evolving"] = ["target"] });
        await again.WaitForSameAsync(hub, target, Snapshot("evolving"));
    }

    [Fact]
    public async Task Run_SlotDroppedBehindItsBack_RefusesToStartAndPointsToResync()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_SlotDroppedBehindItsBack_RefusesToStartAndPointsToResync));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, "CREATE TABLE t (id int PRIMARY KEY)");
        await TestPipeline.ExecuteAsync(target, "CREATE TABLE t (id int PRIMARY KEY)");
        var connectors = new Dictionary<string, string> { ["target"] = target };
        var routes = new Dictionary<string, string[]> { ["public.t"] = ["target"] };
        await using (var first = await TestPipeline.StartAsync(hub, "dropped_slot", connectors, routes))
        {
            await first.StopAsync();
        }

        await TestPipeline.ExecuteAsync(hub, "SELECT pg_drop_replication_slot('dropped_slot')");

        var e = await Assert.ThrowsAsync<OperatorException>(async () =>
        {
            await using var second = await TestPipeline.StartAsync(hub, "dropped_slot", connectors, routes);
        });
        Assert.Contains("dropped_slot", e.Message);
        Assert.Contains("resync", e.Message);
        Assert.Equal("0", await TestPipeline.TextAsync(hub, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dropped_slot'"));
    }

    [Fact]
    public async Task Run_RouteToUnknownTable_FailsNamingTheTable()
    {
        var hub = await TestPipeline.MigratedHubAsync(nameof(Run_RouteToUnknownTable_FailsNamingTheTable));
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");

        var e = await Assert.ThrowsAsync<OperatorException>(async () =>
        {
            await using var pipeline = await TestPipeline.StartAsync(hub, "unknown_slot", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.no_such_table"] = ["target"] });
        });
        Assert.Contains("no_such_table", e.Message);
    }
}
