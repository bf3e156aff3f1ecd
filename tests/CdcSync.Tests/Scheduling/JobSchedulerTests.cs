using CdcSync.Scheduling;
using CdcSync.Tests.Infrastructure;
using Dapper;
using CdcSync.Tests.Connectors.NetSuite;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace CdcSync.Tests.Scheduling;

public sealed class JobSchedulerTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 5, TimeSpan.Zero);

    private readonly CapturingLoggerProvider _logs = new();

    [Theory]
    [InlineData("0 3 * *", "4 fields")]
    [InlineData("0 25 * * *", "not a cron expression")]
    [InlineData("every day", "2 fields")]
    public void Parse_BadExpression_NamesTheKeyAndAValidForm(string expression, string expected)
    {
        var e = Assert.Throws<OperatorException>(() => CronSchedule.Parse(expression, "Reconcile:Schedule"));
        Assert.Contains("Reconcile:Schedule", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("0 3 * * *", e.Message);
    }

    [Fact]
    public void Parse_FiveAndSixFields_NextTimesInUtc()
    {
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 3, 0, 0, TimeSpan.Zero), CronSchedule.Parse("0 3 * * *", "k").NextAfter(Start));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 30, TimeSpan.Zero), CronSchedule.Parse("*/30 * * * * *", "k").NextAfter(Start));
    }

    [Theory]
    [InlineData(15, 20)]
    [InlineData(20, 20)]
    [InlineData(25, 30)]
    [InlineData(47, 50)]
    [InlineData(30, 40)]
    public void NextAfterRun_ARunThatOutlastedItsNextTime_SkipsTheMissedTimesInsteadOfRunningThemBackToBack(int nowSecond, int expectedSecond)
    {
        var every10s = CronSchedule.Parse("*/10 * * * * *", "k");
        var ran = new DateTimeOffset(2026, 1, 1, 0, 0, 10, TimeSpan.Zero);
        Assert.Equal(ran.AddSeconds(expectedSecond - 10), JobScheduler.NextAfterRun(every10s, ran, ran.AddSeconds(nowSecond - 10)));
    }

    [Fact]
    public async Task RunsAtTheScheduledTimes_RecordsEachRun_FailureRecordedAndOthersGoOn_RestartAndTakeOverNeitherRepeatNorReplay()
    {
        var hubConnection = await TestPostgres.CreateMigratedHubAsync();
        await using var hub = NpgsqlDataSource.Create(hubConnection);
        // Runs of another slot on the same hub are not this worker's.
        await using (var conn = await hub.OpenConnectionAsync())
        {
            await conn.ExecuteAsync("INSERT INTO cdc.job_runs (slot, job, worker, started_at) VALUES ('other', 'tick', 'w', @at)", new { at = Start.AddSeconds(-1) });
        }

        var time = new FakeTimeProvider(Start);
        var tick = new CountingJob("tick", "*/10 * * * * *");
        var broken = new CountingJob("broken", "*/10 * * * * *", fail: true);

        await using (var run = Run(hub, time, tick, broken))
        {
            await AdvanceToAsync(time, Start.AddSeconds(5), () => tick.Runs >= 1 && broken.Runs >= 1);
            await AdvanceToAsync(time, Start.AddSeconds(15), () => tick.Runs >= 2 && broken.Runs >= 2);
            await WaitRecordedAsync(hub, 4);
        }

        var runs = (await RunsAsync(hub)).ToList();
        Assert.Equal(
            ["tick 00:00:10 ok ", "broken 00:00:10  the API said no", "tick 00:00:20 ok ", "broken 00:00:20  the API said no"],
            runs.OrderBy(r => r.StartedAt).ThenBy(r => r.Job == "broken").Select(r => $"{r.Job} {r.StartedAt:HH:mm:ss} {r.Outcome} {r.Error}"));
        Assert.All(runs, r => Assert.NotNull(r.FinishedAt));

        // A restart (or a standby taking over) 3 s later: nothing is due until 00:00:30.
        await using (var run = Run(hub, time, tick))
        {
            await AdvanceToAsync(time, Start.AddSeconds(18), () => false, settle: true);
            Assert.Equal(2, tick.Runs);
            await AdvanceToAsync(time, Start.AddSeconds(25), () => tick.Runs >= 3);
            Assert.Equal(3, tick.Runs);
        }

        // No worker led for a minute: the job that fell due runs once at start, the missed times are not replayed.
        time.Advance(TimeSpan.FromMinutes(1));
        await using (var run = Run(hub, time, tick))
        {
            await WaitUntilAsync(() => tick.Runs >= 4);
            await AdvanceToAsync(time, time.GetUtcNow().AddSeconds(2), () => false, settle: true);
            Assert.Equal(4, tick.Runs);
        }

        await WaitRecordedAsync(hub, 6);
        Assert.Equal(new DateTime(2026, 1, 1, 0, 1, 30, DateTimeKind.Utc), (await RunsAsync(hub)).Max(r => r.StartedAt));
    }

    [Fact]
    public async Task JobsOfASource_ListedAgainEveryMinute_NewOneScheduled_RemovedOneDropped_ChangedScheduleApplied()
    {
        var hubConnection = await TestPostgres.CreateMigratedHubAsync();
        await using var hub = NpgsqlDataSource.Create(hubConnection);
        var time = new FakeTimeProvider(Start);
        var removed = new CountingJob("check:removed", "*/10 * * * * *");
        var hourly = new CountingJob("check:changed", "0 0 * * * *");
        var source = new ListedJobs(removed, hourly);
        var cancel = new CancellationTokenSource();
        var running = new JobScheduler([], hub, "cdcsync", "test-worker", time, _logs.CreateLogger("scheduler"), source).RunAsync(cancel.Token);

        await AdvanceToAsync(time, Start.AddSeconds(5), () => removed.Runs >= 1);

        // `migrate` deploys: one check gone, one new, one with a new schedule. Seen at the next listing (00:01:05).
        var added = new CountingJob("check:added", "*/20 * * * * *");
        var every10s = new CountingJob("check:changed", "*/10 * * * * *");
        source.Jobs = [added, every10s];
        await AdvanceToAsync(time, Start.AddSeconds(60), () => source.Listings >= 2);
        var removedRuns = removed.Runs;
        Assert.True(removedRuns >= 1);
        await AdvanceToAsync(time, Start.AddSeconds(85), () => added.Runs >= 1 && every10s.Runs >= 1);

        Assert.Equal(removedRuns, removed.Runs);
        Assert.Equal(0, hourly.Runs);
        Assert.Equal(1, added.Runs); // 00:01:20 (the next, 00:01:40, is after the clock)
        Assert.Contains(_logs.Lines, l => l.Contains("check:removed removed", StringComparison.Ordinal));
        Assert.Contains(_logs.Lines, l => l.Contains("check:changed rescheduled: 0 0 * * * * -> */10 * * * * *", StringComparison.Ordinal));

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    private sealed class ListedJobs(params IScheduledJob[] jobs) : IScheduledJobSource
    {
        private int _listings;

        public IReadOnlyList<IScheduledJob> Jobs { get; set; } = jobs;

        public int Listings => Volatile.Read(ref _listings);

        public Task<IReadOnlyList<IScheduledJob>> ListAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _listings);
            return Task.FromResult(Jobs);
        }
    }

    private RunningScheduler Run(NpgsqlDataSource hub, TimeProvider time, params IScheduledJob[] jobs)
    {
        var cancel = new CancellationTokenSource();
        var scheduler = new JobScheduler(jobs, hub, "cdcsync", "test-worker", time, _logs.CreateLogger("scheduler"));
        return new RunningScheduler(cancel, scheduler.RunAsync(cancel.Token));
    }

    /// <summary>Moves the fake clock a second at a time (real time passing between) until it reads <paramref name="until"/> and the condition holds.</summary>
    private async Task AdvanceToAsync(FakeTimeProvider time, DateTimeOffset until, Func<bool> done, bool settle = false)
    {
        while (time.GetUtcNow() < until)
        {
            await Task.Delay(20);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        if (settle)
        {
            await Task.Delay(300);
            return;
        }

        await WaitUntilAsync(done);
    }

    private async Task WaitUntilAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduled job did not run within 30 s; the scheduler logged:\n" + string.Join("\n", _logs.Lines));
            await Task.Delay(20);
        }
    }

    private static async Task WaitRecordedAsync(NpgsqlDataSource hub, int finished)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await RunsAsync(hub)).Count(r => r.FinishedAt is not null) < finished)
        {
            Assert.True(DateTime.UtcNow < deadline, $"fewer than {finished} finished runs recorded within 30 s");
            await Task.Delay(50);
        }
    }

    private static async Task<IEnumerable<JobRun>> RunsAsync(NpgsqlDataSource hub)
    {
        await using var conn = await hub.OpenConnectionAsync();
        return await conn.QueryAsync<JobRun>(
            "SELECT job, started_at AS StartedAt, finished_at AS FinishedAt, outcome, error FROM cdc.job_runs WHERE slot = 'cdcsync' ORDER BY id");
    }

    private sealed record JobRun(string Job, DateTime StartedAt, DateTime? FinishedAt, string? Outcome, string? Error);

    private sealed class CountingJob(string name, string schedule, bool fail = false) : IScheduledJob
    {
        private int _runs;

        public int Runs => Volatile.Read(ref _runs);

        public string Name => name;

        public CronSchedule Schedule { get; } = CronSchedule.Parse(schedule, name);

        public Task<string> RunAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _runs);
            return fail ? throw new OperatorException("the API said no") : Task.FromResult("ok");
        }
    }

    private sealed class RunningScheduler(CancellationTokenSource cancel, Task running) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
            cancel.Dispose();
        }
    }
}
