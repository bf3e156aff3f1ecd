using NpgsqlTypes;

namespace CdcSync.Replication;

public enum ChangeKind : byte
{
    Insert,
    Update,
    Delete,
    Truncate,
}

/// <summary>The transaction a change belongs to; shared by all of its changes.</summary>
public sealed record TransactionInfo(
    uint Xid,
    NpgsqlLogSequenceNumber CommitLsn,
    DateTime CommitTimeUtc,
    string? Origin);

/// <summary>
/// One row change copied out of the replication stream. Immutable: Npgsql reuses its message
/// objects, so everything is copied before the next message is read.
/// </summary>
/// <param name="New">New row for insert/update (unchanged TOAST columns marked as such).</param>
/// <param name="Old">Old key (REPLICA IDENTITY DEFAULT/INDEX) or full old row (FULL) when the server sent one.</param>
/// <param name="Position">Position of the change inside its transaction, from 0.</param>
public sealed record ChangeEvent(
    RelationInfo Relation,
    ChangeKind Kind,
    RowValues? New,
    RowValues? Old,
    TransactionInfo Transaction,
    int Position)
{
    /// <summary>The values that identify the row: the old key when one was sent, else the new row.</summary>
    public RowValues? Key => Old ?? New;

    /// <summary>A stable id for receivers that drop duplicates: commit LSN plus position.</summary>
    public string IdempotencyKey => $"{Transaction.CommitLsn}/{Position}";
}
