namespace CdcSync.Replication;

/// <summary>Receives what the reader decodes, in WAL commit order.</summary>
internal interface IChangeSink
{
    /// <summary>A row change of a transaction that has committed (or, for non-streamed transactions, is being sent after commit).</summary>
    ValueTask OnChangeAsync(ChangeEvent change, CancellationToken cancellationToken);

    /// <summary>The end of a transaction: every change of it was passed to <see cref="OnChangeAsync"/>.</summary>
    ValueTask OnCommitAsync(TransactionInfo transaction, CancellationToken cancellationToken);

    /// <summary>
    /// The reader has decoded everything the server sent so far and is about to wait for more: a
    /// sink that holds changes back to pass them on in batches passes them on now.
    /// </summary>
    ValueTask OnIdleAsync(CancellationToken cancellationToken);
}
