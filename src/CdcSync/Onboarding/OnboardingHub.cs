using CdcSync.Hub;
using CdcSync.Inbound;
using Npgsql;

namespace CdcSync.Onboarding;

/// <summary>
/// Where an onboarding writes. Normally each page is its own hub transaction under the connector's
/// replication origin with the cursor in it (a kill resumes after the last page), and state calls
/// use the pool. In a dry run everything goes through one connection and one transaction that is
/// rolled back when this is disposed: the hub is left as it was, and a rolled-back transaction
/// gives the slot nothing to stream to the systems.
/// </summary>
internal sealed class OnboardingHub : IAsyncDisposable
{
    private readonly NpgsqlDataSource _hub;
    private readonly StagingWriter _writer;
    private readonly NpgsqlConnection? _dryConnection;
    private readonly NpgsqlTransaction? _dryTransaction;

    // The dry run's one connection serves one caller at a time.
    private readonly SemaphoreSlim _turn = new(1, 1);

    private OnboardingHub(NpgsqlDataSource hub, NpgsqlConnection? dryConnection, NpgsqlTransaction? dryTransaction)
    {
        _hub = hub;
        _writer = new StagingWriter(hub);
        _dryConnection = dryConnection;
        _dryTransaction = dryTransaction;
    }

    public bool DryRun => _dryConnection is not null;

    public static async Task<OnboardingHub> OpenAsync(NpgsqlDataSource hub, bool dryRun, CancellationToken cancellationToken)
    {
        if (!dryRun)
        {
            return new OnboardingHub(hub, null, null);
        }

        var connection = await hub.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken);
            return new OnboardingHub(hub, connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public Task<string?> ReadCursorAsync(string connector, CancellationToken cancellationToken) =>
        _dryConnection is null
            ? _writer.ReadCursorAsync(connector, cancellationToken)
            : UseAsync(c => StagingWriter.ReadCursorAsync(c, connector, cancellationToken), cancellationToken);

    /// <summary>Writes a page and the cursor after it under <paramref name="connector"/>'s origin.</summary>
    public async Task ApplyPageAsync(string connector, InboundPage page, CancellationToken cancellationToken)
    {
        if (_dryConnection is null)
        {
            await _writer.ApplyInboundAsync(connector, page.Records, page.NextCursor, cancellationToken);
            return;
        }

        await using var turn = await ReplicationOrigins.EnterAsync(_hub, connector, cancellationToken);
        await UseAsync(
            async c =>
            {
                await ReplicationOrigins.SetupSessionAsync(c, connector, cancellationToken);
                await _writer.ApplyInboundAsync(c, connector, page.Records, page.NextCursor, cancellationToken);
                await ReplicationOrigins.ResetAsync(c, cancellationToken);
                return 0;
            },
            cancellationToken);
    }

    /// <summary>Runs state queries and SQL API calls: on the dry run's transaction, else on a pooled connection.</summary>
    public async Task<T> UseAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        if (_dryConnection is null)
        {
            await using var connection = await _hub.OpenConnectionAsync(cancellationToken);
            return await work(connection);
        }

        await _turn.WaitAsync(cancellationToken);
        try
        {
            return await work(_dryConnection);
        }
        finally
        {
            _turn.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_dryConnection is not null)
        {
            try
            {
                if (_dryTransaction is { Connection: not null })
                {
                    await _dryTransaction.RollbackAsync(CancellationToken.None);
                }
            }
            catch (NpgsqlException)
            {
                // A broken connection rolls back on its own.
            }

            await _dryConnection.DisposeAsync();
        }

        _turn.Dispose();
    }
}
