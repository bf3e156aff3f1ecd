using CdcSync.Pipeline;
using CdcSync.Replication;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;
using static CdcSync.Tests.Pipeline.TestChanges;

namespace CdcSync.Tests.Pipeline;

/// <summary>
/// The writer's batching against a connector that records its calls. Linger and commit delay are an
/// hour, so a commit happens only when the batch holds <c>maxBatchChanges</c> changes at a
/// transaction end or when the channel is completed: what is asserted never depends on how fast
/// the machine is.
/// </summary>
public sealed class ConnectorWriterTests
{
    // Guards against a hang only; nothing asserts on time.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private static readonly RelationInfo Orders = Table("orders");

    [Fact]
    public async Task Run_TransactionLongerThanTheChunkSize_WritesCallsOfAtMostChunkSizeThenCommitsItsLsn()
    {
        var connector = new RecordingConnector(nameof(Run_TransactionLongerThanTheChunkSize_WritesCallsOfAtMostChunkSizeThenCommitsItsLsn));
        var writer = NewWriter(connector, chunkSize: 3);

        await RunAsync(writer, async () => await SendAsync(writer, 0x100, changes: 7));

        Assert.Equal(
            [
                $"write {Key(0x100, 0)} {Key(0x100, 1)} {Key(0x100, 2)}",
                $"write {Key(0x100, 3)} {Key(0x100, 4)} {Key(0x100, 5)}",
                $"write {Key(0x100, 6)}",
                "commit 0/100",
            ],
            connector.WritesAndCommits);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x100), writer.Committed);
        Assert.Equal(7, writer.ChangesApplied);
    }

    [Fact]
    public async Task Run_BatchReachesMaxBatchChanges_CommitsAtTheTransactionEndNeverInside()
    {
        var connector = new RecordingConnector(nameof(Run_BatchReachesMaxBatchChanges_CommitsAtTheTransactionEndNeverInside));
        var writer = NewWriter(connector, chunkSize: 3, maxBatchChanges: 3);

        await RunAsync(writer, async () =>
        {
            foreach (var lsn in new ulong[] { 0x100, 0x200, 0x300, 0x400 })
            {
                await SendAsync(writer, lsn, changes: 2);
            }
        });

        // A write may span transactions; a commit comes only after a whole transaction, once the
        // batch holds 3 changes or more, and carries that transaction's commit LSN.
        Assert.Equal(
            [
                $"write {Key(0x100, 0)} {Key(0x100, 1)} {Key(0x200, 0)}",
                $"write {Key(0x200, 1)}",
                "commit 0/200",
                $"write {Key(0x300, 0)} {Key(0x300, 1)} {Key(0x400, 0)}",
                $"write {Key(0x400, 1)}",
                "commit 0/400",
            ],
            connector.WritesAndCommits);
        Assert.Equal(8, writer.ChangesApplied);
    }

    [Fact]
    public async Task Run_ChannelCompletesAfterWholeTransactions_CommitsThemAsOneBatchAtTheLastCommitLsn()
    {
        var connector = new RecordingConnector(nameof(Run_ChannelCompletesAfterWholeTransactions_CommitsThemAsOneBatchAtTheLastCommitLsn));
        var writer = NewWriter(connector);

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 2);
            await SendAsync(writer, 0x180, changes: 1);
        });

        Assert.Equal([$"write {Key(0x100, 0)} {Key(0x100, 1)} {Key(0x180, 0)}", "commit 0/180"], connector.WritesAndCommits);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x180), writer.Committed);
        Assert.True(writer.CaughtUp);
    }

    [Fact]
    public async Task Run_TransactionsAtOrBelowTheCheckpoint_AreSkippedAsAlreadyApplied()
    {
        var connector = new RecordingConnector(nameof(Run_TransactionsAtOrBelowTheCheckpoint_AreSkippedAsAlreadyApplied), new NpgsqlLogSequenceNumber(0x200));
        var writer = NewWriter(connector);

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 2);
            await SendAsync(writer, 0x200, changes: 1);
            await SendAsync(writer, 0x300, changes: 1);
        });

        Assert.Equal([$"write {Key(0x300, 0)}", "commit 0/300"], connector.WritesAndCommits);
        Assert.Equal(2, writer.TransactionsSkipped);
        Assert.Equal(1, writer.ChangesApplied);
    }

    [Fact]
    public async Task Run_ConnectorWriteFails_AbortsRethrowsAndCommitsNothing()
    {
        var connector = new RecordingConnector(nameof(Run_ConnectorWriteFails_AbortsRethrowsAndCommitsNothing)) { FailOnWrite = 2 };
        var writer = NewWriter(connector, chunkSize: 2);
        await writer.OpenAsync(CancellationToken.None);
        var run = Task.Run(() => writer.RunAsync(CancellationToken.None));

        await SendAsync(writer, 0x100, changes: 5);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitAsync(Guard));

        Assert.Equal("write 2 failed on purpose", error.Message);
        Assert.Equal([$"write {Key(0x100, 0)} {Key(0x100, 1)}", "abort"], connector.Calls);
        Assert.Equal(default, writer.Committed);
        Assert.False(writer.CaughtUp);
    }

    [Fact]
    public async Task Run_ConnectorCommitFails_AbortsAndKeepsTheLastDurableCheckpoint()
    {
        var connector = new RecordingConnector(nameof(Run_ConnectorCommitFails_AbortsAndKeepsTheLastDurableCheckpoint)) { FailOnCommit = 2 };
        var writer = NewWriter(connector, maxBatchChanges: 1);
        await writer.OpenAsync(CancellationToken.None);
        var run = Task.Run(() => writer.RunAsync(CancellationToken.None));

        await SendAsync(writer, 0x100, changes: 1);
        await SendAsync(writer, 0x200, changes: 1);
        await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitAsync(Guard));

        Assert.Equal([$"write {Key(0x100, 0)}", "commit 0/100", $"write {Key(0x200, 0)}", "abort"], connector.Calls);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x100), writer.Committed);
    }

    [Fact]
    public async Task Stop_InTheMiddleOfATransaction_AbortsInsteadOfCommittingPartOfIt()
    {
        var connector = new RecordingConnector(nameof(Stop_InTheMiddleOfATransaction_AbortsInsteadOfCommittingPartOfIt));
        var writer = NewWriter(connector);

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 1);
            // More changes than the router holds back, and no commit: the stream stopped inside the transaction.
            var cut = Transaction(0x200);
            for (var i = 0; i < 300; i++)
            {
                await writer.EnqueueAsync(Insert(Orders, cut, i, i, "row"), CancellationToken.None);
            }
        });

        Assert.DoesNotContain(connector.Calls, c => c.StartsWith("commit", StringComparison.Ordinal));
        Assert.Equal("abort", connector.Calls[^1]);
        Assert.Equal(default, writer.Committed);
    }

    [Fact]
    public async Task Resync_ChunkDueBetweenTwoTransactions_IsWrittenAndCommittedExactlyAtItsPosition()
    {
        var connector = new RecordingConnector(nameof(Resync_ChunkDueBetweenTwoTransactions_IsWrittenAndCommittedExactlyAtItsPosition));
        var writer = NewWriter(connector, maxBatchChanges: 1);
        var chunk = Chunk(position: 0x250, rows: 2);

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 1);
            writer.Resync.Schedule(chunk);
            await SendAsync(writer, 0x200, changes: 1);
            Assert.False(chunk.HandedOver.Task.IsCompleted, "the chunk was handed over before the stream reached its position");
            await SendAsync(writer, 0x300, changes: 1);
            await chunk.Applied.Task.WaitAsync(Guard);
        });

        Assert.Equal(
            [
                $"write {Key(0x100, 0)}",
                "commit 0/100",
                $"write {Key(0x200, 0)}",
                "commit 0/200",
                $"write {Key(0x24F, 0)} {Key(0x24F, 1)}",
                "commit 0/24F",
                $"write {Key(0x300, 0)}",
                "commit 0/300",
            ],
            connector.WritesAndCommits);
        Assert.True(chunk.HandedOver.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Resync_ChunkBelowTheCheckpoint_IsStillAppliedAndTheCheckpointDoesNotGoBack()
    {
        var connector = new RecordingConnector(nameof(Resync_ChunkBelowTheCheckpoint_IsStillAppliedAndTheCheckpointDoesNotGoBack), new NpgsqlLogSequenceNumber(0x500));
        var writer = NewWriter(connector, maxBatchChanges: 1);
        var chunk = Chunk(position: 0x300, rows: 2);

        await RunAsync(writer, async () =>
        {
            // A replayed transaction at the same LSN range is skipped; the chunk, which is not WAL, is not.
            await SendAsync(writer, 0x400, changes: 1);
            writer.Resync.Schedule(chunk);
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x500), CancellationToken.None);
            await chunk.Applied.Task.WaitAsync(Guard);
        });

        Assert.Equal([$"write {Key(0x2FF, 0)} {Key(0x2FF, 1)}", "commit 0/500"], connector.WritesAndCommits);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x500), writer.Committed);
        Assert.Equal(1, writer.TransactionsSkipped);
    }

    [Fact]
    public async Task Resync_ReaderBeforeThePosition_HandsNothingOver_ThenOnceExactlyWhenPassed()
    {
        var connector = new RecordingConnector(nameof(Resync_ReaderBeforeThePosition_HandsNothingOver_ThenOnceExactlyWhenPassed));
        var writer = NewWriter(connector, maxBatchChanges: 1);
        var chunk = Chunk(position: 0x300, rows: 1);

        await RunAsync(writer, async () =>
        {
            writer.Resync.Schedule(chunk);
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x2FF), CancellationToken.None);
            Assert.False(chunk.HandedOver.Task.IsCompleted, "handed over before the reader reached the position");
            Assert.Same(chunk, writer.Resync.DueAt(new NpgsqlLogSequenceNumber(0x300)));

            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x300), CancellationToken.None);
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x400), CancellationToken.None);
            // The router meets a later transaction too: the chunk is not handed over a second time.
            await SendAsync(writer, 0x400, changes: 1);
            Assert.Null(writer.Resync.DueAt(new NpgsqlLogSequenceNumber(0x400)));
        });

        Assert.Equal([$"write {Key(0x2FF, 0)}", "commit 0/2FF", $"write {Key(0x400, 0)}", "commit 0/400"], connector.WritesAndCommits);
        Assert.True(chunk.Applied.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Resync_TableTheStreamAlreadyDescribed_ChunkIsWrittenWithTheStreamsDescription()
    {
        var connector = new RecordingConnector(nameof(Resync_TableTheStreamAlreadyDescribed_ChunkIsWrittenWithTheStreamsDescription));
        var writer = NewWriter(connector, maxBatchChanges: 1);
        // Read from the catalog by the resync: the same table and columns, another object.
        var chunk = Chunk(position: 0x300, rows: 1, relation: Table("orders"));

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 1);
            writer.Resync.Schedule(chunk);
            await SendAsync(writer, 0x400, changes: 1);
        });

        var written = connector.Written;
        Assert.Equal(3, written.Count);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x2FF), written[1].Transaction.CommitLsn);
        Assert.Same(Orders, written[1].Relation);
        Assert.NotSame(chunk.Changes[0].Relation, written[1].Relation);
    }

    [Fact]
    public async Task Resync_TableChangedShapeSinceTheStreamDescribedIt_ChunkKeepsItsOwnDescription()
    {
        var connector = new RecordingConnector(nameof(Resync_TableChangedShapeSinceTheStreamDescribedIt_ChunkKeepsItsOwnDescription));
        var writer = NewWriter(connector, maxBatchChanges: 1);
        var widened = new RelationInfo(16400, "public", "orders", 'd', [new("id", 23, -1, true), new("name", 25, -1, false), new("note", 25, -1, false)]);
        var chunk = Chunk(position: 0x300, rows: 1, relation: widened);

        await RunAsync(writer, async () =>
        {
            await SendAsync(writer, 0x100, changes: 1);
            writer.Resync.Schedule(chunk);
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x300), CancellationToken.None);
            await chunk.Applied.Task.WaitAsync(Guard);
        });

        Assert.Same(widened, connector.Written[1].Relation);
    }

    [Fact]
    public async Task HandOver_TransactionsWhileTheReaderIsBusy_AreHeldUntilItWaitsForTheServer()
    {
        var connector = new RecordingConnector(nameof(HandOver_TransactionsWhileTheReaderIsBusy_AreHeldUntilItWaitsForTheServer));
        var clock = new ManualClock();
        var writer = NewWriter(connector, maxBatchChanges: 1, clock: clock);

        await RunAsync(writer, async () =>
        {
            foreach (var lsn in new ulong[] { 0x100, 0x200, 0x300 })
            {
                await SendHeldAsync(writer, lsn, changes: 2);
            }

            // Small transactions share one channel item: none reached the writer yet.
            Assert.Equal(new NpgsqlLogSequenceNumber(0x300), writer.Delivered);
            await Task.Delay(200);
            Assert.Empty(connector.Calls);

            await writer.FlushAsync(CancellationToken.None);
            await WaitUntilAsync(() => writer.Committed == new NpgsqlLogSequenceNumber(0x300));
        });

        Assert.Equal(
            [$"write {Key(0x100, 0)} {Key(0x100, 1)}", "commit 0/100", $"write {Key(0x200, 0)} {Key(0x200, 1)}", "commit 0/200", $"write {Key(0x300, 0)} {Key(0x300, 1)}", "commit 0/300"],
            connector.WritesAndCommits);
    }

    [Fact]
    public async Task HandOver_TransactionEndHeldLongerThanAMillisecond_GoesOverWhenTheStreamPassesAnotherCommit()
    {
        var connector = new RecordingConnector(nameof(HandOver_TransactionEndHeldLongerThanAMillisecond_GoesOverWhenTheStreamPassesAnotherCommit));
        var clock = new ManualClock();
        var writer = NewWriter(connector, maxBatchChanges: 1, clock: clock);

        await RunAsync(writer, async () =>
        {
            await SendHeldAsync(writer, 0x100, changes: 1);

            // Another connector's commit, no time passed: still held.
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x180), CancellationToken.None);
            await Task.Delay(200);
            Assert.Empty(connector.Calls);

            clock.Advance(TimeSpan.FromMilliseconds(1));
            await writer.PassedAsync(new NpgsqlLogSequenceNumber(0x190), CancellationToken.None);
            await WaitUntilAsync(() => writer.Committed == new NpgsqlLogSequenceNumber(0x100));
        });

        Assert.Equal([$"write {Key(0x100, 0)}", "commit 0/100"], connector.WritesAndCommits);
    }

    [Fact]
    public async Task HandOver_MoreThanABatchOfSmallTransactions_GoesOverWithoutWaitingForTheReader()
    {
        var connector = new RecordingConnector(nameof(HandOver_MoreThanABatchOfSmallTransactions_GoesOverWithoutWaitingForTheReader));
        var writer = NewWriter(connector, maxBatchChanges: 1, clock: new ManualClock());

        await RunAsync(writer, async () =>
        {
            // 100 transactions of 2 changes: 300 entries, more than one channel item holds.
            for (ulong lsn = 1; lsn <= 100; lsn++)
            {
                await SendHeldAsync(writer, lsn * 0x100, changes: 2);
            }

            await WaitUntilAsync(() => writer.Committed >= new NpgsqlLogSequenceNumber(0x100 * 50));
            Assert.True(writer.Committed < new NpgsqlLogSequenceNumber(0x100 * 100), "the last transactions went over before the batch was full or the reader waited");
        });

        Assert.Equal(new NpgsqlLogSequenceNumber(0x100 * 100), writer.Committed);
        Assert.Equal(200, writer.ChangesApplied);
    }

    [Fact]
    public async Task HandOver_WideRowOverTheBudgetWhileTheWriterHoldsPartOfTheTransaction_WriterFreesTheBudget()
    {
        var connector = new RecordingConnector(nameof(HandOver_WideRowOverTheBudgetWhileTheWriterHoldsPartOfTheTransaction_WriterFreesTheBudget));
        var writer = new ConnectorWriter(connector, NullLogger.Instance, capacity: 256 * 64, chunkSize: 100, maxBatchChanges: 1, maxBytesInFlight: 10_000,
            commitLinger: TimeSpan.FromHours(1), maxCommitDelay: TimeSpan.FromHours(1));

        await RunAsync(writer, async () =>
        {
            var transaction = Transaction(0x100);
            for (var i = 0; i < 3; i++)
            {
                await writer.EnqueueAsync(Insert(Orders, transaction, i, i, "small"), CancellationToken.None);
            }

            // The reader waits for the rest: the writer now holds three changes of an open transaction.
            await writer.FlushAsync(CancellationToken.None);
            await WaitUntilAsync(() => writer.BytesInFlight > 0);

            // One row wider than the whole budget: it may go only once the writer has written what it holds.
            await writer.EnqueueAsync(Insert(Orders, transaction, 3, 3, new string('x', 12_000)), CancellationToken.None);
            await writer.EnqueueCommitAsync(transaction, CancellationToken.None);
            await writer.FlushAsync(CancellationToken.None);
            await WaitUntilAsync(() => writer.Committed == new NpgsqlLogSequenceNumber(0x100));
        });

        Assert.Equal([$"write {Key(0x100, 0)} {Key(0x100, 1)} {Key(0x100, 2)}", $"write {Key(0x100, 3)}", "commit 0/100"], connector.WritesAndCommits);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var guard = new CancellationTokenSource(Guard);
        while (!condition())
        {
            await Task.Delay(10, guard.Token);
        }
    }

    /// <summary>A clock that moves only when told (timers still run on real time).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = TimeSpan.TicksPerDay;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    private static ConnectorWriter NewWriter(RecordingConnector connector, int chunkSize = 100, int maxBatchChanges = 100_000, TimeProvider? clock = null) =>
        new(connector, NullLogger.Instance, capacity: 256 * 64, chunkSize, maxBatchChanges, commitLinger: TimeSpan.FromHours(1), maxCommitDelay: TimeSpan.FromHours(1), timeProvider: clock);

    /// <summary>Opens the writer, runs it while <paramref name="feed"/> hands changes over, then completes the channel and waits for the drain.</summary>
    private static async Task RunAsync(ConnectorWriter writer, Func<Task> feed)
    {
        await writer.OpenAsync(CancellationToken.None);
        var run = Task.Run(() => writer.RunAsync(CancellationToken.None));
        try
        {
            await feed();
        }
        finally
        {
            writer.Complete();
        }

        await run.WaitAsync(Guard);
    }

    /// <summary>One transaction as the router hands it over, then the reader waiting for the server (it flushes what the router holds).</summary>
    private static async Task SendAsync(ConnectorWriter writer, ulong commitLsn, int changes)
    {
        await SendHeldAsync(writer, commitLsn, changes);
        await writer.FlushAsync(CancellationToken.None);
    }

    /// <summary>One transaction as the router hands it over while the reader is still busy with the stream: its changes, then its end.</summary>
    private static async Task SendHeldAsync(ConnectorWriter writer, ulong commitLsn, int changes)
    {
        var transaction = Transaction(commitLsn);
        for (var i = 0; i < changes; i++)
        {
            await writer.EnqueueAsync(Insert(Orders, transaction, i, i, $"order {i}"), CancellationToken.None);
        }

        await writer.EnqueueCommitAsync(transaction, CancellationToken.None);
    }

    /// <summary>A resync chunk as ResyncService builds one: full-row updates in a transaction just below the position.</summary>
    private static BackfillChunk Chunk(ulong position, int rows, RelationInfo? relation = null)
    {
        relation ??= Orders;
        var transaction = Transaction(position - 1);
        var changes = Enumerable.Range(0, rows)
            .Select(i => new ChangeEvent(relation, ChangeKind.Update, Row([1000 + i, "resync", .. Enumerable.Repeat<object?>(null, relation.Columns.Count - 2)]), null, transaction, i))
            .ToList();
        return new BackfillChunk(changes, transaction, new NpgsqlLogSequenceNumber(position));
    }
}
