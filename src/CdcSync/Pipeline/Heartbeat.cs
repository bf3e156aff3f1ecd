using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Pipeline;

/// <summary>
/// A transactional logical message every interval: its commit reaches the reader even when no
/// routed table changed, so the slot advances and an idle hub does not retain WAL.
/// </summary>
internal sealed class Heartbeat(string hubConnectionString, TimeSpan interval, TimeProvider time, ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            // Unpooled: a pooled session used every interval never goes idle, and a smart shutdown
            // of the hub waits for every session to end. A fresh connection per beat is refused
            // while the hub shuts down, so the worker holds no hub session but its walsender.
            await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(hubConnectionString) { Pooling = false }.ConnectionString);
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
                    await conn.ExecuteAsync(new CommandDefinition("SELECT pg_logical_emit_message(true, 'cdcsync.heartbeat', now()::text)", cancellationToken: cancellationToken));
                }
                catch (NpgsqlException e) when (Resilience.FailureClassifier.Classify(e) == Resilience.FailureKind.Transient)
                {
                    logger.LogWarning("Heartbeat failed: {Message}", e.Message);
                }
                catch (NpgsqlException e)
                {
                    // A revoked grant or a dropped function will not fix itself: stop with the cause.
                    throw new OperatorException($"Heartbeat: {Resilience.FailureClassifier.Describe(e)}", e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
