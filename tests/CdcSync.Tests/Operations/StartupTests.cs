using System.Text.Json;
using CdcSync.Operations;
using CdcSync.Pipeline;
using CdcSync.Tests.Infrastructure;
using CdcSync.Tests.Pipeline;
using Npgsql;

namespace CdcSync.Tests.Operations;

/// <summary>
/// What a worker says while it starts, and how it stops when starting cannot succeed: a pipeline
/// that is not streaming never reports Running, and a permanent problem ends `run` with one line
/// and exit code 2 instead of retrying forever.
/// </summary>
public sealed class StartupTests
{
    [Fact]
    public async Task Start_SlotCreationWaitsOnAnOpenTransaction_NotReadyAndStatusSaysWhatItWaitsFor_ThenStreams()
    {
        var h = await OpsHarness.CreateAsync(nameof(Start_SlotCreationWaitsOnAnOpenTransaction_NotReadyAndStatusSaysWhatItWaitsFor_ThenStreams));
        // A transaction holding an xid, open before the slot is asked for: the slot cannot be
        // consistent until it ends (anywhere on the server, here in the hub itself).
        await using var blocker = new NpgsqlConnection(h.Hub);
        await blocker.OpenAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var xid = new NpgsqlCommand("SELECT txid_current()", blocker, tx))
        {
            await xid.ExecuteScalarAsync();
        }

        await using var worker = h.StartWorker();
        try
        {
            await TestPipeline.WaitUntilAsync(() => Task.FromResult(worker.Worker.Stage?.Contains("waiting for", StringComparison.Ordinal) == true), TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the worker never said it waits for open transactions: {worker.Worker.State}, {worker.Worker.Stage}, {worker.Worker.Runner?.Health}");
        }

        Assert.Contains($"creating replication slot {h.Slot}", worker.Worker.Stage, StringComparison.Ordinal);
        Assert.False(worker.Worker.IsReady);
        Assert.NotEqual(PipelineHealth.Running, worker.Worker.Runner?.Health);

        // status (from the hub, as an operator runs it) names the wait and needs attention.
        string raw = "";
        await TestPipeline.WaitUntilAsync(async () =>
        {
            var (code, stdout, stderr) = await OpsHarness.CliAsync("status", "--config", h.ConfigPath, "--json");
            Assert.True(code is 0 or 1, $"status exited {code}: {stdout}{stderr}");
            raw = stdout;
            return stdout.Contains("waiting for", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30));
        var status = JsonDocument.Parse(raw).RootElement;
        Assert.False(status.GetProperty("healthy").GetBoolean(), raw);
        Assert.Contains(status.GetProperty("attention").EnumerateArray(), a => a.GetString()!.Contains($"is not streaming slot {h.Slot}", StringComparison.Ordinal));
        var workerRow = Assert.Single(status.GetProperty("workers").EnumerateArray());
        Assert.NotEqual("Running", workerRow.GetProperty("pipeline").GetString());

        // Once the transaction ends the slot is created and the worker streams.
        await tx.CommitAsync();
        await worker.WaitStreamingAsync();
        Assert.Null(worker.Worker.Stage);
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, 'v' FROM generate_series(1, 50) g");
        await h.WaitForTargetsAsync();
    }

    [Fact]
    public async Task Stop_WhilePreparingTheSlot_EndsTheRunAsAStopNotAFailure()
    {
        // A worker that loses its lease while the pipeline prepares the slot (after a hub outage)
        // cancels the run there; that is a stop the worker loops on, never an unexpected error.
        var h = await OpsHarness.CreateAsync(nameof(Stop_WhilePreparingTheSlot_EndsTheRunAsAStopNotAFailure));
        await using var blocker = new NpgsqlConnection(h.Hub);
        await blocker.OpenAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var xid = new NpgsqlCommand("SELECT txid_current()", blocker, tx))
        {
            await xid.ExecuteScalarAsync();
        }

        var pipeline = await TestPipeline.StartAsync(h.Hub, h.Slot, new Dictionary<string, string> { ["a"] = h.Target }, new Dictionary<string, string[]> { ["public.items"] = ["a"] },
            new Dictionary<string, string?> { ["Connectors:a:Tables:public.items:Target"] = "public.a_items" }, waitForStreaming: false);
        await TestPipeline.WaitUntilAsync(() => Task.FromResult(pipeline.Runner.Stage?.Contains("waiting for", StringComparison.Ordinal) == true), TimeSpan.FromSeconds(60));
        await pipeline.StopAsync();
        Assert.Equal(PipelineHealth.Stopped, pipeline.Runner.Health);
        Assert.Null(pipeline.Runner.LastError);
    }

