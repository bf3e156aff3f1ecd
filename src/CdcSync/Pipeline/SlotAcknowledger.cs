
using CdcSync.Configuration;
using CdcSync.Hub;
using CdcSync.Replication;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CdcSync.Pipeline;

/// <summary>
/// Confirms the slot up to what every connector has made durable, minus the replay window,
/// mirrors the connectors' checkpoints into the hub for <c>status</c>, and records the final
/// position on a clean stop. The slot is never confirmed past the lowest checkpoint among
/// connectors with work in flight.
/// </summary>
internal sealed class SlotAcknowledger(HubOptions hub, IReadOnlyList<ConnectorWriter> writers, ILogger logger, TimeProvider? timeProvider = null, NpgsqlDataSource? hubSource = null) : IAsyncDisposable
{
    private readonly ReplayWindow _window = new(hub.ReplayRetentionBytes, hub.ReplayRetentionAge, timeProvider ?? TimeProvider.System);
    private NpgsqlDataSource? _hubDataSource;
    private HubGateway? _hubGateway;

    /// <summary>Raised after each acknowledgement.</summary>
    public event Action<NpgsqlLogSequenceNumber>? Acknowledged;

    /// <summary>
    /// Where the slot may be confirmed: what every connector has applied (<see cref="Applied"/>),
    /// less the replay window kept behind it for <c>cdcsync replay</c>.
    /// </summary>
    public NpgsqlLogSequenceNumber SafePosition(ReplicationReader reader) => _window.Floor(Applied(reader));

    /// <summary>
    /// Everything up to the lowest checkpoint among connectors that still have work in flight is
    /// applied; a connector that has nothing pending holds nothing back.
    /// </summary>
    public NpgsqlLogSequenceNumber Applied(ReplicationReader reader)
    {
        var position = reader.LastCommitEnd;
        foreach (var writer in writers)
        {
            if (!writer.CaughtUp && writer.Committed < position)
            {
                position = writer.Committed;
            }
        }

        // Nothing pending anywhere: confirm up to the WAL end keepalives report, or a fast
        // shutdown of the hub waits for this walsender forever.
        return reader.IdleWalEnd(() => writers.All(w => w.CaughtUp)) is { } idleEnd && idleEnd > position ? idleEnd : position;
    }

    public async Task RunAsync(ReplicationReader reader, CancellationToken cancellationToken)
    {
        var last = default(NpgsqlLogSequenceNumber);
        var mirrored = new Dictionary<string, NpgsqlLogSequenceNumber>(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(hub.StatusInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    _window.Observe(Applied(reader));
                    var position = SafePosition(reader);
                    if (position > last)
                    {
                        var ackStarted = LatencyTrace.Enabled ? LatencyTrace.Now() : 0;
                        await reader.AcknowledgeAsync(position, cancellationToken);
                        if (LatencyTrace.Enabled)
                        {
                            LatencyTrace.Acknowledged((ulong)position, ackStarted);
                        }
                        last = position;
                        Acknowledged?.Invoke(position);
                    }

                    await MirrorCheckpointsAsync(mirrored, cancellationToken);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException && Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Permanent)
                {
                    // A missing grant on the checkpoint mirror will not fix itself: stop with the cause.
                    throw new OperatorException($"Confirming the slot position: {Resilience.FailureClassifier.Describe(e)}", e);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    // A hiccup costs one tick; the position only ever moves forward.
                    logger.LogWarning("Could not confirm the slot position this time: {Message}", e.Message);
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
    /// Copies each connector's checkpoint into the hub's cdc.checkpoints so `cdcsync status` can
    /// show lag without reaching every target. For connectors that keep their checkpoint in the
    /// hub this is the same value; for the PostgreSQL connector the target's copy stays the truth.
    /// </summary>
    private async Task MirrorCheckpointsAsync(Dictionary<string, NpgsqlLogSequenceNumber> mirrored, CancellationToken cancellationToken)
    {
        var store = _hubGateway ??= new HubGateway(hubSource ?? (_hubDataSource ??= NpgsqlDataSource.Create(hub.ConnectionString)));
        foreach (var writer in writers)
        {
            var committed = writer.Committed;
            if (committed != default && (!mirrored.TryGetValue(writer.Name, out var done) || done < committed))
            {
                await store.WriteCheckpointAsync(writer.Name, committed, cancellationToken);
                mirrored[writer.Name] = committed;
            }
        }
    }

    /// <summary>After the stream is closed, records the final position through SQL once the server has released the slot.</summary>
    public async Task AdvanceSlotAsync(NpgsqlLogSequenceNumber position)
    {
        if (position == default)
        {
            return;
        }

        for (var attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(hub.ConnectionString);
                await conn.OpenAsync();
                if (await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT active FROM pg_replication_slots WHERE slot_name = @slot", new { slot = hub.Slot })))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), timeProvider ?? TimeProvider.System, CancellationToken.None);
                    continue;
                }

                // None advanced when the slot already stands at or past the position.
                // Dapper has no mapping for NpgsqlLogSequenceNumber: the LSN goes as text and is cast.
                if (await conn.ExecuteScalarAsync<long>(new CommandDefinition(
                        "SELECT count(*) FROM (SELECT pg_replication_slot_advance(slot_name, @position::pg_lsn) FROM pg_replication_slots WHERE slot_name = @slot AND NOT active AND confirmed_flush_lsn < @position::pg_lsn) advanced",
                        new { slot = hub.Slot, position = position.ToString() })) > 0)
                {
                    logger.LogInformation("Stopped; slot {Slot} confirmed up to {Lsn}", hub.Slot, position);
                }
                else
                {
                    logger.LogInformation("Stopped; slot {Slot} left where it was (at or past {Lsn}, the replay window's start)", hub.Slot, position);
                }

                return;
            }
            catch (NpgsqlException e)
            {
                logger.LogWarning("Could not record the final slot position ({Message}); the next start re-reads from the previous one and skips what is applied", e.Message);
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_hubDataSource is not null)
        {
            await _hubDataSource.DisposeAsync();
            _hubDataSource = null;
            _hubGateway = null;
        }
    }
}
