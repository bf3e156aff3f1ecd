using CdcSync.Scheduling;
using CdcSync.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace CdcSync.Tests.Scheduling;

public sealed class JobSchedulerTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 5, TimeSpan.Zero);

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
            await AdvanceToAsync(time, Start.AddSeconds(5), () => tick.Runs == 1 && broken.Runs == 1);
            await AdvanceToAsync(time, Start.AddSeconds(15), () => tick.Runs == 2 && broken.Runs == 2);
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
            await AdvanceToAsync(time, Start.AddSeconds(25), () => tick.Runs == 3);
        }

        // No worker led for a minute: the job that fell due runs once at start, the missed times are not replayed.
        time.Advance(TimeSpan.FromMinutes(1));
        await using (var run = Run(hub, time, tick))
        {
            await WaitUntilAsync(() => tick.Runs == 4);
            await AdvanceToAsync(time, time.GetUtcNow().AddSeconds(2), () => false, settle: true);
            Assert.Equal(4, tick.Runs);
        }

        await WaitRecordedAsync(hub, 6);
        Assert.Equal(new DateTime(2026, 1, 1, 0, 1, 30, DateTimeKind.Utc), (await RunsAsync(hub)).Max(r => r.StartedAt));
    }

    private static RunningScheduler Run(NpgsqlDataSource hub, TimeProvider time, params IScheduledJob[] jobs)
    {
        var cancel = new CancellationTokenSource();
        var scheduler = new JobScheduler(jobs, hub, "cdcsync", "test-worker", time, NullLogger.Instance);
        return new RunningScheduler(cancel, scheduler.RunAsync(cancel.Token));
    }

    /// <summary>Moves the fake clock a second at a time (real time passing between) until it reads <paramref name="until"/> and the condition holds.</summary>
    private static async Task AdvanceToAsync(FakeTimeProvider time, DateTimeOffset until, Func<bool> done, bool settle = false)
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

    private static async Task WaitUntilAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduled job did not run within 30 s");
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
