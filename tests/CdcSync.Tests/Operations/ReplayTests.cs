using CdcSync.Operations;
using CdcSync.Pipeline;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;

namespace CdcSync.Tests.Operations;

public sealed class ReplayTests
{
    [Fact]
    public async Task Replay_FromRetainedLsn_RedeliversOnlyLaterCommitsToOneConnector()
    {
        var h = await OpsHarness.CreateAsync(nameof(Replay_FromRetainedLsn_RedeliversOnlyLaterCommitsToOneConnector));
        await using (var worker = h.StartWorker())
        {
            await worker.WaitStreamingAsync();
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items VALUES (1, 'one'), (2, 'two'), (3, 'three')");
            await h.WaitForTargetsAsync();
            var from = await h.WalPositionAsync();
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items VALUES (4, 'four')");
            await TestPipeline.ExecuteAsync(h.Hub, "UPDATE public.items SET v = 'uno' WHERE id = 1");
            await h.WaitForTargetsAsync();
            await TestPipeline.WaitUntilAsync(async () => await h.WritesAsync("a_items") == "1,1,2,3,4" && await h.WritesAsync("b_items") == "1,1,2,3,4", TimeSpan.FromSeconds(30));
            var checkpointA = await h.CheckpointAsync("a");
            var checkpointB = await h.CheckpointAsync("b");
            await TestPipeline.ExecuteAsync(h.Target, "TRUNCATE public.write_log");

            // The worker is running: the CLI queues the request and the worker applies it.
            var (code, stdout, stderr) = await OpsHarness.CliAsync("replay", "--config", h.ConfigPath, "--connector", "a", "--from-lsn", from);
            Assert.True(code == 0, $"replay exited {code}: {stdout}{stderr}");
            Assert.Contains("checkpoint lowered", stdout);

            // Exactly the two later commits reach a (one write per row), b receives nothing.
            await TestPipeline.WaitUntilAsync(async () => NpgsqlLogSequenceNumber.Parse(await h.CheckpointAsync("a")) >= NpgsqlLogSequenceNumber.Parse(checkpointA), TimeSpan.FromSeconds(60));
            await TestPipeline.WaitUntilAsync(async () => await h.WritesAsync("a_items") == "1,4", TimeSpan.FromSeconds(30));
            Assert.Equal("1,4", await h.WritesAsync("a_items"));
            Assert.Equal(string.Empty, await h.WritesAsync("b_items"));
            Assert.Equal(checkpointB, await h.CheckpointAsync("b"));
            await h.WaitForTargetsAsync();

            await worker.StopAsync();
        }

        // The worker is stopped: the CLI applies the request itself, the next run re-delivers.
        var from2 = await TestPipeline.TextAsync(h.Hub, "SELECT from_lsn::text FROM cdc.replay_requests ORDER BY id LIMIT 1");
        await TestPipeline.ExecuteAsync(h.Target, "TRUNCATE public.write_log");
        var stopped = await OpsHarness.CliAsync("replay", "--config", h.ConfigPath, "--connector", "a", "--from-lsn", from2);
        Assert.True(stopped.ExitCode == 0, $"replay exited {stopped.ExitCode}: {stopped.Stdout}{stopped.Stderr}");
        Assert.Equal(from2, await h.CheckpointAsync("a"));
        await using (var worker = h.StartWorker())
        {
            await worker.WaitStreamingAsync();
            await TestPipeline.WaitUntilAsync(async () => await h.WritesAsync("a_items") == "1,4", TimeSpan.FromSeconds(60));
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items VALUES (5, 'five')");
            await h.WaitForTargetsAsync();
            await TestPipeline.WaitUntilAsync(async () => await h.WritesAsync("b_items") == "5", TimeSpan.FromSeconds(30));
            Assert.Equal("1,4,5", await h.WritesAsync("a_items"));
        }
    }

