using CdcSync.Pipeline;
using CdcSync.Replication;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Npgsql;

namespace CdcSync.Tests.Resilience;

/// <summary>Defects of issue 9 that need no server restart: each test failed before its fix.</summary>
public sealed class ReaderAndTargetFaultTests
{
    private const string ToastTable = "CREATE TABLE public.docs (id int PRIMARY KEY, version int NOT NULL, body text NOT NULL);";

    private const string ToastSnapshot = "SELECT count(*) || ':' || coalesce(string_agg(id || '/' || version || '/' || md5(body) || '/' || length(body), ',' ORDER BY id), '') FROM public.docs";

    private static Dictionary<string, string?> Text(bool binary) => new() { ["Hub:Binary"] = binary ? "true" : "false" };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Run_KeyChangeLeavingLargeValueUnchanged_RowArrivesUnderNewKey(bool binary)
    {
        var hub = await TestPostgres.CreateMigratedHubAsync(suffix: binary ? "_bin" : "_text");
        var target = await TestPostgres.CreateDatabaseAsync(suffix: binary ? "_bin_target" : "_text_target");
        await TestPipeline.ExecuteAsync(hub, ToastTable);
        await TestPipeline.ExecuteAsync(target, ToastTable);
        await using var pipeline = await TestPipeline.StartAsync(hub, binary ? "toast_bin" : "toast_text", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.docs"] = ["target"] }, Text(binary));

        // 8 kB of hex digits from md5: stored out of line even after pglz, so an update that does
        // not touch it sends it as "unchanged".
        await TestPipeline.ExecuteAsync(hub, """
            INSERT INTO public.docs SELECT g, 1, (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 256) i) FROM generate_series(1, 3) g;
            """);
        await pipeline.WaitForSameAsync(hub, target, ToastSnapshot);
        Assert.Equal("x", await TestPipeline.TextAsync(hub, "SELECT CASE WHEN pg_column_size(body) > 2000 THEN 'x' ELSE 'compressed in line' END FROM public.docs WHERE id = 1"));

        await TestPipeline.ExecuteAsync(hub, "UPDATE public.docs SET id = 10, version = version + 1 WHERE id = 1");
        await TestPipeline.ExecuteAsync(hub, "UPDATE public.docs SET version = version + 1 WHERE id = 10");
        // In one transaction as well: the key change and a later update of the new key in one chunk.
        await TestPipeline.ExecuteAsync(hub, "BEGIN; UPDATE public.docs SET id = 20, version = version + 1 WHERE id = 2; UPDATE public.docs SET version = version + 1 WHERE id = 20; COMMIT;");
        await pipeline.WaitForSameAsync(hub, target, ToastSnapshot);
        Assert.Equal("3", await TestPipeline.TextAsync(target, "SELECT count(*) FROM public.docs WHERE id IN (3, 10, 20)"));
    }

    [Fact]
    public async Task Run_PartialUpdatesOfRowsTheTargetNeverHad_RowsReadBackFromHub()
    {
        // What `resync` does to a table with large values: touch every row without changing it.
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        await TestPipeline.ExecuteAsync(hub, ToastTable);
        await TestPipeline.ExecuteAsync(target, ToastTable);
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.docs SELECT g, 1, (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 256) i) FROM generate_series(1, 50) g");
        await using var pipeline = await TestPipeline.StartAsync(hub, "toast_resync", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.docs"] = ["target"] });

        await TestPipeline.ExecuteAsync(hub, "UPDATE public.docs SET version = version + 1");
        await pipeline.WaitForSameAsync(hub, target, ToastSnapshot);
    }

    [Fact]
    public async Task Run_TextPathUnderOddDateIntervalAndFloatSettings_ValuesIdentical()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string Ddl = "CREATE TABLE public.vals (id int PRIMARY KEY, d date, i interval, f8 float8, f4 float4, ts timestamp, tz timestamptz, b bytea, t time, n numeric);";
        await TestPipeline.ExecuteAsync(hub, Ddl);
        await TestPipeline.ExecuteAsync(target, Ddl);
        var database = new NpgsqlConnectionStringBuilder(hub).Database;
        await TestPipeline.ExecuteAsync(hub, $"ALTER DATABASE \"{database}\" SET DateStyle = 'SQL, DMY'; ALTER DATABASE \"{database}\" SET IntervalStyle = 'sql_standard'; ALTER DATABASE \"{database}\" SET extra_float_digits = 0; ALTER DATABASE \"{database}\" SET bytea_output = 'escape'");
        await using var pipeline = await TestPipeline.StartAsync(hub, "odd_settings", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.vals"] = ["target"] }, Text(binary: false));

        await TestPipeline.ExecuteAsync(hub, """
            INSERT INTO public.vals VALUES
              (1, '2016-11-04', '-1 day +02:03:04.5', 0.1 + 0.2, 1.1::float4 / 3, '2016-11-04 13:14:15.123456', '2016-11-04 13:14:15.123456+05:30', '\x00ff5c27', '23:59:59.999999', 1e-20),
              (2, '0044-03-15 BC', '1 year -2 months 3 days -04:05:06', 1e300 / 7, -0.0, 'infinity', '-infinity', '\x', '00:00', 'NaN'),
              (3, '2000-01-02', '-3 days -04:00', 2.0 / 3, 3.4028235e38, '1999-12-31 23:59:59', '2020-02-29 00:00:00+00', '\x5c5c', '12:00', -123.456);
            """);
        // Compare in sessions whose output is pinned, so the comparison itself cannot be fooled.
        var pinnedHub = ReplicationReader.PinOutputSettings(hub);
        var pinnedTarget = ReplicationReader.PinOutputSettings(target);
        const string Snapshot = "SELECT string_agg(r::text, E'\\n' ORDER BY id) FROM public.vals r";
        await pipeline.WaitForSameAsync(pinnedHub, pinnedTarget, Snapshot);
        Assert.Contains("2016-11-04", await TestPipeline.TextAsync(pinnedTarget, Snapshot));
    }

    [Fact]
    public async Task Run_SubtransactionAbortInsideStreamedTransaction_TargetEqualsHub()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string Ddl = "CREATE TABLE public.sub (id int PRIMARY KEY, counter int NOT NULL, pad text);";
        await TestPipeline.ExecuteAsync(hub, Ddl);
        await TestPipeline.ExecuteAsync(target, Ddl);
        var database = new NpgsqlConnectionStringBuilder(hub).Database;
        // A small decoding budget makes the walsender stream the transaction before its commit.
        await TestPipeline.ExecuteAsync(hub, $"ALTER DATABASE \"{database}\" SET logical_decoding_work_mem = '64kB'");
        await using var pipeline = await TestPipeline.StartAsync(hub, "sub_abort", new Dictionary<string, string> { ["target"] = target }, new Dictionary<string, string[]> { ["public.sub"] = ["target"] });

        await TestPipeline.ExecuteAsync(hub, """
            BEGIN;
            INSERT INTO public.sub SELECT g, 1, repeat('a', 100) FROM generate_series(1, 3000) g;
            SAVEPOINT a;
            INSERT INTO public.sub SELECT g, 1, repeat('b', 100) FROM generate_series(10001, 13000) g;
            UPDATE public.sub SET counter = counter + 1 WHERE id <= 1000;
            ROLLBACK TO SAVEPOINT a;
            INSERT INTO public.sub SELECT g, 1, repeat('c', 100) FROM generate_series(20001, 23000) g;
            SAVEPOINT b;
            UPDATE public.sub SET counter = counter + 5 WHERE id % 7 = 0;
            RELEASE SAVEPOINT b;
            SAVEPOINT c;
            DELETE FROM public.sub WHERE id > 22000;
            ROLLBACK TO SAVEPOINT c;
            COMMIT;
            """);
        const string Snapshot = "SELECT count(*) || ':' || sum(counter) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.sub t";
        await pipeline.WaitForSameAsync(hub, target, Snapshot);
        Assert.Equal("6000", await TestPipeline.TextAsync(target, "SELECT count(*) FROM public.sub"));
        Assert.NotEqual("0", await TestPipeline.TextAsync(hub, "SELECT coalesce(sum(stream_txns), 0) FROM pg_stat_replication_slots WHERE slot_name = 'sub_abort'"));
    }

