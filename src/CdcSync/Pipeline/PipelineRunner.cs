using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Replication;
using CdcSync.Routing;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

public enum PipelineHealth
{
    Starting,
    Running,
    Restarting,
    Stopped,
}

/// <summary>
/// Reader, router and one writer per connector. Any failure tears the whole unit down and starts
/// it again from the slot (after a capped backoff): the slot is only acknowledged up to what every
/// connector made durable, and connectors skip what is at or below their checkpoint, so a restart
/// re-sends and never loses. On stop, the reader stops, writers finish the complete transactions
/// they hold, checkpoints are recorded, and the slot is acknowledged one last time.
/// </summary>
public sealed class PipelineRunner(CdcSyncOptions options, Func<string, IOutboundConnector> connectorFactory, ILoggerFactory loggers, Func<string, IInboundConnector?>? inboundFactory = null)
{
    private readonly ILogger _logger = loggers.CreateLogger<PipelineRunner>();
    private List<ConnectorWriter> _writers = [];
    private Router? _router;

    public PipelineHealth Health { get; private set; } = PipelineHealth.Starting;

    public string? LastError { get; private set; }

    public int Restarts { get; private set; }

    public IReadOnlyList<(string Connector, NpgsqlLogSequenceNumber Checkpoint, long Changes)> Progress =>
        _writers.Select(w => (w.Name, w.Committed, w.ChangesApplied)).ToList();

    public long ChangesSuppressedByOrigin => _router?.ChangesSuppressedByOrigin ?? 0;