    [Fact]
    public async Task ReplayDryRun_ListsLaterTransactionsAndChangesNothing()
    {
        var h = await OpsHarness.CreateAsync(nameof(ReplayDryRun_ListsLaterTransactionsAndChangesNothing));
        await using var worker = h.StartWorker();
        await worker.WaitStreamingAsync();
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items VALUES (1, 'one')");
        await h.WaitForTargetsAsync();
        var from = await h.WalPositionAsync();
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, 'x' FROM generate_series(2, 4) g");
        await TestPipeline.ExecuteAsync(h.Hub, "DELETE FROM public.items WHERE id = 2");
        await h.WaitForTargetsAsync();
        var checkpointA = await h.CheckpointAsync("a");
        var writes = await h.WritesAsync("a_items");

        var transactions = await new ReplayService(h.Options(), NullLogger.Instance).DryRunAsync("a", NpgsqlLogSequenceNumber.Parse(from), CancellationToken.None);
        var (code, stdout, stderr) = await OpsHarness.CliAsync("replay", "--config", h.ConfigPath, "--connector", "a", "--from-lsn", from, "--dry-run");

        Assert.Equal([3, 1], transactions.Select(t => t.Changes));
        Assert.All(transactions, t => Assert.Equal(["public.items"], t.ChangesByTable.Keys));
        Assert.All(transactions, t => Assert.True(t.CommitLsn > NpgsqlLogSequenceNumber.Parse(from)));
        Assert.True(code == 0, $"dry run exited {code}: {stdout}{stderr}");
        Assert.Contains("2 transaction(s), 4 change(s) would be re-sent to a", stdout);
        Assert.Contains("public.items=3", stdout);
        Assert.Equal("0", await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM cdc.replay_requests"));
        Assert.Equal("1", await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(checkpointA, await h.CheckpointAsync("a"));
        Assert.Equal(writes, await h.WritesAsync("a_items"));
    }

    [Fact]
    public async Task Replay_LsnOlderThanWindow_Exit2NamesOldestReplayableLsnAndResync()
    {
        var h = await OpsHarness.CreateAsync(nameof(Replay_LsnOlderThanWindow_Exit2NamesOldestReplayableLsnAndResync), new Dictionary<string, object> { ["ReplayRetentionBytes"] = 0 });
        string old;
        await using (var worker = h.StartWorker())
        {
            await worker.WaitStreamingAsync();
            old = await h.WalPositionAsync();
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items VALUES (1, 'one')");
            await h.WaitForTargetsAsync();
            // Without a window the slot is confirmed right up to the checkpoints, past the old LSN.
            await TestPipeline.WaitUntilAsync(async () => NpgsqlLogSequenceNumber.Parse(await h.ConfirmedAsync()) > NpgsqlLogSequenceNumber.Parse(old), TimeSpan.FromSeconds(30));
            await worker.StopAsync();
        }

        var confirmed = await h.ConfirmedAsync();
        var checkpoint = await h.CheckpointAsync("a");
        foreach (var extra in new[] { Array.Empty<string>(), ["--dry-run"] })
        {
            var (code, stdout, stderr) = await OpsHarness.CliAsync(["replay", "--config", h.ConfigPath, "--connector", "a", "--from-lsn", old, .. extra]);
            Assert.True(code == 2, $"replay exited {code}: {stdout}{stderr}");
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains($"the oldest replayable LSN is {confirmed}", stderr);
            Assert.Contains("cdcsync resync --config FILE --connector a --table public.items", stderr);
        }

        Assert.Equal(checkpoint, await h.CheckpointAsync("a"));
        Assert.Equal("0", await TestPipeline.TextAsync(h.Hub, "SELECT count(*) FROM cdc.replay_requests"));
    }

    [Fact]
    public void ReplayWindow_KeepsWalReadWithinAgeCappedAtBytes()
    {
        var time = new ManualTime();
        var window = new ReplayWindow(1000, TimeSpan.FromHours(1), time);
        window.Observe(new NpgsqlLogSequenceNumber(100));
        time.Advance(TimeSpan.FromMinutes(30));
        window.Observe(new NpgsqlLogSequenceNumber(500));
        Assert.Equal(new NpgsqlLogSequenceNumber(0), window.Floor(new NpgsqlLogSequenceNumber(500)));
        time.Advance(TimeSpan.FromMinutes(31));
        window.Observe(new NpgsqlLogSequenceNumber(600));
        // Read over an hour ago: 100 may go; the size cap keeps at most 1000 bytes.
        Assert.Equal(new NpgsqlLogSequenceNumber(100), window.Floor(new NpgsqlLogSequenceNumber(600)));
        Assert.Equal(new NpgsqlLogSequenceNumber(4000), window.Floor(new NpgsqlLogSequenceNumber(5000)));
        Assert.Equal(new NpgsqlLogSequenceNumber(5000), new ReplayWindow(0, TimeSpan.FromHours(1), time).Floor(new NpgsqlLogSequenceNumber(5000)));
    }

    private sealed class ManualTime : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