    [Fact]
    public async Task Run_WrongHubPassword_ExitsWith2AndOneLineNamingTheFix()
    {
        var h = await OpsHarness.CreateAsync(nameof(Run_WrongHubPassword_ExitsWith2AndOneLineNamingTheFix));
        var wrong = new NpgsqlConnectionStringBuilder(h.Hub) { Password = "not-the-password-4711" }.ConnectionString;
        var (code, stderr) = await RunWorkerAsync(h.ConfigPath, ("CDCSYNC__Hub__ConnectionString", wrong));
        Assert.True(code == 2, $"run exited {code}: {stderr}");
        var errors = ErrorLines(stderr);
        Assert.True(errors.Count == 1, stderr);
        Assert.Contains("fix Username/Password", errors[0], StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password-4711", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_HubDatabaseMissing_ExitsWith2AndOneLineNamingTheFix()
    {
        var h = await OpsHarness.CreateAsync(nameof(Run_HubDatabaseMissing_ExitsWith2AndOneLineNamingTheFix));
        var missing = new NpgsqlConnectionStringBuilder(h.Hub) { Database = "no_such_hub_db" }.ConnectionString;
        var (code, stderr) = await RunWorkerAsync(h.ConfigPath, ("CDCSYNC__Hub__ConnectionString", missing));
        Assert.True(code == 2, $"run exited {code}: {stderr}");
        var errors = ErrorLines(stderr);
        Assert.True(errors.Count == 1, stderr);
        Assert.Contains("no_such_hub_db", errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_RoleWithoutGrantsOnTheHub_ExitsWith2AndOneLineNamingTheGrant()
    {
        var h = await OpsHarness.CreateAsync(nameof(Run_RoleWithoutGrantsOnTheHub_ExitsWith2AndOneLineNamingTheGrant));
        var role = "nogrant_" + Guid.NewGuid().ToString("N")[..8];
        await TestPipeline.ExecuteAsync(h.Hub, $"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'");
        try
        {
            var asRole = new NpgsqlConnectionStringBuilder(h.Hub) { Username = role, Password = "pw-" + role }.ConnectionString;
            var (code, stderr) = await RunWorkerAsync(h.ConfigPath, ("CDCSYNC__Hub__ConnectionString", asRole));
            Assert.True(code == 2, $"run exited {code}: {stderr}");
            var errors = ErrorLines(stderr);
            Assert.True(errors.Count == 1, stderr);
            Assert.Contains("grant", errors[0], StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            await TestPipeline.ExecuteAsync(h.Hub, $"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    private static List<string> ErrorLines(string output)
    {
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
    }

    /// <summary>
    /// `cdcsync run` as an operator starts it; a permanent problem must end it within 30 s. A worker
    /// still running after 45 s is killed and the test fails (it would retry forever).
    /// </summary>
    private static async Task<(int Code, string Output)> RunWorkerAsync(string configPath, params (string Key, string Value)[] environment)
    {
        try
        {
            var result = await CliProcess.RunAsync(environment.ToDictionary(e => e.Key, e => (string?)e.Value), TimeSpan.FromSeconds(45), "run", "--config", configPath);
            return (result.ExitCode, result.Stdout + result.Stderr);
        }
        catch (TimeoutException e)
        {
            Assert.Fail($"run was still running after 45 s instead of stopping with exit code 2.\n{e.Message}");
            throw;
        }
    }
}
