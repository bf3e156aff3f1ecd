using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Pipeline;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Bench;

/// <summary>The measured CdcSync processes. Each prints "DONE ..." as soon as the backlog is through.</summary>
internal static class Children
{
    /// <summary>The backlog ends with this pgbench_history row (its own transaction).</summary>
    public const long MarkerId = -1;

    /// <summary>_reader SLOT PUBLICATION: ReplicationReader into a no-op sink until the marker's commit.</summary>
    public static async Task<int> ReaderAsync(string[] args)
    {
        var hub = Environment.GetEnvironmentVariable("CDCSYNC_DB")!;
        var watch = Stopwatch.StartNew();
        using var done = new CancellationTokenSource();
        var sink = new NoOpSink(done);
        await using var reader = new ReplicationReader(new ReaderOptions(hub, args[0], args[1]), NullLogger.Instance);
        try
        {
            await reader.RunAsync(sink, default, done.Token);
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
        }

        // changes (without the marker), value bytes, ms inside the process, peak RSS, binary, CPU ms
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"DONE {sink.Changes - 1} {sink.Bytes} {watch.ElapsedMilliseconds} {Pg.PeakRss()} {reader.UsesBinary} {CpuMilliseconds()}"));
        return 0;
    }

    /// <summary>
    /// _pipeline CONFIG TARGET: PipelineRunner with the config (as `cdcsync run` would) until the
    /// marker row is in the target, polled every 25 ms; then a clean stop.
    /// </summary>
    public static async Task<int> PipelineAsync(string[] args)
    {
        var watch = Stopwatch.StartNew();
        var options = ConnectorConfig.Bind(ConfigLoader.Build(args[0]));
        var target = args[1];
        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddFilter("Microsoft", LogLevel.Warning));
        await using var hubSource = NpgsqlDataSource.Create(options.Hub.ConnectionString);
        using var stop = new CancellationTokenSource();
        // The product's PipelineRunner, exactly as `cdcsync run` hosts it.
        var runner = new PipelineRunner(options, name => ConnectorRegistry.Default.CreateOutbound(name, options.Connectors[name], hubSource, loggers), loggers);
        Func<long> applied = () => runner.Progress.Sum(p => p.Changes);
        Func<int> restarts = () => runner.Restarts;
        var run = runner.RunAsync(stop.Token);

        await using (var conn = new NpgsqlConnection(target))
        {
            await conn.OpenAsync();
            await using var probe = new NpgsqlCommand($"SELECT count(*) FROM pgbench_history WHERE id = {MarkerId}", conn);
            while ((long)(await probe.ExecuteScalarAsync())! == 0)
            {
                if (run.IsCompleted)
                {
                    await run;
                    throw new InvalidOperationException("the pipeline stopped before the backlog was through");
                }

                await Task.Delay(25);
            }
        }

        var elapsed = watch.ElapsedMilliseconds;

        // changes applied, ms inside the process, peak RSS, restarts, CPU ms
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DONE {applied()} {elapsed} {Pg.PeakRss()} {restarts()} {CpuMilliseconds()}"));
        await Console.Out.FlushAsync();
        await stop.CancelAsync();
        try
        {
            await run;
        }
        catch (OperationCanceledException)
        {
        }

        return 0;
    }

    /// <summary>CPU time of this process so far (user + system, all threads): how busy it was against the wall clock.</summary>
    private static long CpuMilliseconds() => (long)Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    /// <summary>Counts changes and value bytes; stops the reader after the marker's commit.</summary>
    private sealed class NoOpSink(CancellationTokenSource done) : IChangeSink
    {
        private bool _sawMarker;

        public long Changes { get; private set; }

        public long Bytes { get; private set; }

        public ValueTask OnChangeAsync(ChangeEvent change, CancellationToken cancellationToken)
        {
            Changes++;
            Bytes += (change.New?.ByteSize ?? 0) + (change.Old?.ByteSize ?? 0);
            if (change.Kind == ChangeKind.Insert && change.Relation.Name == "pgbench_history" && change.New is { } row)
            {
                var id = row.RawAt(change.Relation.Ordinal("id"));
                if (id.Length == 8 && BinaryPrimitives.ReadInt64BigEndian(id) == MarkerId)
                {
                    _sawMarker = true;
                }
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask OnIdleAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask OnCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken)
        {
            if (_sawMarker)
            {
                done.Cancel();
            }

            return ValueTask.CompletedTask;
        }
    }
}