    /// <summary>Raised after each acknowledgement (tests and status use it).</summary>
    public event Action<NpgsqlLogSequenceNumber>? Acknowledged;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunWithRestartsAsync(stoppingToken);
        }
        finally
        {
            if (_hubDataSource is not null)
            {
                await _hubDataSource.DisposeAsync();
                _hubDataSource = null;
            }
        }
    }

    private async Task RunWithRestartsAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
                Health = PipelineHealth.Stopped;
                return;
            }
            catch (OperatorException)
            {
                Health = PipelineHealth.Stopped;
                throw;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                Restarts++;
                Health = PipelineHealth.Restarting;
                LastError = e.Message;
                _logger.LogError(e, "Pipeline failed; restarting from the slot in {Delay}", delay);
                try
                {
                    await Task.Delay(delay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.Hub.MaxRestartDelay.Ticks));
            }
        }

        Health = PipelineHealth.Stopped;
    }

    private async Task RunOnceAsync(CancellationToken stoppingToken)
    {
        var hub = options.Hub;
        var routes = options.Routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value);
        await new SlotManager(hub.ConnectionString, loggers.CreateLogger<SlotManager>())
            .EnsureAsync(hub.Slot, hub.Publication, routes.Keys, stoppingToken);

        var connectors = new Dictionary<string, ConnectorWriter>(StringComparer.Ordinal);
        foreach (var name in routes.Values.SelectMany(v => v).Distinct(StringComparer.Ordinal))
        {
            connectors[name] = new ConnectorWriter(connectorFactory(name), loggers.CreateLogger($"CdcSync.Connectors.{name}"), hub.ChannelCapacity, hub.ChunkSize, hub.MaxBatchChanges, hub.MaxMegabytesInFlight * 1024L * 1024L, hub.CommitLinger, hub.MaxCommitDelay);
        }

        _writers = connectors.Values.ToList();
        try
        {
            foreach (var writer in _writers)
            {
                var checkpoint = await writer.OpenAsync(stoppingToken);
                _logger.LogInformation("Connector {Connector} resumes after {Lsn}", writer.Name, checkpoint);
            }

            _router = new Router(routes.ToDictionary(r => r.Key, r => r.Value.Select(n => connectors[n]).ToArray()));
            await using var reader = new ReplicationReader(
                new ReaderOptions(hub.ConnectionString, hub.Slot, hub.Publication, hub.Binary, hub.Streaming),
                loggers.CreateLogger<ReplicationReader>());

            // Writers only stop on failure; on a clean stop they drain what the reader handed them.
            using var failure = new CancellationTokenSource();
            using var readerStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, failure.Token);
            var writerTasks = _writers.Select(w => Task.Run(() => w.RunAsync(failure.Token), CancellationToken.None)).ToList();
            var readerTask = Task.Run(async () =>
            {
                try
                {
                    await reader.RunAsync(_router, default, readerStop.Token);
                }
                finally
                {
                    foreach (var writer in _writers)
                    {
                        writer.Complete();
                    }
                }
            }, CancellationToken.None);
            using var background = CancellationTokenSource.CreateLinkedTokenSource(failure.Token);
            var ackTask = AcknowledgeLoopAsync(reader, background.Token);
            var heartbeatTask = HeartbeatLoopAsync(background.Token);
            var inboundTasks = options.Connectors.Keys
                .Select(name => (Name: name, Connector: inboundFactory?.Invoke(name)))
                .Where(c => c.Connector is not null)
                .Select(c => InboundLoopAsync(c.Connector!, background.Token))
                .ToList();
            heartbeatTask = Task.WhenAll(inboundTasks.Append(heartbeatTask));
            Health = PipelineHealth.Running;

            var all = writerTasks.Append(readerTask).ToList();
            while (all.Count > 0)
            {
                var done = await Task.WhenAny(all);
                all.Remove(done);
                if (done.IsFaulted && !(done.Exception?.InnerException is OperationCanceledException && stoppingToken.IsCancellationRequested))
                {
                    // One part failed: stop the rest, then let the restart loop take over.
                    await failure.CancelAsync();
                    await Task.WhenAll(all.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
                    await background.CancelAsync();
                    await Task.WhenAll(ackTask.ContinueWith(_ => { }, TaskScheduler.Default), heartbeatTask.ContinueWith(_ => { }, TaskScheduler.Default));
                    var error = done.Exception!.InnerException!;
                    if (error is OperatorException)
                    {
                        throw error;
                    }

                    throw new InvalidOperationException(error.Message, error);
                }
            }

            // Clean stop: writers drained and committed. The stream is closed, so the final
            // position goes through SQL once the server has released the slot.
            await background.CancelAsync();
            await Task.WhenAll(ackTask.ContinueWith(_ => { }, TaskScheduler.Default), heartbeatTask.ContinueWith(_ => { }, TaskScheduler.Default));
            var final = SafePosition(reader);
            await reader.DisposeAsync();
            await AdvanceSlotAsync(final);
        }
        finally
        {
            foreach (var writer in _writers)
            {
                await writer.Connector.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Copies each connector's checkpoint into the hub's cdc.checkpoints so `cdcsync status` can
    /// show lag without reaching every target. For connectors that keep their checkpoint in the
    /// hub this is the same value; for the PostgreSQL connector the target's copy stays the truth.
    /// </summary>
    private async Task MirrorCheckpointsAsync(Dictionary<string, NpgsqlLogSequenceNumber> mirrored, CancellationToken cancellationToken)
    {
        var store = new Checkpoints.HubCheckpointStore(_hubDataSource ??= NpgsqlDataSource.Create(options.Hub.ConnectionString));
        foreach (var writer in _writers)
        {
            var committed = writer.Committed;
            if (committed != default && (!mirrored.TryGetValue(writer.Name, out var done) || done < committed))
            {
                await store.WriteAsync(writer.Name, committed, cancellationToken);
                mirrored[writer.Name] = committed;
            }
        }
    }

    private NpgsqlDataSource? _hubDataSource;

    private async Task AdvanceSlotAsync(NpgsqlLogSequenceNumber position)
    {
        if (position == default)
        {
            return;
        }

        for (var attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(options.Hub.ConnectionString);
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand(
                    "SELECT pg_replication_slot_advance(slot_name, $2) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active AND confirmed_flush_lsn < $2", conn);
                cmd.Parameters.Add(new NpgsqlParameter { Value = options.Hub.Slot });
                cmd.Parameters.Add(new NpgsqlParameter { Value = position, NpgsqlDbType = NpgsqlDbType.PgLsn });
                await using var active = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", conn);
                active.Parameters.Add(new NpgsqlParameter { Value = options.Hub.Slot });
                if (await active.ExecuteScalarAsync() is true)
                {
                    await Task.Delay(100);
                    continue;
                }

                await cmd.ExecuteNonQueryAsync();
                _logger.LogInformation("Stopped; slot {Slot} confirmed up to {Lsn}", options.Hub.Slot, position);
                return;
            }
            catch (NpgsqlException e)
            {
                _logger.LogWarning("Could not record the final slot position ({Message}); the next start re-reads from the previous one and skips what is applied", e.Message);
                return;
            }
        }
    }

    /// <summary>
    /// The slot may forget everything up to the lowest checkpoint among connectors that still
    /// have work in flight; a connector that has nothing pending holds nothing back.
    /// </summary>
    private NpgsqlLogSequenceNumber SafePosition(ReplicationReader reader)
    {
        var position = reader.LastCommitEnd;
        foreach (var writer in _writers)
        {
            if (!writer.CaughtUp && writer.Committed < position)
            {
                position = writer.Committed;
            }
        }

        return position;
    }

    private async Task AcknowledgeLoopAsync(ReplicationReader reader, CancellationToken cancellationToken)
    {
        var last = default(NpgsqlLogSequenceNumber);
        var mirrored = new Dictionary<string, NpgsqlLogSequenceNumber>(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(options.Hub.StatusInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    var position = SafePosition(reader);
                    if (position > last)
                    {
                        await reader.AcknowledgeAsync(position, cancellationToken);
                        last = position;
                        Acknowledged?.Invoke(position);
                    }

                    await MirrorCheckpointsAsync(mirrored, cancellationToken);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    // A hiccup costs one tick; the position only ever moves forward.
                    _logger.LogWarning("Could not confirm the slot position this time: {Message}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Polls one system for changes and writes them into the hub under the connector's origin,
    /// with the cursor in the same hub transaction. A failing system is retried with backoff and
    /// never stops the outbound side.
    /// </summary>
    private async Task InboundLoopAsync(IInboundConnector connector, CancellationToken cancellationToken)
    {
        await using var dataSource = NpgsqlDataSource.Create(options.Hub.ConnectionString);
        var hub = new HubWriter(dataSource);
        var delay = options.Hub.InboundPollInterval;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var cursor = await hub.ReadCursorAsync(connector.Name, cancellationToken);
                var page = await connector.ReadChangesAsync(cursor, cancellationToken);
                var changed = await hub.ApplyInboundAsync(connector.Name, page.Records, page.NextCursor, cancellationToken);
                if (page.Records.Count > 0)
                {
                    _logger.LogInformation("Inbound {Connector}: {Count} records read, {Changed} rows changed", connector.Name, page.Records.Count, changed);
                }

                delay = options.Hub.InboundPollInterval;
                if (!page.HasMore)
                {
                    await Task.Delay(options.Hub.InboundPollInterval, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Inbound {Connector} failed; retrying in {Delay}", connector.Name, delay);
                try
                {
                    await Task.Delay(delay, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.Hub.MaxRestartDelay.Ticks));
            }
        }
    }

    /// <summary>
    /// A transactional logical message every interval: its commit reaches the reader even when no
    /// routed table changed, so the slot advances and an idle hub does not retain WAL.
    /// </summary>
    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Hub.HeartbeatInterval);
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(options.Hub.ConnectionString);
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await using var cmd = dataSource.CreateCommand("SELECT pg_logical_emit_message(true, 'cdcsync.heartbeat', now()::text)");
                    await cmd.ExecuteNonQueryAsync(cancellationToken);
                }
                catch (NpgsqlException e)
                {
                    _logger.LogWarning("Heartbeat failed: {Message}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
