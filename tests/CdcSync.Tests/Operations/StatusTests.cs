using System.Text.Json;
using CdcSync.Tests.Pipeline;

namespace CdcSync.Tests.Operations;

public sealed class StatusTests
{
    private static async Task<(int Code, JsonElement Json, string Raw)> StatusAsync(OpsHarness h)
    {
        var (code, stdout, stderr) = await OpsHarness.CliAsync("status", "--config", h.ConfigPath, "--json");
        Assert.True(code is 0 or 1, $"status exited {code}: {stdout}{stderr}");
        return (code, JsonDocument.Parse(stdout).RootElement, stdout);
    }

    private static JsonElement Connector(JsonElement status, string name) =>
        status.GetProperty("connectors").EnumerateArray().Single(c => c.GetProperty("connector").GetString() == name);

    [Fact]
    public async Task StatusJson_WorkerStoppedUnderLoad_LagRisesExit1ThenFallsTo0Exit0()
    {
        var h = await OpsHarness.CreateAsync(nameof(StatusJson_WorkerStoppedUnderLoad_LagRisesExit1ThenFallsTo0Exit0));
        await using (var worker = h.StartWorker())
        {
            await worker.WaitStreamingAsync();
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, 'v' FROM generate_series(1, 100) g");
            await h.WaitForTargetsAsync();
            await TestPipeline.WaitUntilAsync(async () => (await StatusAsync(h)).Code == 0, TimeSpan.FromSeconds(30));
            var (_, healthy, raw) = await StatusAsync(h);
            Assert.True(healthy.GetProperty("workerConnected").GetBoolean(), raw);
            Assert.Equal(0, Connector(healthy, "a").GetProperty("lagBytes").GetInt64());
            Assert.Equal(0, Connector(healthy, "a").GetProperty("lagSeconds").GetDouble());
            await worker.StopAsync();
        }

        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, 'v' FROM generate_series(101, 2000) g");
        var (stoppedCode, stopped, stoppedRaw) = await StatusAsync(h);
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO public.items SELECT g, 'v' FROM generate_series(2001, 4000) g");
        var (laterCode, later, laterRaw) = await StatusAsync(h);

        Assert.Equal(1, stoppedCode);
        Assert.Equal(1, laterCode);
        Assert.False(stopped.GetProperty("workerConnected").GetBoolean(), stoppedRaw);
        Assert.Contains(stopped.GetProperty("attention").EnumerateArray(), a => a.GetString()!.Contains("worker not connected", StringComparison.Ordinal));
        var lag1 = Connector(stopped, "a").GetProperty("lagBytes").GetInt64();
        var lag2 = Connector(later, "a").GetProperty("lagBytes").GetInt64();
        Assert.True(lag1 > 0, stoppedRaw);
        Assert.True(lag2 > lag1, $"lag did not rise: {lag1} then {lag2}\n{laterRaw}");
        Assert.True(Connector(later, "a").GetProperty("lagSeconds").GetDouble() > 0, laterRaw);

        // A connector taken out of the config keeps its rows in the hub; it is not this pipeline's
        // and must not make its worker look disconnected or its status need attention.
        await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO cdc.connector_status (connector, worker, lag_bytes, updated_at) VALUES ('retired', 'gone', 123456, now() - interval '1 hour')");

        await using (var worker = h.StartWorker())
        {
            await worker.WaitStreamingAsync();
            await h.WaitForTargetsAsync();
            await TestPipeline.WaitUntilAsync(async () => (await StatusAsync(h)).Code == 0, TimeSpan.FromSeconds(30));
            var (code, resumed, resumedRaw) = await StatusAsync(h);
            Assert.Equal(0, code);
            Assert.True(resumed.GetProperty("workerConnected").GetBoolean(), resumedRaw);
            Assert.DoesNotContain(resumed.GetProperty("connectors").EnumerateArray(), c => c.GetProperty("connector").GetString() == "retired");
            Assert.Equal(0, Connector(resumed, "a").GetProperty("lagBytes").GetInt64());
            Assert.Equal(0, Connector(resumed, "b").GetProperty("lagSeconds").GetDouble());
            Assert.True(resumed.GetProperty("healthy").GetBoolean(), resumedRaw);

            // An open dead letter needs attention.
            await TestPipeline.ExecuteAsync(h.Hub, "INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error) VALUES ('b', 'public.items', '7', '{}', 'rejected')");
            var (withDeadLetter, dl, dlRaw) = await StatusAsync(h);
            Assert.Equal(1, withDeadLetter);
            Assert.Equal(1, Connector(dl, "b").GetProperty("deadLetters").GetInt64());
            Assert.Contains(dl.GetProperty("attention").EnumerateArray(), a => a.GetString() == "b: 1 open dead letter(s)");
        }
    }

    [Fact]
    public async Task Status_HubUnreachable_Exit2OneLine()
    {
        var (code, _, stderr) = await OpsHarness.CliAsync("status", "--db", "Host=127.0.0.1;Port=1;Database=x;Username=x;Password=secret-pw;Timeout=3", "--json");
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.DoesNotContain("secret-pw", stderr);
    }
}