    [Fact]
    public async Task Run_TargetGrantsRevokedWhileRunning_StopsWithOneLineInsteadOfRetrying()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string Ddl = "CREATE TABLE public.locked (id int PRIMARY KEY, v text);";
        await TestPipeline.ExecuteAsync(hub, Ddl);
        await TestPipeline.ExecuteAsync(target, Ddl + " CREATE SCHEMA cdcsync; CREATE TABLE cdcsync.checkpoints (connector text PRIMARY KEY, lsn pg_lsn NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());");
        await TestPipeline.ExecuteAsync(target, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_limited_role') THEN CREATE ROLE cdc_limited_role LOGIN; END IF; END $$; ALTER ROLE cdc_limited_role PASSWORD 'limited'; GRANT USAGE ON SCHEMA cdcsync TO cdc_limited_role; GRANT ALL ON cdcsync.checkpoints, public.locked TO cdc_limited_role");
        var limited = new NpgsqlConnectionStringBuilder(target) { Username = "cdc_limited_role", Password = "limited" }.ConnectionString;
        var connectors = new Dictionary<string, string> { ["target"] = limited };
        var routes = new Dictionary<string, string[]> { ["public.locked"] = ["target"] };
        await using (var pipeline = await TestPipeline.StartAsync(hub, "no_grants", connectors, routes))
        {
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.locked VALUES (1, 'x')");
            await pipeline.WaitForSameAsync(hub, target, "SELECT count(*) FROM public.locked");

            await TestPipeline.ExecuteAsync(target, "REVOKE INSERT, UPDATE, DELETE ON public.locked FROM cdc_limited_role");
            await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.locked VALUES (2, 'y')");
            var error = await Assert.ThrowsAsync<OperatorException>(() => pipeline.StopWhenEndedAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("permission denied", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", error.Message, StringComparison.Ordinal);
            Assert.Equal(PipelineHealth.Stopped, pipeline.Runner.Health);
            Assert.Equal(0, pipeline.Runner.Restarts);
        }

        // Started again as is, it stops at the check, naming the grant to give.
        var atStart = await Assert.ThrowsAsync<OperatorException>(() => TestPipeline.StartAsync(hub, "no_grants", connectors, routes));
        Assert.Contains("GRANT INSERT, UPDATE, DELETE ON \"public\".\"locked\"", atStart.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_SecondWorkerOnTheSameSlot_SaysAnotherWorkerHoldsItAndKeepsWaiting()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(suffix: "_target");
        const string Ddl = "CREATE TABLE public.shared (id int PRIMARY KEY);";
        await TestPipeline.ExecuteAsync(hub, Ddl);
        await TestPipeline.ExecuteAsync(target, Ddl);
        var connectors = new Dictionary<string, string> { ["target"] = target };
        var routes = new Dictionary<string, string[]> { ["public.shared"] = ["target"] };
        await using var first = await TestPipeline.StartAsync(hub, "shared_slot", connectors, routes);
        await TestPipeline.ExecuteAsync(hub, "INSERT INTO public.shared VALUES (1)");
        await first.WaitForSameAsync(hub, target, "SELECT count(*) FROM public.shared");

        await using var second = await TestPipeline.StartAsync(hub, "shared_slot", connectors, routes, waitForStreaming: false);
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(second.Runner.LastError is not null), TimeSpan.FromSeconds(30));
        Assert.Contains("Another worker holds the replication slot", second.Runner.LastError, StringComparison.Ordinal);
        Assert.NotEqual(PipelineHealth.Stopped, second.Runner.Health);
    }
}
